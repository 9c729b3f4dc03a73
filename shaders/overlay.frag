#version 330 core
// Stats / status text rendered by numpy into an RGBA texture, blended over the picture.
in vec2 v_uv;
uniform sampler2D text;
out vec4 color;
void main() {
    color = textureLod(text, v_uv, 0.0);
}
