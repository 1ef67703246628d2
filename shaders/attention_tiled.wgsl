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

// A thread's state lives in named vectors, not private arrays: with WebGPU's runtime checks (always on
// in browsers) an array indexed in a loop is not kept in registers and spills to memory. Row r's 4
// scores are one vec4 (component c: key tx + 8c); its output vec4s are o{r}_{e} (e < OE ≤ 2).

// Row `row` of this thread's scores (or probabilities) into p_s: key tx + 8c is component tx % 4 of
// vec4 tx / 4 + 2c of the row.
fn put_row(row: u32, tx: u32, s: vec4<f32>) {
    let at = row * 8u + tx / 4u;
    p_s[at][tx % 4u] = s.x;
    p_s[at + 2u][tx % 4u] = s.y;
    p_s[at + 4u][tx % 4u] = s.z;
    p_s[at + 6u][tx % 4u] = s.w;
}

// Scores of query row i against keys j0 + tx + 8c (soft-capped), LOWEST where the key is past `end`, the row past
// the queries, or the key not visible to it.
fn masked(s: vec4<f32>, b: u32, i: u32, j0: u32, tx: u32, end: u32) -> vec4<f32> {
    var out = s;
    if (p.softcap > 0.0) {
        out = vec4<f32>(capped(s.x), capped(s.y), capped(s.z), capped(s.w));
    }
    let j = j0 + tx;
    if (i >= p.q_len || j >= end || !visible(b, i, j)) { out.x = LOWEST; }
    if (i >= p.q_len || j + 8u >= end || !visible(b, i, j + 8u)) { out.y = LOWEST; }
    if (i >= p.q_len || j + 16u >= end || !visible(b, i, j + 16u)) { out.z = LOWEST; }
    if (i >= p.q_len || j + 24u >= end || !visible(b, i, j + 24u)) { out.w = LOWEST; }
    return out;
}

// The running maximum of row `row` after this tile (SG: from the 8 lanes of the row group; else from
// the scores put in p_s).
fn row_max(s: vec4<f32>, row: u32, m: f32) -> f32 {
    var mx = max(max(s.x, s.y), max(s.z, s.w));
    if (SG) {
        mx = row_max8(mx);
    } else {
        for (var c = 0u; c < 8u; c++) {
            let w = p_s[row * 8u + c];
            mx = max(mx, max(max(w.x, w.y), max(w.z, w.w)));
        }
    }
    return max(mx, m);
}

// exp(s − mx), 0 for masked scores.
fn probs(s: vec4<f32>, mx: f32) -> vec4<f32> {
    return select(vec4<f32>(0.0), exp(s - vec4<f32>(mx)), s > vec4<f32>(LOWEST));
}

// acc + P(row) · V for 4 keys: pv their probabilities, v0..v3 their V vec4s at this thread's column.
fn pv_fma(pv: vec4<f32>, v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, acc: vec4<f32>)
    -> vec4<f32> {
    var out = fma(vec4<f32>(pv.x), v0, acc);
    out = fma(vec4<f32>(pv.y), v1, out);
    out = fma(vec4<f32>(pv.z), v2, out);
    return fma(vec4<f32>(pv.w), v3, out);
}

