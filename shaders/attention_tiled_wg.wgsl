// Portable helpers of shaders/attention_tiled.wgsl: V shares the K tile's workgroup memory, and row
// maxima go through workgroup memory (the main loop reads them there when SG is false).
const SG: bool = false;

fn row_max8(x: f32) -> f32 {
    return x;
}

fn v_get(i: u32) -> vec4<f32> {
    return kv_s[i];
}

fn v_put(i: u32, val: vec4<f32>) {
    kv_s[i] = val;
}
