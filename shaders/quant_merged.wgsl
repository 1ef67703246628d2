// The attention's out-projection over a split decode's partial states (`gemv_merged`; after
// shaders/quant.wgsl, whose `gemv_group` and `x4` it uses: src/kernels/quant.rs puts it there).

// x (one row, k = heads × head_dim) is merged from `part` (shaders/attention.wgsl's decode_split: per
// head and range of keys [m, l, o_0 .. o_{head_dim-1}]) into workgroup memory by every workgroup,
// exactly as decode_combine merges it (the same operations in the same order, stored as T: a compiler
// may drop an f32 → f16 → f32 round trip in registers, not a store), and the GEMV reads it there
// (MERGED): the merge costs no dispatch of its own. XS_LEN = k (src/kernels/quant/merged.rs).

override MERGED: bool = false;
override XS_LEN: u32 = 4u;
var<workgroup> xs: array<T, XS_LEN>; // T: rounded as decode_combine rounds its output
@group(0) @binding(12) var<storage, read> part: array<f32>;

// Per (head, range) pair, heads × ranges ≤ WS_LEN (src/kernels/quant/merged.rs checks): the
// range's m, then its weight exp(m − the head's max) (ws); its l, then at each head's first pair the
// head's 1/l (wl). Read from `part` by a thread a pair: one round trip, not one a range.
const WS_LEN: u32 = 1024u;
var<workgroup> ws: array<f32, WS_LEN>;
var<workgroup> wl: array<f32, WS_LEN>;

fn merge_x(lid: u32) {
    let d = p.head_dim;
    let stride = d + 2u;
    let heads = p.k / d;
    let pairs = heads * p.splits;
    for (var i = lid; i < pairs; i += 256u) {
        ws[i] = part[i * stride];
        wl[i] = part[i * stride + 1u];
    }
    workgroupBarrier();
    // A thread a head, in workgroup memory: the weights exp(m − max) in place and the normaliser,
    // as decode_combine computes them (the max over the head's ranges, then l summed in order).
    for (var h = lid; h < heads; h += 256u) {
        let first = h * p.splits;
        var big = -3.4028234663852886e38;
        for (var s = 0u; s < p.splits; s++) {
            big = max(big, ws[first + s]);
        }
        var l = 0.0;
        for (var s = 0u; s < p.splits; s++) {
            let scale = exp(ws[first + s] - big);
            ws[first + s] = scale;
            l = fma(wl[first + s], scale, l);
        }
        wl[first] = select(0.0, 1.0 / l, l > 0.0);
    }
    workgroupBarrier();
    // A thread an element: the weighted sum over the ranges, in decode_combine's order.
    for (var e = lid; e < p.k; e += 256u) {
        let first = (e / d) * p.splits;
        let o_at = first * stride + 2u + e % d;
        var o = 0.0;
        for (var s = 0u; s < p.splits; s++) {
            o = fma(part[o_at + s * stride], ws[first + s], o);
        }
        xs[e] = T(o * wl[first]);
    }
    workgroupBarrier();
}

@compute @workgroup_size(256, 1, 1)
fn gemv_merged(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    merge_x(lid);
    gemv_rows8(vec3<u32>(wg.x, 0u, 0u), lid);
}