// Query row i's output columns tx + 8e (e < OE), divided by the row's sum.
fn store_row(b: u32, h: u32, i: u32, tx: u32, row: u32, o0: vec4<f32>, o1: vec4<f32>) {
    if (i >= p.q_len) {
        return;
    }
    let total = dot(p_s[row * 8u] + p_s[row * 8u + 1u], vec4<f32>(1.0));
    let inv = select(0.0, 1.0 / total, total > 0.0);
    let base = q_index(b, i, h);
    var val = o0 * inv;
    var at = base + tx * 4u;
    out[at] = T(val.x);
    out[at + 1u] = T(val.y);
    out[at + 2u] = T(val.z);
    out[at + 3u] = T(val.w);
    if (OE > 1u) {
        val = o1 * inv;
        at = base + (tx + 8u) * 4u;
        out[at] = T(val.x);
        out[at + 1u] = T(val.y);
        out[at + 2u] = T(val.z);
        out[at + 3u] = T(val.w);
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
    // This thread's rows in the tile, and the query rows they are.
    let r0 = ty;
    let r1 = ty + 16u;
    let r2 = ty + 32u;
    let r3 = ty + 48u;

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

    var o0_0 = vec4<f32>(0.0); var o1_0 = vec4<f32>(0.0); var o2_0 = vec4<f32>(0.0); var o3_0 = vec4<f32>(0.0);
    var o0_1 = vec4<f32>(0.0); var o1_1 = vec4<f32>(0.0); var o2_1 = vec4<f32>(0.0); var o3_1 = vec4<f32>(0.0);
    var m = vec4<f32>(LOWEST); // row r's running maximum in component r
    var l = vec4<f32>(0.0);    // and its running sum

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
        var s0 = vec4<f32>(0.0); var s1 = vec4<f32>(0.0); var s2 = vec4<f32>(0.0); var s3 = vec4<f32>(0.0);
        for (var c4 = 0u; c4 < V4; c4++) {
            let k0 = kv_s[slot(tx, c4)];
            let k1 = kv_s[slot(tx + 8u, c4)];
            let k2 = kv_s[slot(tx + 16u, c4)];
            let k3 = kv_s[slot(tx + 24u, c4)];
            let q0 = q_s[slot(r0, c4)];
            let q1 = q_s[slot(r1, c4)];
            let q2 = q_s[slot(r2, c4)];
            let q3 = q_s[slot(r3, c4)];
            s0 += vec4<f32>(dot(q0, k0), dot(q0, k1), dot(q0, k2), dot(q0, k3));
            s1 += vec4<f32>(dot(q1, k0), dot(q1, k1), dot(q1, k2), dot(q1, k3));
            s2 += vec4<f32>(dot(q2, k0), dot(q2, k1), dot(q2, k2), dot(q2, k3));
            s3 += vec4<f32>(dot(q3, k0), dot(q3, k1), dot(q3, k2), dot(q3, k3));
        }
        s0 = masked(s0, b, row0 + r0, j0, tx, end);
        s1 = masked(s1, b, row0 + r1, j0, tx, end);
        s2 = masked(s2, b, row0 + r2, j0, tx, end);
        s3 = masked(s3, b, row0 + r3, j0, tx, end);
        if (!SG) {
            put_row(r0, tx, s0); put_row(r1, tx, s1); put_row(r2, tx, s2); put_row(r3, tx, s3);
            workgroupBarrier();
        }
        // Online softmax: each row's new maximum, its accumulators rescaled, scores → probabilities.
        let mx = vec4<f32>(row_max(s0, r0, m.x), row_max(s1, r1, m.y), row_max(s2, r2, m.z),
                           row_max(s3, r3, m.w));
        let corr = exp(m - mx);
        m = mx;
        s0 = probs(s0, mx.x);
        s1 = probs(s1, mx.y);
        s2 = probs(s2, mx.z);
        s3 = probs(s3, mx.w);
        let one = vec4<f32>(1.0);
        l = l * corr + vec4<f32>(dot(s0, one), dot(s1, one), dot(s2, one), dot(s3, one));
        o0_0 *= corr.x; o1_0 *= corr.y; o2_0 *= corr.z; o3_0 *= corr.w;
        o0_1 *= corr.x; o1_1 *= corr.y; o2_1 *= corr.z; o3_1 *= corr.w;
        if (!SG) {
            workgroupBarrier();   // every row maximum read before P overwrites S and V overwrites K
            stage_kv(2u, b, kvh, j0, end, t);
        }
        put_row(r0, tx, s0); put_row(r1, tx, s1); put_row(r2, tx, s2); put_row(r3, tx, s3);
        workgroupBarrier();
        for (var j4 = 0u; j4 < BC / 4u; j4++) {
            let p0 = p_s[r0 * 8u + j4];
            let p1 = p_s[r1 * 8u + j4];
            let p2 = p_s[r2 * 8u + j4];
            let p3 = p_s[r3 * 8u + j4];
            let j = j4 * 4u;
            let a0 = v_get(slot(j, tx));
            let a1 = v_get(slot(j + 1u, tx));
            let a2 = v_get(slot(j + 2u, tx));
            let a3 = v_get(slot(j + 3u, tx));
            o0_0 = pv_fma(p0, a0, a1, a2, a3, o0_0);
            o1_0 = pv_fma(p1, a0, a1, a2, a3, o1_0);
            o2_0 = pv_fma(p2, a0, a1, a2, a3, o2_0);
            o3_0 = pv_fma(p3, a0, a1, a2, a3, o3_0);
            if (OE > 1u) {
                let c0 = v_get(slot(j, tx + 8u));
                let c1 = v_get(slot(j + 1u, tx + 8u));
                let c2 = v_get(slot(j + 2u, tx + 8u));
                let c3 = v_get(slot(j + 3u, tx + 8u));
                o0_1 = pv_fma(p0, c0, c1, c2, c3, o0_1);
                o1_1 = pv_fma(p1, c0, c1, c2, c3, o1_1);
                o2_1 = pv_fma(p2, c0, c1, c2, c3, o2_1);
                o3_1 = pv_fma(p3, c0, c1, c2, c3, o3_1);
            }
        }
        workgroupBarrier();
    }

    // Row sums: each thread's part over its keys, added up through p_s (8 partials a row).
    p_s[r0 * 8u + tx / 4u][tx % 4u] = l.x;
    p_s[r1 * 8u + tx / 4u][tx % 4u] = l.y;
    p_s[r2 * 8u + tx / 4u][tx % 4u] = l.z;
    p_s[r3 * 8u + tx / 4u][tx % 4u] = l.w;
    workgroupBarrier();
    store_row(b, h, row0 + r0, tx, r0, o0_0, o0_1);
    store_row(b, h, row0 + r1, tx, r1, o1_0, o1_1);
    store_row(b, h, row0 + r2, tx, r2, o2_0, o2_1);
    store_row(b, h, row0 + r3, tx, r3, o3_0, o3_1);
}
