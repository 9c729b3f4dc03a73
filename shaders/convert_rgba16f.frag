#version 330 core
// RGBA16F (linear scRGB half floats, uploaded as raw 16-bit integers: Mesa converts half-float
// uploads on the CPU at ~70 ms per 1080p frame) -> 8-bit sRGB display colours.
uniform usampler2D src;   // GL_RGBA16UI holding the half-float bits
uniform bool pq;
out vec4 color;
//#include hdr.glsl

float half_to_float(uint h) {
    uint sign = (h >> 15) & 1u;
    uint expo = (h >> 10) & 31u;
    uint mant = h & 1023u;
    float v;
    if (expo == 0u)
        v = float(mant) * exp2(-24.0);
    else if (expo == 31u)
        v = 65504.0;  // inf/NaN: as bright as a half can be
    else
        v = (1.0 + float(mant) / 1024.0) * exp2(float(expo) - 15.0);
    return sign == 1u ? -v : v;
}

void main() {
    uvec4 h = texelFetch(src, ivec2(gl_FragCoord.xy), 0);
    vec3 lin = vec3(half_to_float(h.r), half_to_float(h.g), half_to_float(h.b));
    if (pq)
        lin = pq_to_scrgb(lin);
    color = vec4(srgb_encode(tone_map(lin)), 1.0);
}
