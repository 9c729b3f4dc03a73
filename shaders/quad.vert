#version 330 core
// One textured quad. `pos` is in source pixels (x right, y down, origin top-left);
// `to_ndc` maps it to the window (scale, letterbox offset, rotation, y flip).
layout(location = 0) in vec2 pos;
layout(location = 1) in vec2 uv;
uniform mat3 to_ndc;
out vec2 v_uv;
void main() {
    vec3 p = to_ndc * vec3(pos, 1.0);
    gl_Position = vec4(p.xy, 0.0, 1.0);
    v_uv = uv;
}
