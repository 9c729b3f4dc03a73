#version 330 core
// Edge-adaptive upscaler in the spirit of AMD FSR 1's EASU, written from its published description:
// a Lanczos-2-like kernel (a polynomial stand-in) over the 4x4 source texels around each output pixel,
// stretched along the local edge and narrowed across it as the edge gets stronger, then clamped to the
// range of the 2x2 nearest texels so it cannot ring. docs/filters.md gives the exact definition, which
// tests/viewer/filter_refs.py implements in numpy.
uniform sampler2D src;
uniform ivec2 src_size;
uniform vec2 step;       // source pixels per output pixel (x, y), < 1 when enlarging
out vec4 color;

float luma(vec3 c) { return 0.5 * c.r + c.g + 0.5 * c.b; }

void main() {
    vec2 u = (floor(gl_FragCoord.xy) + 0.5) * step - 0.5;
    vec2 f = floor(u);
    vec2 t = u - f;
    ivec2 base = ivec2(f);
    ivec2 hi = src_size - 1;
    vec3 c[16];
    float l[16];
    float lmin = 1e9, lmax = -1e9;
    for (int j = 0; j < 4; j++) {
        for (int i = 0; i < 4; i++) {
            ivec2 p = clamp(base + ivec2(i - 1, j - 1), ivec2(0), hi);
            vec3 v = texelFetch(src, p, 0).rgb;
            c[j * 4 + i] = v;
            l[j * 4 + i] = luma(v);
            lmin = min(lmin, l[j * 4 + i]);
            lmax = max(lmax, l[j * 4 + i]);
        }
    }
    // Gradient at the four central texels (central differences), weighted bilinearly.
    vec2 dir = vec2(0.0);
    for (int j = 1; j <= 2; j++) {
        for (int i = 1; i <= 2; i++) {
            float wx = i == 1 ? 1.0 - t.x : t.x;
            float wy = j == 1 ? 1.0 - t.y : t.y;
            vec2 g = vec2(l[j * 4 + i + 1] - l[j * 4 + i - 1], l[(j + 1) * 4 + i] - l[(j - 1) * 4 + i]);
            dir += wx * wy * g;
        }
    }
    float dlen2 = dot(dir, dir);
    float len = clamp(0.5 * sqrt(dlen2) / (lmax - lmin + 1.0 / 64.0), 0.0, 1.0);
    len *= len;
    vec2 d = dlen2 < 1.0 / 4096.0 ? vec2(1.0, 0.0) : dir * inversesqrt(dlen2);
    float along_k = 1.0 / (1.0 + len);
    float across_k = 1.0 + 0.25 * len;
    float lobe = 0.5 - 0.25 * len;
    float clip = 1.0 / lobe;
    vec3 acc = vec3(0.0);
    float wsum = 0.0;
    for (int j = 0; j < 4; j++) {
        for (int i = 0; i < 4; i++) {
            vec2 v = vec2(float(i - 1), float(j - 1)) - t;
            float across = dot(v, d) * across_k;
            float along = dot(v, vec2(-d.y, d.x)) * along_k;
            float x2 = along * along + across * across;
            float a = 0.4 * x2 - 1.0;
            float b = lobe * x2 - 1.0;
            float w = x2 < clip ? (1.5625 * a * a - 0.5625) * (b * b) : 0.0;
            acc += w * c[j * 4 + i];
            wsum += w;
        }
    }
    vec3 outc = acc / max(wsum, 1e-4);
    vec3 mn = min(min(c[5], c[6]), min(c[9], c[10]));
    vec3 mx = max(max(c[5], c[6]), max(c[9], c[10]));
    color = vec4(clamp(outc, mn, mx), 1.0);
}
