#version 330 core
// Draws an 8-bit RGBA frame texture (already in display colours) scaled/rotated into the window.
in vec2 v_uv;
uniform sampler2D frame;
out vec4 color;
void main() {
    color = vec4(texture(frame, v_uv).rgb, 1.0);
}
