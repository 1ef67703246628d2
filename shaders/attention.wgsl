// Scaled dot-product attention, flash style: scores are never stored; each query keeps a running
// maximum m, normaliser l and output accumulator o over the keys (the online softmax), so memory is
// O(queries · head_dim) whatever the sequence length.
//
//   q   [batch, q_len, n_heads, head_dim]
//   k,v [batch, kv_cap, n_kv_heads, head_dim]   a KV cache read in place: keys 0..kv_len are valid
//   out [batch, q_len, n_heads, head_dim]
//   mask [batch, kv_cap] i32 (1 attend, 0 padding), used when p.has_mask = 1
// Queries are the last q_len positions: query i sits at position kv_len - q_len + i, and with
// p.causal = 1 it sees keys 0..=that position. Grouped-query attention: query head h reads KV head
// h / (n_heads / n_kv_heads). Statistics and accumulation in f32.
//
// Two entry points:
//   prefill: a workgroup of 64 threads takes 64 query rows of one (batch, head); K/V tiles are staged
//            in workgroup memory and every thread walks them for its own row.
//   decode:  a workgroup of 256 threads takes one query row; threads split the keys for the scores and
//            (key group, dimension) pairs for the output, for few queries over a short cache.
//   decode_split + decode_combine: split-K ("flash decoding") for a long cache: one workgroup a
//            (row, head, range of SPLIT_KEYS keys) writes its partial softmax state; a second pass
//            merges the ranges. Keeps the GPU busy when heads alone are too few workgroups.

// Params, bindings 0-5, LOWEST, q_index, kv_index and visible: shaders/attention_common.wgsl.
// decode_split → decode_combine: per (batch, row, head, split) the running max m, the normaliser l and
// the unnormalised output (head_dim values): [m, l, o_0 .. o_{d-1}].
@group(0) @binding(6) var<storage, read_write> part: array<f32>;

// MAX_HEAD_DIM (128 or 256): prepended by src/kernels/attention.rs.
const TILE_FLOATS: u32 = 2048u; // K and V tiles: 2 × 8 KiB, within WebGPU's 16 KiB minimum

var<workgroup> k_tile: array<f32, TILE_FLOATS>;
var<workgroup> v_tile: array<f32, TILE_FLOATS>;

@compute @workgroup_size(64, 1, 1)
fn prefill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let h = wid.y;
    let b = wid.z;
    let kvh = h / (p.n_heads / p.n_kv_heads);
    let i = wid.x * 64u + t;
    let has_row = i < p.q_len;
    let d = p.head_dim;
    let tile_keys = TILE_FLOATS / d;

    var qr: array<f32, MAX_HEAD_DIM>;
    var o: array<f32, MAX_HEAD_DIM>;
    for (var c = 0u; c < d; c++) {
        o[c] = 0.0;
        qr[c] = 0.0;
        if (has_row) {
            qr[c] = f32(q[q_index(b, i, h) + c]) * p.scale;
        }
    }
    var m = LOWEST;
    var l = 0.0;

    // Keys past the last visible one of this workgroup's rows are skipped (causal), uniformly.
    var end = p.kv_len;
    if (p.causal == 1u) {
        end = min(p.kv_len, p.kv_len - p.q_len + min(wid.x * 64u + 63u, p.q_len - 1u) + 1u);
    }
    for (var j0 = 0u; j0 < end; j0 += tile_keys) {
        let n = min(tile_keys, end - j0);
        for (var e = t; e < n * d; e += 64u) {
            let j = j0 + e / d;
            let base = kv_index(b, j, kvh) + e % d;
            k_tile[e] = f32(k[base]);
            v_tile[e] = f32(v[base]);
        }
        workgroupBarrier();
        if (has_row) {
            for (var jj = 0u; jj < n; jj++) {
                if (!visible(b, i, j0 + jj)) {
                    continue;
                }
                var s = 0.0;
                for (var c = 0u; c < d; c++) {
                    s = fma(qr[c], k_tile[jj * d + c], s);
                }
                s = capped(s);
                if (s > m) {
                    // New maximum: rescale what was accumulated under the old one.
                    let corr = exp(m - s);
                    l = l * corr + 1.0;
                    for (var c = 0u; c < d; c++) {
                        o[c] = fma(o[c], corr, v_tile[jj * d + c]);
                    }
                    m = s;
                } else {
                    let w = exp(s - m);
                    l += w;
                    for (var c = 0u; c < d; c++) {
                        o[c] = fma(w, v_tile[jj * d + c], o[c]);
                    }
                }
            }
        }
        workgroupBarrier();
    }
    if (has_row) {
        let inv = select(0.0, 1.0 / l, l > 0.0);
        for (var c = 0u; c < d; c++) {
            out[q_index(b, i, h) + c] = T(o[c] * inv);
        }
    }
}

