// Masked mean pooling, as sentence-transformers' Pooling(mean) does:
//   out[b, j] = Σ_s x[b, s, j]·mask[b, s] / max(Σ_s mask[b, s], 1e-9)
// x is [batch, seq, hidden], mask [batch, seq] of i32 0/1. One thread an output element; sums in f32.

struct Params {
    batch: u32,
    seq: u32,
    hidden: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> mask: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = gid.x + gid.y * groups.x * 256u;
    if (e >= p.batch * p.hidden) {
        return;
    }
    let b = e / p.hidden;
    let j = e % p.hidden;
    var sum = 0.0;
    var count = 0.0;
    for (var s = 0u; s < p.seq; s++) {
        let m = f32(mask[b * p.seq + s]);
        sum += f32(x[(b * p.seq + s) * p.hidden + j]) * m;
        count += m;
    }
    out[e] = T(sum / max(count, 1e-9));
}
