// Subgroup helpers of shaders/attention_tiled.wgsl (native, subgroups of at least 8 lanes; naga takes
// subgroup builtins without an `enable`, and refuses `enable subgroups;`): the 8
// threads that share a row group are 8 consecutive lanes, so a row's maximum is three butterfly
// shuffles; V has its own tile, staged with K (8 KiB more workgroup memory).
const SG: bool = true;

var<workgroup> v_s: array<vec4<f32>, BC * V4>;

fn row_max8(x: f32) -> f32 {
    var m = max(x, subgroupShuffleXor(x, 1u));
    m = max(m, subgroupShuffleXor(m, 2u));
    return max(m, subgroupShuffleXor(m, 4u));
}

fn v_get(i: u32) -> vec4<f32> {
    return v_s[i];
}

fn v_put(i: u32, val: vec4<f32>) {
    v_s[i] = val;
}
