// A shader written here in the style of Anime4K's CNN upscalers (not taken from Anime4K: the weights are
// random numbers) to exercise the constructs those files use: //!HOOK MAIN, //!BIND of the picture and of
// saved textures, //!SAVE, //!WIDTH / //!HEIGHT / //!WHEN expressions over HOOKED, MAIN and OUTPUT,
// //!COMPONENTS, #define'd tap macros with NAME_texOff, mat4 weights, a CReLU (max(x, 0) and max(-x, 0)),
// a depth-to-space pass indexing a vec4 with fract(NAME_pos * NAME_size) and NAME_pt, HOOKED_pos and
// HOOKED_pt. tests/viewer/test_filters.py computes the same in numpy (the weights read from this file).

//!DESC Anime4K-style-Conv-4x3x3x4
//!HOOK MAIN
//!BIND MAIN
//!SAVE conv2d_tf
//!WIDTH MAIN.w
//!HEIGHT MAIN.h
//!COMPONENTS 4
//!WHEN OUTPUT.w MAIN.w / 1.200 > OUTPUT.h MAIN.h / 1.200 > *
#define go_0(x_off, y_off) (MAIN_texOff(vec2(x_off, y_off)))
vec4 hook() {
    vec4 result = mat4(0.174, -0.245, -0.393, -0.731, -0.088, 0.312, 0.008, 0.128, 0.256, -0.221, 0.663, -0.219, 0.093, 0.685, -0.029, 0.029) * go_0(-1.0, -1.0);
    result += mat4(-0.128, 0.084, -0.532, -0.162, 0.424, 0.053, -0.060, 0.093, 0.104, 0.038, 0.145, -0.415, 0.148, -0.168, 0.196, -0.005) * go_0(-1.0, 0.0);
    result += mat4(-0.250, -0.018, -0.252, 0.253, -0.007, 0.213, -0.279, 0.405, -0.075, 0.341, 0.214, -0.275, 0.081, -0.136, 0.102, 0.358) * go_0(-1.0, 1.0);
    result += mat4(0.172, 0.267, -0.293, 0.051, 0.090, 0.272, -0.155, 0.142, 0.107, -0.381, -0.260, 0.111, -0.294, -0.307, 0.224, 0.071) * go_0(0.0, -1.0);
    result += mat4(-0.059, 0.026, -0.101, -0.134, -0.115, 0.097, 0.330, -0.118, -0.017, -0.055, -0.315, 0.063, 0.217, -0.211, 0.208, -0.143) * go_0(0.0, 0.0);
    result += mat4(0.288, 0.304, -0.096, -0.500, -0.087, -0.348, -0.329, -0.063, 0.340, -0.023, -0.055, -0.463, -0.152, -0.349, 0.130, -0.132) * go_0(0.0, 1.0);
    result += mat4(-0.011, -0.004, -0.047, 0.238, 0.122, -0.080, 0.038, 0.138, 0.343, 0.032, 0.362, -0.149, -0.058, -0.372, 0.205, -0.258) * go_0(1.0, -1.0);
    result += mat4(-0.258, 0.211, -0.133, -0.188, 0.238, -0.046, 0.230, -0.101, 0.182, 0.270, 0.021, 0.450, -0.099, -0.053, 0.020, 0.251) * go_0(1.0, 0.0);
    result += mat4(-0.072, -0.109, 0.063, 0.312, -0.104, -0.319, -0.033, 0.156, -0.136, 0.031, -0.467, 0.005, 0.026, 0.156, 0.077, 0.193) * go_0(1.0, 1.0);
    result += vec4(-0.099, 0.066, -0.165, -0.060);
    return result;
}

