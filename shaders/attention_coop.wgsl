enable wgpu_cooperative_matrix;
// Flash attention on tensor cores (native only: wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX, 16×16×16 f16
// products into f32 accumulators on 32-lane subgroups): the layout, Params and semantics of
// shaders/attention.wgsl's `prefill` (bidirectional or causal, padding mask, grouped-query heads, a
// KV cache read up to kv_len, sliding window, soft cap) for f16 q, k, v and head_dim 64. The prelude
// is f16's; attention_common.wgsl (Params, visible, capped, q_index, kv_index) is prepended.
//
// A workgroup of 4 subgroups takes BR = 64 query rows of one (batch, head), 16 a subgroup, and walks
// the keys BC = 64 at a time. Per key tile:
//   1. K and V (64 keys × 64 halves each) are staged in workgroup memory, zero past kv_len; the next
//      tile's are read from global memory into registers while this one is worked on;
//   2. S = Q·Kᵀ on the tensor cores: 4 × 4 products a subgroup (its Q fragments were loaded once),
//      stored to the subgroup's f32 scratch;
//   3. the online softmax by the lanes: lane (r, h) = (lane % 16, lane / 16) takes row r's 32 keys
//      of half h (columns rotated by the row, `col`, so that the 32 lanes hit 32 different banks),
//      masks, scales and caps them; the row's maximum is the lane's and its partner's (lane ^ 16);
//      P = exp(S − max) goes to the subgroup's f16 tile and the lane's 32 outputs are rescaled;
//   4. P·V on the tensor cores into fresh accumulators, stored to the scratch, and added by each lane
//      to its 32 outputs (the accumulators stay in the lanes, where a row's rescaling is a multiply).
// P is rounded to f16 for the product (as FlashAttention does); the row sums are kept in f32.
// Workgroup memory: K, V 9 KiB each, the scratch 17 KiB, P 9 KiB: 44 KiB.

@group(0) @binding(0) var<storage, read> q: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> k: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> mask: array<i32>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;
@group(0) @binding(5) var<uniform> p: Params;

const BR: u32 = 64u;
const BC: u32 = 64u;
const HD: u32 = 64u;
const KS: u32 = 72u;    // row stride of the staged Q, K and V tiles, in halves (64 + 8 padding)
const SS: u32 = 68u;    // row stride of a subgroup's f32 scratch (16 rows)
const PS: u32 = 72u;    // row stride of a subgroup's P tile (16 rows of f16)

var<workgroup> k_s: array<f16, 4608>;   // BC × KS (Q's 64 rows before the first key tile)
var<workgroup> v_s: array<f16, 4608>;   // BC × KS
var<workgroup> s_s: array<f32, 4352>;   // 4 subgroups × 16 × SS
var<workgroup> p_s: array<f16, 4608>;   // 4 subgroups × 16 × PS

// Eight halves of row `row` of a [rows, heads, HD] tensor from column c8 * 8, zero where `ok` is not.
fn load8(src: u32, index: u32, ok: bool) -> vec4<u32> {
    if (!ok) {
        return vec4<u32>(0u);
    }
    if (src == 0u) {
        return q[index / 8u];
    } else if (src == 1u) {
        return k[index / 8u];
    }
    return v[index / 8u];
}

fn put8(tile: u32, at: u32, val: vec4<u32>) {
    let h0 = vec2<f16>(unpack2x16float(val.x));
    let h1 = vec2<f16>(unpack2x16float(val.y));
    let h2 = vec2<f16>(unpack2x16float(val.z));
    let h3 = vec2<f16>(unpack2x16float(val.w));
    if (tile == 0u) {
        k_s[at] = h0.x; k_s[at + 1u] = h0.y; k_s[at + 2u] = h1.x; k_s[at + 3u] = h1.y;
        k_s[at + 4u] = h2.x; k_s[at + 5u] = h2.y; k_s[at + 6u] = h3.x; k_s[at + 7u] = h3.y;
    } else {
        v_s[at] = h0.x; v_s[at + 1u] = h0.y; v_s[at + 2u] = h1.x; v_s[at + 3u] = h1.y;
        v_s[at + 4u] = h2.x; v_s[at + 5u] = h2.y; v_s[at + 6u] = h3.x; v_s[at + 7u] = h3.y;
    }
}

