// HDR -> SDR helpers shared by the conversion shaders (mirrored in kvmfr_client/viewer/hdr.py).
// Linear values are scRGB: 1.0 = 80 nits; hdr_gain first puts the guest's SDR white at 1.0.
uniform bool hdr_map;     // tone-map instead of clipping
uniform float hdr_gain;   // 80 / SDR white nits (1.0 when the host does not say: B7)
uniform float hdr_white;  // peak nits / SDR white nits: the scaled value that becomes the top of SDR

const float KNEE = 0.75;

vec3 tone_map(vec3 x) {
    x *= hdr_gain;
    if (!hdr_map || hdr_white <= 1.0)
        return clamp(x, 0.0, 1.0);
    // Identity below the knee; above it an extended-Reinhard roll-off that reaches 1.0 at hdr_white
    // with a continuous slope, so SDR-range content keeps its values and highlights keep detail.
    float m = (hdr_white - KNEE) / (1.0 - KNEE);
    vec3 t = max(x - KNEE, 0.0) / (1.0 - KNEE);
    vec3 hi = KNEE + (1.0 - KNEE) * t * (1.0 + t / (m * m)) / (1.0 + t);
    return clamp(mix(x, hi, step(KNEE, x)), 0.0, 1.0);
}

vec3 srgb_encode(vec3 v) {
    v = clamp(v, 0.0, 1.0);
    vec3 lo = v * 12.92;
    vec3 hi = 1.055 * pow(v, vec3(1.0 / 2.4)) - 0.055;
    return mix(lo, hi, step(0.0031308, v));
}

vec3 srgb_decode(vec3 v) {
    v = clamp(v, 0.0, 1.0);
    vec3 lo = v / 12.92;
    vec3 hi = pow((v + 0.055) / 1.055, vec3(2.4));
    return mix(lo, hi, step(0.04045, v));
}

// SMPTE ST 2084 (PQ) signal -> linear scRGB in BT.709 primaries.
vec3 pq_to_scrgb(vec3 e) {
    const float m1 = 0.1593017578125, m2 = 78.84375;
    const float c1 = 0.8359375, c2 = 18.8515625, c3 = 18.6875;
    vec3 n = pow(clamp(e, 0.0, 1.0), vec3(1.0 / m2));
    vec3 nits = pow(max(n - c1, 0.0) / (c2 - c3 * n), vec3(1.0 / m1)) * 10000.0;
    const mat3 bt2020_to_709 = mat3(
         1.6605, -0.1246, -0.0182,
        -0.5876,  1.1329, -0.1006,
        -0.0728, -0.0083,  1.1187);
    return max(bt2020_to_709 * nits, 0.0) / 80.0;
}
