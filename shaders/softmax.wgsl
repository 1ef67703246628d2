// Softmax over the last axis: out[r, i] = exp(x[r, i] - max_r) / sum_j exp(x[r, j] - max_r).
//
// One workgroup a row. Each thread keeps a running (max, sum) over its strided share of the row, the
// "online softmax" update, so the row is read once for the statistics and once to write; the 256
// partial pairs are then merged in workgroup memory. Statistics are f32 whatever T is. Entries of
// -inf (masked positions) contribute 0, as in PyTorch.

struct Params {
    rows: u32,
    cols: u32,
    in_offset: u32,
    out_offset: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<T>;
@group(0) @binding(2) var<uniform> p: Params;

const WG: u32 = 256u;
// The lowest finite f32: a start value for the running maximum that keeps exp() away from inf - inf.
const LOWEST: f32 = -3.4028234663852886e38;

var<workgroup> part_max: array<f32, WG>;
var<workgroup> part_sum: array<f32, WG>;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    // Uniform across the workgroup, so returning early keeps the barriers below in uniform control flow.
    let row = wid.x + wid.y * groups.x;
    if (row >= p.rows) {
        return;
    }
    let base_in = p.in_offset + row * p.cols;
    let base_out = p.out_offset + row * p.cols;

    var m = LOWEST;
    var s = 0.0;
    for (var i = t; i < p.cols; i += WG) {
        let v = f32(x[base_in + i]);
        if (v > m) {
            s = s * exp(m - v) + 1.0;
            m = v;
        } else {
            s += exp(v - m);
        }
    }
    part_max[t] = m;
    part_sum[t] = s;
    workgroupBarrier();

    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (t < stride) {
            let m1 = part_max[t];
            let m2 = part_max[t + stride];
            let mm = max(m1, m2);
            part_sum[t] = part_sum[t] * exp(m1 - mm) + part_sum[t + stride] * exp(m2 - mm);
            part_max[t] = mm;
        }
        workgroupBarrier();
    }
    let row_max = part_max[0];
    let inv_sum = 1.0 / part_sum[0];

    for (var i = t; i < p.cols; i += WG) {
        out[base_out + i] = T(exp(f32(x[base_in + i]) - row_max) * inv_sum);
    }
}
