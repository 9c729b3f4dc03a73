#version 330 core
// RGBA10 (10:10:10:2, R in the low bits) -> 8-bit display colours. HDR_PQ frames are HDR10.
uniform sampler2D src;    // GL_RGB10_A2, normalised
uniform bool pq;
out vec4 color;
//#include hdr.glsl
void main() {
    vec4 v = texelFetch(src, ivec2(gl_FragCoord.xy), 0);
    vec3 rgb = pq ? srgb_encode(tone_map(pq_to_scrgb(v.rgb))) : v.rgb;
    color = vec4(rgb, 1.0);
}
