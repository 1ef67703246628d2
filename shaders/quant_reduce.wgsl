// The sums shaders/quant.wgsl's kernels reduce with, portable version (every adapter): trees in
// workgroup memory (`partial`, `partial_up`, `partial4`, `partial4_up`, declared there). The row sums
// add up the 32 lanes of a row (5 barriers) and give every lane its row's total. Called by every
// thread of the workgroup (barriers inside). The subgroup version,
// quant_reduce_sg.wgsl, replaces this file where the adapter's subgroups are 32 lanes wide.

fn row_sum(v: f32, lid: u32) -> f32 {
    partial[lid] = v;
    for (var s = LANES / 2u; s > 0u; s /= 2u) {
        workgroupBarrier();
        if (lid % LANES < s) {
            partial[lid] += partial[lid + s];
        }
    }
    workgroupBarrier();
    let total = partial[lid - lid % LANES];
    workgroupBarrier();
    return total;
}

fn row_sum2(a: f32, b: f32, lid: u32) -> vec2<f32> {
    partial[lid] = a;
    partial_up[lid] = b;
    for (var s = LANES / 2u; s > 0u; s /= 2u) {
        workgroupBarrier();
        if (lid % LANES < s) {
            partial[lid] += partial[lid + s];
            partial_up[lid] += partial_up[lid + s];
        }
    }
    workgroupBarrier();
    let first = lid - lid % LANES;
    let total = vec2<f32>(partial[first], partial_up[first]);
    workgroupBarrier();
    return total;
}

fn row_sum4(v: vec4<f32>, lid: u32) -> vec4<f32> {
    partial4[lid] = v;
    for (var s = LANES / 2u; s > 0u; s /= 2u) {
        workgroupBarrier();
        if (lid % LANES < s) {
            partial4[lid] += partial4[lid + s];
        }
    }
    workgroupBarrier();
    let total = partial4[lid - lid % LANES];
    workgroupBarrier();
    return total;
}

fn row_sum4x2(a: vec4<f32>, b: vec4<f32>, lid: u32) -> Sum4 {
    partial4[lid] = a;
    partial4_up[lid] = b;
    for (var s = LANES / 2u; s > 0u; s /= 2u) {
        workgroupBarrier();
        if (lid % LANES < s) {
            partial4[lid] += partial4[lid + s];
            partial4_up[lid] += partial4_up[lid + s];
        }
    }
    workgroupBarrier();
    let first = lid - lid % LANES;
    let total = Sum4(partial4[first], partial4_up[first]);
    workgroupBarrier();
    return total;
}