const DWG: u32 = 256u;
var<workgroup> scores: array<f32, DWG>;
var<workgroup> reduce_buf: array<f32, DWG>;

// reduce_max and reduce_sum (all 256 threads get the workgroup's max / sum; barriers inside):
// shaders/attention_reduce.wgsl (trees in reduce_buf) or attention_reduce_sg.wgsl (subgroups).

// The online-softmax state of one workgroup over keys [begin, stop) of query row i, head h: m and l
// are the same in every thread; acc is thread t's share of the unnormalised output (see v_lanes).
// begin and stop must be the same across the workgroup (barriers inside).
struct Partial {
    m: f32,
    l: f32,
    acc: vec4<f32>,
}

// The decode kernels' head size: the pipeline constant HD where set (then every loop over a head's
// dimensions has a trip count the driver's compiler knows, and unrolls: all of a key's loads in
// flight at once), else the runtime p.head_dim.
override HD: u32 = 0u;

// The output's layout over threads. VEC_V (head_dim a multiple of 4): thread t owns the four
// dimensions l, l + d/4, l + d/2, l + 3d/4 (l = t % (d/4)) of key group t / (d/4), so 1024/d groups
// walk a tile's keys (16 for head_dim 64: 16 keys a thread for a 256-key tile, all of a key's loads
// independent) and each load of a group's lanes reads d contiguous bytes of one key; else thread t
// owns dimension t % d of key group t / d (256/d groups, 64 keys a thread for head_dim 64), and the
// scores are a thread's key each (decode_score). VEC_V scores keys in the same layout (tile_scores4).
override VEC_V: bool = true;

// VEC_V: a thread's values of its first V_PRE keys of a tile are loaded before the tile's scores
// (they do not depend on them), so their latency can overlap the scores' loads and the softmax's
// barriers instead of following them: with 8, a whole tile of up to 8 · 1024/d keys (128 for
// head_dim 64: the split decode's 64-key ranges, short contexts) waits for memory once, not twice.
// 0 (the default until timed on a GPU): off; natively `WEBGPU_INFER_DECODE_V_PREFETCH=N` (≤ 8).
override V_PRE: u32 = 0u;
const V_PRE_MAX: u32 = 8u;

fn decode_dim() -> u32 {
    if (HD > 0u) {
        return HD;
    }
    return p.head_dim;
}

// Threads that share one key's row (one dimension each, or with VEC_V four interleaved ones).
fn v_lanes() -> u32 {
    let d = decode_dim();
    if (VEC_V && d % 4u == 0u) {
        return d / 4u;
    }
    return d;
}

// The score of the key at kb against the query at qb. Eight loads an iteration, four sums: the loads
// are independent, so a thread waits for memory d / 8 times rather than d, or once where HD makes the
// loop unrollable. q is read where it lies (every thread the same row: one fetch, then the cache),
// its loads issued with the key's rather than staged in workgroup memory behind a barrier first.
fn decode_score(kb: u32, qb: u32) -> f32 {
    let d = decode_dim();
    var s = vec4<f32>(0.0);
    var e = 0u;
    for (; e + 8u <= d; e += 8u) {
        let a = vec4<f32>(f32(k[kb + e]), f32(k[kb + e + 1u]), f32(k[kb + e + 2u]), f32(k[kb + e + 3u]));
        let c = vec4<f32>(f32(k[kb + e + 4u]), f32(k[kb + e + 5u]), f32(k[kb + e + 6u]), f32(k[kb + e + 7u]));
        let qa = vec4<f32>(f32(q[qb + e]), f32(q[qb + e + 1u]), f32(q[qb + e + 2u]), f32(q[qb + e + 3u]));
        let qc = vec4<f32>(f32(q[qb + e + 4u]), f32(q[qb + e + 5u]), f32(q[qb + e + 6u]), f32(q[qb + e + 7u]));
        s = fma(qa, a, s);
        s = fma(qc, c, s);
    }
    for (; e < d; e++) {
        s.x = fma(f32(q[qb + e]), f32(k[kb + e]), s.x);
    }
    return (s.x + s.y) + (s.z + s.w);
}

// Four values of one key: elements i, i + step, i + 2·step, i + 3·step.
fn v4(i: u32, step: u32) -> vec4<f32> {
    return vec4<f32>(f32(v[i]), f32(v[i + step]), f32(v[i + 2u * step]), f32(v[i + 3u * step]));
}

