// Prefill attention as two tiled products (the layout, Params and semantics of shaders/attention.wgsl,
// whose `prefill` entry this replaces on GPUs). The host prepends `const HD: u32 = 32u | 64u;`, the
// head dimension, so that every array below has a fixed size, and one of two small files:
// attention_tiled_wg.wgsl (portable: SG = false) or attention_tiled_sg.wgsl (SG = true, native with
// subgroups of at least 8 lanes: a row's maximum by three lane shuffles instead of a round trip
// through workgroup memory, and V staged with K in a buffer of its own, `v_put`/`v_get`: 3 barriers a
// key tile instead of 4).
//
// A workgroup of 128 threads takes BR = 64 query rows of one (batch, head) and walks the keys BC = 32
// at a time. Thread (tx, ty) = (index % 8, index / 8) owns rows ty + 16r and keys tx + 8c (r, c < 4)
// of each 64×32 score tile, and the same rows × the vec4 columns tx + 8e of the output. Per key tile:
//   1. K is staged in workgroup memory; S = Q·Kᵀ, 4×4 scores a thread, from Q (staged once, scaled);
//   2. the scores go to workgroup memory, where each thread reads its rows' maxima (online softmax:
//      rows rescale their accumulators when their maximum grows);
//   3. P = exp(S - max) replaces them and V replaces K;  4. O += P·V, 4 rows × HD/8 columns a thread.
// Row sums are kept per thread and added up once at the end. Tiles are stored with each row's vec4s
// rotated by the row number (`slot`), so that threads reading different rows at the same column hit
// different memory banks without padding: 16 + 8 + 8 KiB of workgroup memory for HD = 64.

// Params, bindings 0-5, LOWEST, q_index, kv_index and visible: shaders/attention_common.wgsl.

const BR: u32 = 64u;
const BC: u32 = 32u;
const V4: u32 = HD / 4u;     // vec4s a row of Q, K, V
const OE: u32 = V4 / 8u;     // output vec4s a thread a row

var<workgroup> q_s: array<vec4<f32>, BR * V4>;
var<workgroup> kv_s: array<vec4<f32>, BC * V4>;
var<workgroup> p_s: array<vec4<f32>, 512>;   // BR × BC scores (8 vec4 a row), not rotated

fn slot(row: u32, c4: u32) -> u32 {
    return row * V4 + (c4 + row) % V4;
}

fn load4(src: u32, base: u32) -> vec4<f32> {
    if (src == 0u) {
        return vec4<f32>(f32(q[base]), f32(q[base + 1u]), f32(q[base + 2u]), f32(q[base + 3u]));
    } else if (src == 1u) {
        return vec4<f32>(f32(k[base]), f32(k[base + 1u]), f32(k[base + 2u]), f32(k[base + 3u]));
    }
    return vec4<f32>(f32(v[base]), f32(v[base + 1u]), f32(v[base + 2u]), f32(v[base + 3u]));
}

// Keys j0..j0+BC of `src` (1: K, 2: V) into kv_s; keys at or past `end` are zero.
fn stage_kv(src: u32, b: u32, kvh: u32, j0: u32, end: u32, t: u32) {
    for (var e = t; e < BC * V4; e += 128u) {
        let r = e / V4;
        let c4 = e % V4;
        let j = j0 + r;
        var val = vec4<f32>(0.0);
        if (j < end) {
            val = load4(src, kv_index(b, j, kvh) + c4 * 4u);
        }
        if (src == 1u) {
            kv_s[slot(r, c4)] = val;
        } else {
            v_put(slot(r, c4), val);
        }
    }
}

// This thread's 4×4 scores (or probabilities) into p_s.
fn put_scores(tx: u32, ty: u32, s: ptr<function, array<f32, 16>>) {
    for (var r = 0u; r < 4u; r++) {
        for (var c = 0u; c < 4u; c++) {
            let key = tx + 8u * c;
            p_s[(ty + 16u * r) * 8u + key / 4u][key % 4u] = (*s)[r * 4u + c];
        }
    }
}

