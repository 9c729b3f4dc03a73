#version 330 core
// Draws an 8-bit RGBA frame texture (already in display colours) scaled/rotated into the window.
// textureLod, not texture: Mesa 22 llvmpipe's "linear" fast path for plain texture() shaders swaps
// R and B in whole 64x64 tiles of textures uploaded as GL_BGRA (seen here; tests/viewer catch it).
in vec2 v_uv;
uniform sampler2D frame;
out vec4 color;
void main() {
    color = vec4(textureLod(frame, v_uv, 0.0).rgb, 1.0);
}