// VEC_V: the values of this thread's key g + u·groups of a tile, if u < V_PRE and the key is in the
// tile (else 0).
fn pre_value(vb: u32, stride: u32, g: u32, groups: u32, n: u32, u: u32) -> vec4<f32> {
    let jj = g + u * groups;
    if (u < V_PRE && jj < n) {
        return v4(vb + jj * stride, v_lanes());
    }
    return vec4<f32>(0.0);
}

// VEC_V: this thread's values of its first V_PRE keys g, g + groups, ... (< n) of a tile (constant
// indices only: no private array indexed at run time).
fn prefetch_values(vb: u32, stride: u32, g: u32, groups: u32, n: u32) -> array<vec4<f32>, V_PRE_MAX> {
    return array<vec4<f32>, V_PRE_MAX>(pre_value(vb, stride, g, groups, n, 0u),
        pre_value(vb, stride, g, groups, n, 1u), pre_value(vb, stride, g, groups, n, 2u),
        pre_value(vb, stride, g, groups, n, 3u), pre_value(vb, stride, g, groups, n, 4u),
        pre_value(vb, stride, g, groups, n, 5u), pre_value(vb, stride, g, groups, n, 6u),
        pre_value(vb, stride, g, groups, n, 7u));
}

// A tile's score j, kept inside `scores` (past n a tile's scores are 0, and so are `pre`'s values; a
// small head's groups can reach past DWG).
fn score_at(j: u32) -> f32 {
    return scores[min(j, DWG - 1u)];
}

// VEC_V: this thread's four dimensions summed over its keys g, g + groups, ... (< n) of a tile, each
// weighted by its score: the first V_PRE from `pre` (those past the tile are 0, and so are their
// scores), then eight keys (32 independent loads) an iteration.
fn tile_values4(vb: u32, stride: u32, g: u32, groups: u32, n: u32, pre: array<vec4<f32>, V_PRE_MAX>) -> vec4<f32> {
    let lanes = v_lanes();
    var s = vec4<f32>(0.0);
    if (V_PRE > 0u) {
        s = fma(vec4<f32>(score_at(g)), pre[0], s);
        s = fma(vec4<f32>(score_at(g + groups)), pre[1], s);
        s = fma(vec4<f32>(score_at(g + 2u * groups)), pre[2], s);
        s = fma(vec4<f32>(score_at(g + 3u * groups)), pre[3], s);
        s = fma(vec4<f32>(score_at(g + 4u * groups)), pre[4], s);
        s = fma(vec4<f32>(score_at(g + 5u * groups)), pre[5], s);
        s = fma(vec4<f32>(score_at(g + 6u * groups)), pre[6], s);
        s = fma(vec4<f32>(score_at(g + 7u * groups)), pre[7], s);
    }
    var jj = g + V_PRE * groups;
    for (; jj + 7u * groups < n; jj += 8u * groups) {
        let i0 = vb + jj * stride;
        let st = groups * stride;
        let x0 = v4(i0, lanes);
        let x1 = v4(i0 + st, lanes);
        let x2 = v4(i0 + 2u * st, lanes);
        let x3 = v4(i0 + 3u * st, lanes);
        let x4 = v4(i0 + 4u * st, lanes);
        let x5 = v4(i0 + 5u * st, lanes);
        let x6 = v4(i0 + 6u * st, lanes);
        let x7 = v4(i0 + 7u * st, lanes);
        s = fma(vec4<f32>(scores[jj]), x0, s);
        s = fma(vec4<f32>(scores[jj + groups]), x1, s);
        s = fma(vec4<f32>(scores[jj + 2u * groups]), x2, s);
        s = fma(vec4<f32>(scores[jj + 3u * groups]), x3, s);
        s = fma(vec4<f32>(scores[jj + 4u * groups]), x4, s);
        s = fma(vec4<f32>(scores[jj + 5u * groups]), x5, s);
        s = fma(vec4<f32>(scores[jj + 6u * groups]), x6, s);
        s = fma(vec4<f32>(scores[jj + 7u * groups]), x7, s);
    }
    for (; jj < n; jj += groups) {
        s = fma(vec4<f32>(scores[jj]), v4(vb + jj * stride, lanes), s);
    }
    return s;
}

