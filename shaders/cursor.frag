#version 330 core
// Guest cursor, two passes: `xor_pass` false draws the colour layer with straight-alpha blending;
// true draws the XOR layer through glLogicOp(GL_XOR), discarding pixels that are not XOR pixels.
in vec2 v_uv;
uniform sampler2D layer;
uniform bool xor_pass;
out vec4 color;
void main() {
    vec4 c = textureLod(layer, v_uv, 0.0);
    if (xor_pass) {
        if (c.a < 0.5)
            discard;
        color = vec4(c.rgb, 1.0);
    } else {
        if (c.a == 0.0)
            discard;
        color = c;
    }
}