@compute @workgroup_size(128, 1, 1)
fn prefill_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let h = wid.y;
    let b = wid.z;
    let kvh = h / (p.n_heads / p.n_kv_heads);
    let row0 = wid.x * BR;
    let tx = t % 8u;
    let ty = t / 8u;

    for (var e = t; e < BR * V4; e += 128u) {
        let r = e / V4;
        let c4 = e % V4;
        let i = row0 + r;
        var val = vec4<f32>(0.0);
        if (i < p.q_len) {
            val = load4(0u, q_index(b, i, h) + c4 * 4u) * p.scale;
        }
        q_s[slot(r, c4)] = val;
    }

    var o: array<vec4<f32>, 4u * OE>;
    var m = array<f32, 4>(LOWEST, LOWEST, LOWEST, LOWEST);
    var l = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var s: array<f32, 16>;

    // Keys past the last one any row of this workgroup sees are skipped (causal), uniformly.
    var end = p.kv_len;
    if (p.causal == 1u) {
        end = min(p.kv_len, p.kv_len - p.q_len + min(row0 + BR - 1u, p.q_len - 1u) + 1u);
    }
    for (var j0 = 0u; j0 < end; j0 += BC) {
        stage_kv(1u, b, kvh, j0, end, t);
        if (SG) {
            stage_kv(2u, b, kvh, j0, end, t);
        }
        workgroupBarrier();
        for (var x = 0u; x < 16u; x++) {
            s[x] = 0.0;
        }
        for (var c4 = 0u; c4 < V4; c4++) {
            let k0 = kv_s[slot(tx, c4)];
            let k1 = kv_s[slot(tx + 8u, c4)];
            let k2 = kv_s[slot(tx + 16u, c4)];
            let k3 = kv_s[slot(tx + 24u, c4)];
            for (var r = 0u; r < 4u; r++) {
                let qv = q_s[slot(ty + 16u * r, c4)];
                s[r * 4u] += dot(qv, k0);
                s[r * 4u + 1u] += dot(qv, k1);
                s[r * 4u + 2u] += dot(qv, k2);
                s[r * 4u + 3u] += dot(qv, k3);
            }
        }
        for (var r = 0u; r < 4u; r++) {
            let i = row0 + ty + 16u * r;
            for (var c = 0u; c < 4u; c++) {
                let j = j0 + tx + 8u * c;
                if (i >= p.q_len || j >= end || !visible(b, i, j)) {
                    s[r * 4u + c] = LOWEST;
                }
            }
        }
        if (!SG) {
            put_scores(tx, ty, &s);
            workgroupBarrier();
        }
        for (var r = 0u; r < 4u; r++) {
            var mx = max(max(s[r * 4u], s[r * 4u + 1u]), max(s[r * 4u + 2u], s[r * 4u + 3u]));
            if (SG) {
                mx = row_max8(mx);
            } else {
                let row = (ty + 16u * r) * 8u;
                for (var c = 0u; c < 8u; c++) {
                    let w = p_s[row + c];
                    mx = max(mx, max(max(w.x, w.y), max(w.z, w.w)));
                }
            }
            mx = max(mx, m[r]);
            let corr = exp(m[r] - mx);
            m[r] = mx;
            l[r] *= corr;
            for (var e = 0u; e < OE; e++) {
                o[r * OE + e] *= corr;
            }
            for (var c = 0u; c < 4u; c++) {
                let x = s[r * 4u + c];
                let pe = select(0.0, exp(x - mx), x > LOWEST);
                s[r * 4u + c] = pe;
                l[r] += pe;
            }
        }
        if (!SG) {
            workgroupBarrier();   // every row maximum read before P overwrites S and V overwrites K
            stage_kv(2u, b, kvh, j0, end, t);
        }
        put_scores(tx, ty, &s);
        workgroupBarrier();
        for (var j4 = 0u; j4 < BC / 4u; j4++) {
            for (var r = 0u; r < 4u; r++) {
                let pv = p_s[(ty + 16u * r) * 8u + j4];
                for (var e = 0u; e < OE; e++) {
                    let col = tx + 8u * e;
                    var acc = o[r * OE + e];
                    acc = fma(vec4<f32>(pv.x), v_get(slot(j4 * 4u, col)), acc);
                    acc = fma(vec4<f32>(pv.y), v_get(slot(j4 * 4u + 1u, col)), acc);
                    acc = fma(vec4<f32>(pv.z), v_get(slot(j4 * 4u + 2u, col)), acc);
                    acc = fma(vec4<f32>(pv.w), v_get(slot(j4 * 4u + 3u, col)), acc);
                    o[r * OE + e] = acc;
                }
            }
        }
        workgroupBarrier();
    }

    // Row sums: each thread's part over its keys, added up through p_s (8 partials a row).
    for (var r = 0u; r < 4u; r++) {
        p_s[(ty + 16u * r) * 8u + tx / 4u][tx % 4u] = l[r];
    }
    workgroupBarrier();
    for (var r = 0u; r < 4u; r++) {
        let i = row0 + ty + 16u * r;
        if (i >= p.q_len) {
            continue;
        }
        let row = (ty + 16u * r) * 8u;
        let total = dot(p_s[row] + p_s[row + 1u], vec4<f32>(1.0));
        let inv = select(0.0, 1.0 / total, total > 0.0);
        let base = q_index(b, i, h);
        for (var e = 0u; e < OE; e++) {
            let val = o[r * OE + e] * inv;
            let at = base + (tx + 8u * e) * 4u;
            out[at] = T(val.x);
            out[at + 1u] = T(val.y);
            out[at + 2u] = T(val.z);
            out[at + 3u] = T(val.w);
        }
    }
}