// Else: this thread's one dimension summed over its keys, eight keys an iteration (independent loads,
// as in decode_score).
fn tile_values1(vb: u32, stride: u32, g: u32, groups: u32, n: u32) -> f32 {
    var part_sum = vec4<f32>(0.0);
    var jj = g;
    for (; jj + 7u * groups < n; jj += 8u * groups) {
        let x = vec4<f32>(f32(v[vb + jj * stride]), f32(v[vb + (jj + groups) * stride]),
            f32(v[vb + (jj + 2u * groups) * stride]), f32(v[vb + (jj + 3u * groups) * stride]));
        let j4 = jj + 4u * groups;
        let y = vec4<f32>(f32(v[vb + j4 * stride]), f32(v[vb + (j4 + groups) * stride]),
            f32(v[vb + (j4 + 2u * groups) * stride]), f32(v[vb + (j4 + 3u * groups) * stride]));
        let w4 = vec4<f32>(scores[jj], scores[jj + groups], scores[jj + 2u * groups],
            scores[jj + 3u * groups]);
        let u4 = vec4<f32>(scores[j4], scores[j4 + groups], scores[j4 + 2u * groups],
            scores[j4 + 3u * groups]);
        part_sum = fma(u4, y, fma(w4, x, part_sum));
    }
    for (; jj < n; jj += groups) {
        part_sum.x = fma(scores[jj], f32(v[vb + jj * stride]), part_sum.x);
    }
    return (part_sum.x + part_sum.y) + (part_sum.z + part_sum.w);
}

// VEC_V's scores: each key's row is read by its d/4 lanes together (a key's 4·d contiguous bytes in
// one go, rather than one thread walking a row while its neighbours walk rows n_kv_heads·d apart:
// 8× fewer cache lines touched a load for head_dim 64), each lane's 4-term dot product goes to
// `kpart`, and thread j sums key j's lanes. Keys in rounds of as many as `kpart` holds.
const KPART_FLOATS: u32 = 2304u;
var<workgroup> kpart: array<f32, KPART_FLOATS>;

// The raw scores q·k of a tile's first n keys (from the key at kb, `stride` apart) into scores[0..n).
// Called by every thread (barriers inside); q4: this thread's four elements of q.
fn tile_scores4(kb: u32, stride: u32, q4: vec4<f32>, t: u32, n: u32) {
    let lanes = v_lanes();
    let groups = DWG / lanes;
    let g = t / lanes;
    let lane = t % lanes;
    let row = lanes + 1u; // padded: thread j's reads of its key's lanes fall in different banks
    let round_keys = min(DWG, (KPART_FLOATS / row) / groups * groups);
    for (var r0 = 0u; r0 < n; r0 += round_keys) {
        for (var jj = g; jj < round_keys; jj += groups) {
            var part = 0.0;
            if (r0 + jj < n) {
                let e = kb + (r0 + jj) * stride + lane;
                part = dot(q4, vec4<f32>(f32(k[e]), f32(k[e + lanes]), f32(k[e + 2u * lanes]),
                    f32(k[e + 3u * lanes])));
            }
            kpart[jj * row + lane] = part;
        }
        workgroupBarrier();
        if (t < round_keys && r0 + t < n) {
            var s = 0.0;
            for (var e = 0u; e < lanes; e++) {
                s += kpart[t * row + e];
            }
            scores[r0 + t] = s;
        }
        workgroupBarrier();
    }
}

fn decode_range(i: u32, h: u32, b: u32, t: u32, begin: u32, stop: u32) -> Partial {
    let kvh = h / (p.n_heads / p.n_kv_heads);
    let d = decode_dim();
    let lanes = v_lanes();
    let groups = DWG / lanes;
    let g = t / lanes;
    let c = t % lanes;
    let qb = q_index(b, i, h);
    let stride = p.n_kv_heads * d; // one key to the next in the cache
    var q4 = vec4<f32>(0.0);
    if (lanes < d) {
        q4 = vec4<f32>(f32(q[qb + c]), f32(q[qb + c + lanes]), f32(q[qb + c + 2u * lanes]),
            f32(q[qb + c + 3u * lanes]));
    }
    var m = LOWEST;
    var l = 0.0;
    var acc = vec4<f32>(0.0);
    for (var j0 = begin; j0 < stop; j0 += DWG) {
        let n = min(DWG, stop - j0);
        let vb = kv_index(b, j0, kvh) + c;
        var pre = array<vec4<f32>, V_PRE_MAX>();
        if (lanes < d) {
            pre = prefetch_values(vb, stride, g, groups, n);
            tile_scores4(kv_index(b, j0, kvh), stride, q4, t, n);
        }
        // Thread t takes key j0 + t.
        let j = j0 + t;
        var s = LOWEST;
        var ok = false;
        if (j < stop && visible(b, i, j)) {
            ok = true;
            if (lanes < d) {
                s = capped(scores[t] * p.scale);
            } else {
                s = capped(decode_score(kv_index(b, j, kvh), qb) * p.scale);
            }
        }
        let tile_max = reduce_max(t, s);
        let m_new = max(m, tile_max);
        var w = 0.0;
        if (ok) {
            w = exp(s - m_new);
        }
        scores[t] = w;
        let corr = exp(m - m_new);
        l = l * corr + reduce_sum(t, w); // reduce_sum's barriers also publish `scores`
        m = m_new;
        if (lanes < d) {
            acc = acc * corr + tile_values4(vb, stride, g, groups, n, pre);
        } else {
            acc.x = acc.x * corr + tile_values1(vb, stride, g, groups, n);
        }
        workgroupBarrier();
    }
    return Partial(m, l, acc);
}

