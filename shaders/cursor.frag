#version 330 core
// Guest cursor, two passes: `xor_pass` false draws the colour layer with straight-alpha blending;
// true draws the XOR layer through glLogicOp(GL_XOR), discarding pixels that are not XOR pixels.
in vec2 v_uv;
uniform sampler2D layer;
uniform bool xor_pass;
// 0: the colours as they are. Else the cursor's SDR white level / 80 (KVMFR 34) over a tone-mapped HDR
// frame: its colours are SDR content at that level and go through the frame's own mapping (hdr.glsl).
uniform float cursor_white;
out vec4 color;
//#include hdr.glsl
void main() {
    vec4 c = textureLod(layer, v_uv, 0.0);
    if (xor_pass) {
        if (c.a < 0.5)
            discard;
        color = vec4(c.rgb, 1.0);
    } else {
        if (c.a == 0.0)
            discard;
        if (cursor_white > 0.0)
            c.rgb = srgb_encode(tone_map(srgb_decode(c.rgb) * cursor_white));
        color = c;
    }
}
