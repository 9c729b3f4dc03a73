#version 330 core
// Contrast-adaptive sharpening (after the published description of AMD's CAS): a negative-lobe cross
// filter whose strength falls where the 3x3 neighbourhood is already near black or white, so edges
// sharpen without clipping or halos. sharpness 0..1.
uniform sampler2D src;
uniform ivec2 src_size;
uniform float sharpness;
out vec4 color;

vec3 at(ivec2 p) { return texelFetch(src, clamp(p, ivec2(0), src_size - 1), 0).rgb; }

void main() {
    ivec2 o = ivec2(gl_FragCoord.xy);
    vec3 a = at(o + ivec2(-1, -1)), b = at(o + ivec2(0, -1)), c = at(o + ivec2(1, -1));
    vec3 d = at(o + ivec2(-1, 0)),  e = at(o),                f = at(o + ivec2(1, 0));
    vec3 g = at(o + ivec2(-1, 1)),  h = at(o + ivec2(0, 1)),  i = at(o + ivec2(1, 1));
    vec3 mn = min(min(min(a, b), min(c, d)), min(min(e, f), min(min(g, h), i)));
    vec3 mx = max(max(max(a, b), max(c, d)), max(max(e, f), max(max(g, h), i)));
    vec3 room = min(mn, 1.0 - mx);
    vec3 amp = sqrt(clamp(room / max(mx, vec3(1e-6)), 0.0, 1.0));
    float peak = -1.0 / mix(8.0, 5.0, sharpness);
    vec3 w = amp * peak;
    color = vec4(clamp((e + w * (b + d + f + h)) / (1.0 + 4.0 * w), 0.0, 1.0), 1.0);
}
