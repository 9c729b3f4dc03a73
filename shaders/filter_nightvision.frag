#version 330 core
// Night vision gain (egl:nvGain): lifts dark tones, out = 1 - (1 - c)^(1 + gain); white stays white and
// nothing clips, so detail in the shadows becomes visible without washing out highlights.
uniform sampler2D src;
uniform float gain;
out vec4 color;

void main() {
    vec3 c = texelFetch(src, ivec2(gl_FragCoord.xy), 0).rgb;
    color = vec4(1.0 - pow(1.0 - c, vec3(1.0 + gain)), 1.0);
}
