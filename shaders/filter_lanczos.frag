#version 330 core
// One axis of a separable Lanczos-3 resampler (the downscaler): run once along x, once along y.
// For a reduction by `step` (source pixels per output pixel) the kernel is widened by max(step, 1), so
// every source pixel under the output pixel's footprint counts (no aliasing); weights are normalised.
uniform sampler2D src;
uniform ivec2 src_size;
uniform bool vertical;
uniform float step;      // source pixels per output pixel along this axis
out vec4 color;
const float PI = 3.14159265358979;

float sinc(float x) {
    if (abs(x) < 1e-5) return 1.0;
    x *= PI;
    return sin(x) / x;
}

float lanczos3(float x) {
    return abs(x) < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0;
}

void main() {
    ivec2 o = ivec2(gl_FragCoord.xy);
    int d = vertical ? o.y : o.x;
    int last = (vertical ? src_size.y : src_size.x) - 1;
    float k = max(step, 1.0);
    float u = (float(d) + 0.5) * step - 0.5;     // output pixel centre in source pixel indices
    int j0 = int(floor(u - 3.0 * k)) + 1;
    int j1 = int(floor(u + 3.0 * k));
    vec3 acc = vec3(0.0);
    float wsum = 0.0;
    for (int j = j0; j <= j1; j++) {
        float w = lanczos3((float(j) - u) / k);
        int c = clamp(j, 0, last);
        ivec2 p = vertical ? ivec2(o.x, c) : ivec2(c, o.y);
        acc += w * texelFetch(src, p, 0).rgb;
        wsum += w;
    }
    color = vec4(clamp(acc / wsum, 0.0, 1.0), 1.0);
}
