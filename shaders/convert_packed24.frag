#version 330 core
// BGR_32 / RGB_24: 3-byte pixels packed back to back in 32-bit texels -> 8-bit RGBA.
uniform usampler2D src;   // GL_RGBA8UI, data_width texels per row
uniform bool bgr;         // BGR_32: bytes are B,G,R
out vec4 color;
uint byte_at(ivec2 texel0, uvec4 a, uvec4 b, int i) {
    uvec4 t = i < 4 ? a : b;
    int c = i & 3;
    return c == 0 ? t.r : c == 1 ? t.g : c == 2 ? t.b : t.a;
}
void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    int offset = p.x * 3;
    int texel = offset >> 2;
    int last = textureSize(src, 0).x - 1;
    uvec4 a = texelFetch(src, ivec2(texel, p.y), 0);
    uvec4 b = texelFetch(src, ivec2(min(texel + 1, last), p.y), 0);
    int c = offset & 3;
    vec3 v = vec3(byte_at(p, a, b, c), byte_at(p, a, b, c + 1), byte_at(p, a, b, c + 2)) / 255.0;
    color = vec4(bgr ? v.bgr : v, 1.0);
}
