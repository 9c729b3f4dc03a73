#version 330 core
// One axis of a separable Lanczos-3 resampler (the downscaler): run once along x, once along y.
// For a reduction by `step` (source pixels per output pixel) the kernel is widened by max(step, 1), so
// every source pixel under the output pixel's footprint counts (no aliasing); weights are normalised.
// `kernel` (eglFilter:downscaleFilter): 0 nearest (the source pixel under the output pixel's centre),
// 1 linear (a tent as wide as the footprint), 2 Lanczos-3. `offset` moves every output pixel's centre
// by that fraction of an output pixel (eglFilter:downscaleHOffset / VOffset).
uniform sampler2D src;
uniform int kernel;
uniform ivec2 src_size;
uniform bool vertical;
uniform float step;      // source pixels per output pixel along this axis
uniform float offset;    // the sampling grid's shift along this axis, in output pixels (-1..1)
out vec4 color;
const float PI = 3.14159265358979;

void main() {
    ivec2 o = ivec2(gl_FragCoord.xy);
    int d = vertical ? o.y : o.x;
    int last = (vertical ? src_size.y : src_size.x) - 1;
    float k = max(step, 1.0);
    float u = (float(d) + 0.5 + offset) * step - 0.5;   // output pixel centre in source pixel indices
    if (kernel == 0) {
        int c = clamp(int(floor((float(d) + 0.5 + offset) * step)), 0, last);
        color = vec4(texelFetch(src, vertical ? ivec2(o.x, c) : ivec2(c, o.y), 0).rgb, 1.0);
        return;
    }
    if (kernel == 1) {
        vec3 lacc = vec3(0.0);
        float lsum = 0.0;
        for (int j = int(floor(u - k)) + 1; j <= int(floor(u + k)); j++) {
            float w = max(0.0, 1.0 - abs(float(j) - u) / k);
            int c = clamp(j, 0, last);
            lacc += w * texelFetch(src, vertical ? ivec2(o.x, c) : ivec2(c, o.y), 0).rgb;
            lsum += w;
        }
        color = vec4(clamp(lacc / lsum, 0.0, 1.0), 1.0);
        return;
    }
    int j0 = int(floor(u - 3.0 * k)) + 1;
    int j1 = int(floor(u + 3.0 * k));
    // L(x) = sinc(x) sinc(x/3) = 3 sin(pi x) sin(pi x / 3) / (pi x)^2. The taps' x grow by 1/k, so
    // both sines advance by angle addition: four sin/cos a pixel instead of two per tap (llvmpipe's
    // sin is dear; this halves the pass).
    float x0 = (float(j0) - u) / k;
    float dx = 1.0 / k;
    float s1 = sin(PI * x0), c1 = cos(PI * x0), sd1 = sin(PI * dx), cd1 = cos(PI * dx);
    float s3 = sin(PI * x0 / 3.0), c3 = cos(PI * x0 / 3.0), sd3 = sin(PI * dx / 3.0), cd3 = cos(PI * dx / 3.0);
    vec3 acc = vec3(0.0);
    float wsum = 0.0;
    for (int j = j0; j <= j1; j++) {
        float x = x0 + float(j - j0) * dx;
        float w = abs(x) < 1e-4 ? 1.0 : (abs(x) < 3.0 ? 3.0 * s1 * s3 / (PI * PI * x * x) : 0.0);
        float s1n = s1 * cd1 + c1 * sd1;
        c1 = c1 * cd1 - s1 * sd1;
        s1 = s1n;
        float s3n = s3 * cd3 + c3 * sd3;
        c3 = c3 * cd3 - s3 * sd3;
        s3 = s3n;
        int c = clamp(j, 0, last);
        ivec2 p = vertical ? ivec2(o.x, c) : ivec2(c, o.y);
        acc += w * texelFetch(src, p, 0).rgb;
        wsum += w;
    }
    color = vec4(clamp(acc / wsum, 0.0, 1.0), 1.0);
}