// The column of a lane's c-th element (c < 32) in row r, half h of a 16 × 64 tile: rotated so that
// the 32 lanes' addresses fall in 32 different banks of the f32 scratch (bank 5r + 16h + c mod 32).
fn col(r: u32, h: u32, c: u32) -> u32 {
    return h * 32u + (c + r + 16u * h) % 32u;
}

// K tile fragment: key n0..n0+16 as columns, dimensions d0..d0+16 as rows (element (d, key) at
// key * KS + d: column-major).
fn k_frag(n0: u32, d0: u32) -> coop_mat16x16<f16, B> {
    return coopLoad<coop_mat16x16<f16, B>>(&k_s[n0 * KS + d0], KS);
}

fn v_frag(j0: u32, d0: u32) -> coop_mat16x16<f16, B> {
    return coopLoadT<coop_mat16x16<f16, B>>(&v_s[j0 * KS + d0], KS);
}

fn p_frag(base: u32, j0: u32) -> coop_mat16x16<f16, A> {
    return coopLoadT<coop_mat16x16<f16, A>>(&p_s[base + j0], PS);
}

@compute @workgroup_size(128, 1, 1)
fn prefill_coop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let h = wid.y;
    let b = wid.z;
    let kvh = h / (p.n_heads / p.n_kv_heads);
    let row0 = wid.x * BR;
    let sg = t / 32u;
    let lane = t % 32u;
    let r = lane % 16u;        // this lane's row of its subgroup's 16
    let hh = lane / 16u;       // and which 32 of the tile's 64 keys / output columns
    let i = row0 + sg * 16u + r;
    let s_base = sg * 16u * SS;
    let p_base = sg * 16u * PS;

    // Q's 64 rows through k_s into four A fragments a subgroup (16 rows × 16 dimensions each).
    for (var e = t; e < BR * 8u; e += 128u) {
        let row = e / 8u;
        let c8 = e % 8u;
        let qi = row0 + row;
        put8(0u, row * KS + c8 * 8u, load8(0u, q_index(b, min(qi, p.q_len - 1u), h) + c8 * 8u,
                                           qi < p.q_len));
    }
    workgroupBarrier();
    let q_at = sg * 16u * KS;
    let q0 = coopLoadT<coop_mat16x16<f16, A>>(&k_s[q_at], KS);
    let q1 = coopLoadT<coop_mat16x16<f16, A>>(&k_s[q_at + 16u], KS);
    let q2 = coopLoadT<coop_mat16x16<f16, A>>(&k_s[q_at + 32u], KS);
    let q3 = coopLoadT<coop_mat16x16<f16, A>>(&k_s[q_at + 48u], KS);
    workgroupBarrier();

    // Keys past the last one any row of this workgroup sees are skipped (causal), and with a sliding
    // window, whole tiles before the first one any row sees; uniformly over the workgroup.
    let offset = p.kv_len - p.q_len;   // query row i is at position offset + i
    var end = p.kv_len;
    if (p.causal == 1u) {
        end = min(p.kv_len, offset + min(row0 + BR, p.q_len));
    }
    var start = 0u;
    if (p.window > 0u && offset + row0 + 1u > p.window) {
        start = (offset + row0 + 1u - p.window) / BC * BC;
    }

    // This thread's four vec4s of the K and V tiles: rows e / 8, columns (e % 8) * 8, e = t + 128c.
    var rk: array<vec4<u32>, 4>;
    var rv: array<vec4<u32>, 4>;
    for (var c = 0u; c < 4u; c++) {
        let e = t + 128u * c;
        let j = start + e / 8u;
        let at = kv_index(b, min(j, p.kv_cap - 1u), kvh) + (e % 8u) * 8u;
        rk[c] = load8(1u, at, j < end);
        rv[c] = load8(2u, at, j < end);
    }

    var o: array<f32, 32>;
    var m = LOWEST;   // the row's running maximum
    var l = 0.0;      // this lane's part of the row's running sum
    var zero: coop_mat16x16<f32, C>;

    for (var j0 = start; j0 < end; j0 += BC) {
        for (var c = 0u; c < 4u; c++) {
            let e = t + 128u * c;
            put8(0u, (e / 8u) * KS + (e % 8u) * 8u, rk[c]);
            put8(1u, (e / 8u) * KS + (e % 8u) * 8u, rv[c]);
        }
        workgroupBarrier();
        let jn = j0 + BC;
        if (jn < end) {
            for (var c = 0u; c < 4u; c++) {
                let e = t + 128u * c;
                let j = jn + e / 8u;
                let at = kv_index(b, min(j, p.kv_cap - 1u), kvh) + (e % 8u) * 8u;
                rk[c] = load8(1u, at, j < end);
                rv[c] = load8(2u, at, j < end);
            }
        }

        // S = Q·Kᵀ, 16 rows × 64 keys a subgroup.
        for (var n = 0u; n < 4u; n++) {
            var s = coopMultiplyAdd(q0, k_frag(n * 16u, 0u), zero);
            s = coopMultiplyAdd(q1, k_frag(n * 16u, 16u), s);
            s = coopMultiplyAdd(q2, k_frag(n * 16u, 32u), s);
            s = coopMultiplyAdd(q3, k_frag(n * 16u, 48u), s);
            coopStoreT(s, &s_s[s_base + n * 16u], SS);
        }
        workgroupBarrier();

        // Online softmax over this lane's 32 scores of row i.
        var x: array<f32, 32>;
        var mx = LOWEST;
        for (var c = 0u; c < 32u; c++) {
            let cc = col(r, hh, c);
            let j = j0 + cc;
            var s = capped(s_s[s_base + r * SS + cc] * p.scale);
            if (i >= p.q_len || j >= end || !visible(b, i, j)) {
                s = LOWEST;
            }
            x[c] = s;
            mx = max(mx, s);
        }
        mx = max(max(mx, subgroupShuffleXor(mx, 16u)), m);
        let corr = exp(m - mx);
        m = mx;
        var sum = 0.0;
        for (var c = 0u; c < 32u; c++) {
            let pr = select(0.0, exp(x[c] - mx), x[c] > LOWEST);
            sum += pr;
            p_s[p_base + r * PS + col(r, hh, c)] = f16(pr);
            o[c] *= corr;
        }
        l = l * corr + sum;
        workgroupBarrier();

        // P·V, 16 rows × 64 dimensions a subgroup, through the scratch into the lanes' outputs.
        let pf0 = p_frag(p_base, 0u);
        let pf1 = p_frag(p_base, 16u);
        let pf2 = p_frag(p_base, 32u);
        let pf3 = p_frag(p_base, 48u);
        for (var n = 0u; n < 4u; n++) {
            var acc = coopMultiplyAdd(pf0, v_frag(0u, n * 16u), zero);
            acc = coopMultiplyAdd(pf1, v_frag(16u, n * 16u), acc);
            acc = coopMultiplyAdd(pf2, v_frag(32u, n * 16u), acc);
            acc = coopMultiplyAdd(pf3, v_frag(48u, n * 16u), acc);
            coopStoreT(acc, &s_s[s_base + n * 16u], SS);
        }
        workgroupBarrier();
        for (var c = 0u; c < 32u; c++) {
            o[c] += s_s[s_base + r * SS + col(r, hh, c)];
        }
    }

    let total = l + subgroupShuffleXor(l, 16u);
    if (i >= p.q_len) {
        return;
    }
    let inv = select(0.0, 1.0 / total, total > 0.0);
    let base = q_index(b, i, h);
    for (var c = 0u; c < 32u; c++) {
        out[base + col(r, hh, c)] = T(o[c] * inv);
    }
}
