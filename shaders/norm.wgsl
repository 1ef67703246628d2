// Row normalisations over the last axis, one workgroup a row, statistics in f32:
//   MODE 0, LayerNorm: (x - mean) / sqrt(var + eps) · w + b      (two passes: mean, then variance)
//   MODE 1, RMSNorm:   x / sqrt(mean(x²) + eps) · w                (LLaMA)
//   MODE 2, L2:        x / max(‖x‖₂, eps)                          (torch.nn.functional.normalize)
// Every mode binds w and b (unused ones get a placeholder buffer) so the layout is the same.

struct Params {
    rows: u32,
    cols: u32,
    eps: f32,
    x_offset: u32,
    w_offset: u32,
    b_offset: u32,
    out_offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> w: array<T>;
@group(0) @binding(2) var<storage, read> b: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;
@group(0) @binding(4) var<uniform> p: Params;

override MODE: u32 = 0u;
const WG: u32 = 256u;

var<workgroup> partial: array<f32, WG>;

// Sum of `v` over the workgroup; every thread gets the total.
fn workgroup_sum(t: u32, v: f32) -> f32 {
    partial[t] = v;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (t < stride) {
            partial[t] += partial[t + stride];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier(); // `partial` is reused by the next call
    return total;
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let row = wid.x + wid.y * groups.x;
    if (row >= p.rows) {
        return;
    }
    let base = p.x_offset + row * p.cols;
    let n = f32(p.cols);

    var mean = 0.0;
    if (MODE == 0u) {
        var s = 0.0;
        for (var i = t; i < p.cols; i += WG) {
            s += f32(x[base + i]);
        }
        mean = workgroup_sum(t, s) / n;
    }
    var sq = 0.0;
    for (var i = t; i < p.cols; i += WG) {
        let d = f32(x[base + i]) - mean;
        sq += d * d;
    }
    let total_sq = workgroup_sum(t, sq);
    var scale: f32;
    if (MODE == 2u) {
        scale = 1.0 / max(sqrt(total_sq), p.eps);
    } else {
        scale = inverseSqrt(total_sq / n + p.eps);
    }

    let out_base = p.out_offset + row * p.cols;
    for (var i = t; i < p.cols; i += WG) {
        var v = (f32(x[base + i]) - mean) * scale;
        if (MODE == 0u) {
            v = v * f32(w[p.w_offset + i]) + f32(b[p.b_offset + i]);
        } else if (MODE == 1u) {
            v = v * f32(w[p.w_offset + i]);
        }
        out[out_base + i] = T(v);
    }
}
