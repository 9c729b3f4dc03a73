// A small Anime4K-style shader for the tests (written here, not taken from Anime4K): three passes,
// a saved signed-gradient texture at the source size, a 2x pass that reads it, and a blur that reads
// neighbours through HOOKED_texOff.

//!DESC gradient of luma
//!HOOK MAIN
//!BIND HOOKED
//!SAVE LUMAG
//!COMPONENTS 2
float luma(vec4 c) { return dot(c.rgb, vec3(0.299, 0.587, 0.114)); }
vec4 hook() {
    float gx = luma(HOOKED_texOff(vec2(1.0, 0.0))) - luma(HOOKED_texOff(vec2(-1.0, 0.0)));
    float gy = luma(HOOKED_texOff(vec2(0.0, 1.0))) - luma(HOOKED_texOff(vec2(0.0, -1.0)));
    return vec4(gx, gy, 0.0, 0.0);
}

//!DESC double the size, pushed by the gradient
//!HOOK MAIN
//!BIND HOOKED
//!BIND LUMAG
//!WIDTH HOOKED.w 2 *
//!HEIGHT HOOKED.h 2 *
vec4 hook() {
    vec4 c = HOOKED_tex(HOOKED_pos);
    vec2 g = LUMAG_tex(LUMAG_pos).xy;
    return vec4(clamp(c.rgb + 0.25 * (g.x + g.y), 0.0, 1.0), 1.0);
}

//!DESC horizontal 1-2-1 blur
//!HOOK MAIN
//!BIND HOOKED
//!WHEN HOOKED.w 1 >
vec4 hook() {
    return 0.25 * HOOKED_texOff(vec2(-1.0, 0.0)) + 0.5 * HOOKED_tex(HOOKED_pos) + 0.25 * HOOKED_texOff(vec2(1.0, 0.0));
}