//!DESC Anime4K-style-Conv-4x3x3x8 (CReLU)
//!HOOK MAIN
//!BIND conv2d_tf
//!SAVE conv2d_last_tf
//!WIDTH conv2d_tf.w
//!HEIGHT conv2d_tf.h
//!COMPONENTS 4
//!WHEN OUTPUT.w MAIN.w / 1.200 > OUTPUT.h MAIN.h / 1.200 > *
#define go_0(x_off, y_off) (max((conv2d_tf_texOff(vec2(x_off, y_off))), 0.0))
#define go_1(x_off, y_off) (max(-(conv2d_tf_texOff(vec2(x_off, y_off))), 0.0))
vec4 hook() {
    vec4 result = mat4(0.221, 0.170, -0.371, 0.118, -0.086, -0.156, 0.041, 0.026, 0.279, -0.288, -0.086, -0.029, -0.368, 0.235, 0.351, -0.125) * go_0(-1.0, -1.0);
    result += mat4(0.076, -0.054, 0.054, -0.135, 0.166, -0.233, 0.273, 0.071, 0.485, -0.330, -0.019, -0.257, -0.028, 0.087, -0.184, -0.287) * go_0(-1.0, 0.0);
    result += mat4(-0.347, 0.044, 0.255, 0.234, 0.007, -0.192, -0.073, -0.302, -0.315, 0.213, -0.056, 0.063, -0.055, 0.265, 0.288, -0.155) * go_0(-1.0, 1.0);
    result += mat4(-0.073, -0.135, 0.264, 0.249, -0.058, 0.460, 0.005, -0.243, -0.407, -0.029, 0.064, -0.117, 0.073, 0.239, -0.012, 0.169) * go_0(0.0, -1.0);
    result += mat4(0.333, 0.100, -0.116, 0.086, 0.107, 0.427, -0.087, -0.310, 0.060, 0.065, -0.083, 0.113, 0.064, 0.242, -0.167, -0.140) * go_0(0.0, 0.0);
    result += mat4(-0.005, -0.102, 0.254, 0.116, -0.004, 0.306, 0.100, 0.200, 0.161, -0.029, -0.028, 0.001, -0.218, -0.069, 0.171, 0.062) * go_0(0.0, 1.0);
    result += mat4(-0.189, 0.473, -0.206, 0.125, 0.145, 0.255, -0.172, 0.005, -0.038, 0.230, 0.078, 0.086, 0.110, 0.395, 0.138, 0.181) * go_0(1.0, -1.0);
    result += mat4(-0.181, 0.145, -0.243, 0.196, 0.038, -0.168, -0.220, -0.008, 0.035, -0.101, -0.054, -0.049, -0.093, -0.025, 0.068, 0.274) * go_0(1.0, 0.0);
    result += mat4(0.143, -0.098, 0.340, 0.253, -0.033, 0.222, -0.088, -0.131, -0.124, 0.344, 0.049, 0.085, 0.035, -0.058, 0.120, 0.159) * go_0(1.0, 1.0);
    result += mat4(0.416, -0.145, 0.332, 0.159, -0.319, 0.221, 0.350, 0.246, 0.077, 0.060, -0.368, 0.092, 0.064, -0.158, 0.068, -0.105) * go_1(-1.0, -1.0);
    result += mat4(0.478, -0.217, -0.154, -0.407, -0.057, 0.044, 0.022, -0.109, 0.193, 0.065, 0.254, -0.006, -0.336, -0.014, -0.187, 0.179) * go_1(-1.0, 0.0);
    result += mat4(-0.108, -0.037, 0.008, -0.293, -0.067, 0.184, -0.105, -0.025, 0.040, -0.128, -0.052, 0.094, -0.070, 0.016, -0.024, -0.204) * go_1(-1.0, 1.0);
    result += mat4(-0.254, 0.399, 0.279, -0.021, 0.193, 0.224, 0.195, -0.069, -0.283, -0.248, -0.044, 0.273, 0.315, -0.044, -0.063, 0.244) * go_1(0.0, -1.0);
    result += mat4(0.415, -0.180, 0.098, 0.034, -0.059, -0.059, -0.061, 0.004, -0.302, 0.005, 0.163, 0.156, 0.164, 0.072, 0.045, 0.394) * go_1(0.0, 0.0);
    result += mat4(-0.029, 0.038, 0.255, 0.014, -0.251, -0.104, -0.080, -0.025, -0.083, 0.204, 0.147, 0.103, -0.073, 0.211, 0.204, 0.444) * go_1(0.0, 1.0);
    result += mat4(-0.114, -0.014, 0.284, -0.207, 0.061, 0.053, 0.020, -0.179, 0.017, -0.287, 0.246, -0.088, 0.040, 0.005, 0.045, 0.032) * go_1(1.0, -1.0);
    result += mat4(0.091, -0.065, 0.013, -0.214, -0.202, -0.163, -0.196, -0.268, -0.120, 0.129, 0.087, -0.078, 0.067, 0.077, 0.537, -0.311) * go_1(1.0, 0.0);
    result += mat4(0.055, -0.255, 0.255, -0.037, 0.094, 0.046, 0.145, -0.573, -0.223, 0.024, -0.257, 0.117, 0.253, -0.250, -0.078, 0.132) * go_1(1.0, 1.0);
    result += vec4(0.184, 0.104, 0.076, -0.083);
    return result;
}

//!DESC Anime4K-style-Depth-to-Space
//!HOOK MAIN
//!BIND HOOKED
//!BIND conv2d_last_tf
//!SAVE MAIN
//!WIDTH HOOKED.w 2 *
//!HEIGHT HOOKED.h 2 *
//!WHEN OUTPUT.w MAIN.w / 1.200 > OUTPUT.h MAIN.h / 1.200 > *
vec4 hook() {
    vec2 f0 = fract(conv2d_last_tf_pos * conv2d_last_tf_size);
    ivec2 i0 = ivec2(f0 * vec2(2.0));
    float c0 = conv2d_last_tf_tex((vec2(0.5) - f0) * conv2d_last_tf_pt + conv2d_last_tf_pos)[i0.y * 2 + i0.x];
    return vec4(HOOKED_tex(HOOKED_pos).rgb + 0.2 * c0, 1.0);
}

//!DESC never runs at 2x: its condition asks for more than 3x
//!HOOK MAIN
//!BIND HOOKED
//!WHEN OUTPUT.w MAIN.w / 3.000 >
vec4 hook() {
    return vec4(1.0, 0.0, 0.0, 1.0);
}

//!DESC sharpen through HOOKED_pt
//!HOOK MAIN
//!BIND HOOKED
//!COMPONENTS 4
vec4 hook() {
    vec4 c = HOOKED_tex(HOOKED_pos);
    vec4 blur = 0.25 * (HOOKED_tex(HOOKED_pos + vec2(HOOKED_pt.x, 0.0)) + HOOKED_tex(HOOKED_pos - vec2(HOOKED_pt.x, 0.0))
                        + HOOKED_tex(HOOKED_pos + vec2(0.0, HOOKED_pt.y)) + HOOKED_tex(HOOKED_pos - vec2(0.0, HOOKED_pt.y)));
    return vec4(clamp(c.rgb + 0.5 * (c.rgb - blur.rgb), 0.0, 1.0), 1.0);
}
