#version 330 core
// Colour-blind simulation and correction (egl:cbMode), in linear light. Simulation: Machado, Oliveira &
// Fernandes (2009), severity 1.0 matrices. Correction (daltonisation): the colour difference the viewer
// cannot see is moved into the channels they can (Fidaner et al.'s error-shift matrix).
uniform sampler2D src;
uniform mat3 sim;        // linear RGB -> what the viewer sees
uniform bool simulate;   // true: show the simulation; false: correct
out vec4 color;

vec3 to_linear(vec3 c) {
    return mix(c / 12.92, pow((c + 0.055) / 1.055, vec3(2.4)), step(vec3(0.04045), c));
}

vec3 to_srgb(vec3 c) {
    return mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, step(vec3(0.0031308), c));
}

void main() {
    vec3 lin = to_linear(texelFetch(src, ivec2(gl_FragCoord.xy), 0).rgb);
    vec3 seen = sim * lin;
    vec3 outc;
    if (simulate) {
        outc = seen;
    } else {
        vec3 err = lin - seen;
        outc = lin + vec3(0.0, 0.7 * err.r + err.g, 0.7 * err.r + err.b);
    }
    color = vec4(to_srgb(clamp(outc, 0.0, 1.0)), 1.0);
}