var<workgroup> group_sums: array<vec4<f32>, DWG>;

// Sums the key groups' shares of each dimension: thread t < d gets dimension t's total.
fn sum_groups(t: u32, acc: vec4<f32>) -> f32 {
    let d = decode_dim();
    let lanes = v_lanes();
    group_sums[t] = acc;
    workgroupBarrier();
    var o = 0.0;
    if (t < d) {
        // Dimension t sits in lane t % lanes, component t / lanes (0 unless VEC_V).
        let lane = t % lanes;
        let comp = t / lanes;
        for (var gg = 0u; gg < DWG / lanes; gg++) {
            o += group_sums[gg * lanes + lane][comp];
        }
    }
    return o;
}

// The first key row i may see: 0, or with a sliding window the oldest key inside it.
fn row_begin(i: u32) -> u32 {
    let pos = p.kv_len - p.q_len + i;
    if (p.window > 0u && pos + 1u > p.window) {
        return pos + 1u - p.window;
    }
    return 0u;
}

// Keys row i may see: all kv_len, or up to its own position when causal.
fn row_end(i: u32) -> u32 {
    if (p.causal == 1u) {
        return p.kv_len - p.q_len + i + 1u;
    }
    return p.kv_len;
}

// One workgroup a (query row, head, batch). head_dim divides 256: thread t owns dimension t % d of key
// group t / d for the output.
@compute @workgroup_size(256, 1, 1)
fn decode(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = wid.x;
    let h = wid.y;
    let b = wid.z;
    let r = decode_range(i, h, b, t, row_begin(i), row_end(i));
    let o = sum_groups(t, r.acc);
    if (t < p.head_dim) {
        let inv = select(0.0, 1.0 / r.l, r.l > 0.0);
        out[q_index(b, i, h) + t] = T(o * inv);
    }
}

// Keys a workgroup of the split decode takes (a pipeline constant: src/kernels/attention.rs, `split_size`).
override SPLIT_KEYS: u32 = 64u;

fn part_index(b: u32, i: u32, h: u32, split: u32) -> u32 {
    return (((b * p.q_len + i) * p.n_heads + h) * p.n_splits + split) * (p.head_dim + 2u);
}

// Workgroup (row × split, head, batch): keys [split·SPLIT_KEYS, +SPLIT_KEYS) of row i, as decode does
// them, written unnormalised to `part`. A range past the row's last key writes m = LOWEST, l = 0.
@compute @workgroup_size(256, 1, 1)
fn decode_split(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = wid.x / p.n_splits;
    let split = wid.x % p.n_splits;
    let h = wid.y;
    let b = wid.z;
    let begin = max(split * SPLIT_KEYS, row_begin(i));
    let stop = max(begin, min(row_end(i), split * SPLIT_KEYS + SPLIT_KEYS));
    let r = decode_range(i, h, b, t, begin, stop);
    let o = sum_groups(t, r.acc);
    let base = part_index(b, i, h, split);
    if (t < p.head_dim) {
        part[base + 2u + t] = o;
    }
    if (t == 0u) {
        part[base] = r.m;
        part[base + 1u] = r.l;
    }
}

// Workgroup (row, head, batch), thread t one output dimension: merges the splits' states, each scaled
// by exp(m_s - M) for the overall maximum M, and normalises.
@compute @workgroup_size(256, 1, 1)
fn decode_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = wid.x;
    let h = wid.y;
    let b = wid.z;
    if (t >= p.head_dim) {
        return;
    }
    var big = LOWEST;
    for (var s = 0u; s < p.n_splits; s++) {
        big = max(big, part[part_index(b, i, h, s)]);
    }
    var l = 0.0;
    var o = 0.0;
    for (var s = 0u; s < p.n_splits; s++) {
        let base = part_index(b, i, h, s);
        let w = exp(part[base] - big);
        l = fma(part[base + 1u], w, l);
        o = fma(part[base + 2u + t], w, o);
    }
    let inv = select(0.0, 1.0 / l, l > 0.0);
    out[q_index(b, i, h) + t] = T(o * inv);
}
