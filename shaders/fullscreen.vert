#version 330 core
// A triangle covering the whole target; conversion shaders read texels at gl_FragCoord.
void main() {
    vec2 p = vec2(float((gl_VertexID & 1) * 4 - 1), float((gl_VertexID & 2) * 2 - 1));
    gl_Position = vec4(p, 0.0, 1.0);
}
