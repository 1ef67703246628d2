// The decode kernels' workgroup reductions with subgroup operations, for adapters whose subgroups are
// exactly 32 lanes (src/kernels/attention.rs checks; invocations 32s..32s+31 form subgroup s): each
// subgroup reduces in registers, then its first lane's value goes through `reduce_buf` (2 barriers
// rather than 10). Same contract as shaders/attention_reduce.wgsl.

const SG_LANES: u32 = 32u;

fn reduce_max(t: u32, x: f32) -> f32 {
    let s = subgroupMax(x);
    if (t % SG_LANES == 0u) {
        reduce_buf[t / SG_LANES] = s;
    }
    workgroupBarrier();
    var r = reduce_buf[0];
    for (var i = 1u; i < DWG / SG_LANES; i++) {
        r = max(r, reduce_buf[i]);
    }
    workgroupBarrier();
    return r;
}

fn reduce_sum(t: u32, x: f32) -> f32 {
    let s = subgroupAdd(x);
    if (t % SG_LANES == 0u) {
        reduce_buf[t / SG_LANES] = s;
    }
    workgroupBarrier();
    var r = reduce_buf[0];
    for (var i = 1u; i < DWG / SG_LANES; i++) {
        r += reduce_buf[i];
    }
    workgroupBarrier();
    return r;
}
