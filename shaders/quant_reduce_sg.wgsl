// The sums of shaders/quant.wgsl's kernels with subgroup operations (natively, where the adapter's
// subgroups are exactly 32 lanes, so a row's 32 lanes are one subgroup: src/kernels/quant.rs checks;
// naga takes subgroup builtins without an `enable`). Same functions as quant_reduce.wgsl, no barrier
// in the row sums.

fn row_sum(v: f32, lid: u32) -> f32 {
    return subgroupAdd(v);
}

fn row_sum2(a: f32, b: f32, lid: u32) -> vec2<f32> {
    return subgroupAdd(vec2<f32>(a, b));
}

fn row_sum4(v: vec4<f32>, lid: u32) -> vec4<f32> {
    return subgroupAdd(v);
}

fn row_sum4x2(a: vec4<f32>, b: vec4<f32>, lid: u32) -> Sum4 {
    return Sum4(subgroupAdd(a), subgroupAdd(b));
}
