enable wgpu_cooperative_matrix;
enable f16;
// Flash attention on tensor cores (native only: wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX, 16×16×16 f16
// products into f32 accumulators on 32-lane subgroups): the layout, Params and semantics of
// shaders/attention.wgsl's `prefill` (bidirectional or causal, padding mask, grouped-query heads, a
// KV cache read up to kv_len, sliding window, soft cap) for f16 q, k, v (or f32, IN_F32 below) and
// head_dim 64 or 32 (HD, attention_coop_lanes.wgsl). attention_common.wgsl (Params, visible, capped,
// q_index, kv_index) is prepended.
//
// A workgroup of 4 subgroups takes BR = 64 query rows of one (batch, head), 16 a subgroup, and walks
// the keys BC = 64 at a time. Per key tile:
//   1. K and V (64 keys × HD halves each) are staged in workgroup memory, zero past kv_len; the next
//      tile's are read from global memory into registers while this one is worked on;
//   2. S = Q·Kᵀ on the tensor cores: 4 × HD / 16 products a subgroup (its Q fragments were loaded once),
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
const KS: u32 = 72u;    // row stride of the staged Q, K and V tiles, in halves (64 + 8 padding)

var<workgroup> k_s: array<f16, 4608>;   // BC × KS (Q's 64 rows before the first key tile)
var<workgroup> v_s: array<f16, 4608>;   // BC × KS

// With IN_F32 (the module's T is then f32, the output too) q, k and v hold f32, rounded to f16 as
// they are staged: the tensor cores for an f32 model's attention.
override IN_F32: bool = false;

fn load4(src: u32, i: u32) -> vec4<u32> {
    if (src == 0u) {
        return q[i];
    } else if (src == 1u) {
        return k[i];
    }
    return v[i];
}

// Eight halves from element `index` (a multiple of 8) of q (src 0), k (1) or v (2); zero where `ok`
// is not.
fn load8(src: u32, index: u32, ok: bool) -> vec4<u32> {
    if (!ok) {
        return vec4<u32>(0u);
    }
    if (IN_F32) {
        let lo = bitcast<vec4<f32>>(load4(src, index / 4u));
        let hi = bitcast<vec4<f32>>(load4(src, index / 4u + 1u));
        return vec4<u32>(pack2x16float(lo.xy), pack2x16float(lo.zw), pack2x16float(hi.xy),
                         pack2x16float(hi.zw));
    }
    return load4(src, index / 8u);
}

// Where eight halves of key j (clamped into the cache), column c, of this KV head start.
fn kv_at(b: u32, kvh: u32, j: u32, c: u32) -> u32 {
    return kv_index(b, min(j, p.kv_cap - 1u), kvh) + c;
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

// K tile fragment: key n0..n0+16 as columns, dimensions d0..d0+16 as rows (element (d, key) at
// key * KS + d: column-major).
fn k_frag(n0: u32, d0: u32) -> coop_mat16x16<f16, B> {
    return coopLoad<coop_mat16x16<f16, B>>(&k_s[n0 * KS + d0], KS);
}

fn v_frag(j0: u32, d0: u32) -> coop_mat16x16<f16, B> {
    return coopLoadT<coop_mat16x16<f16, B>>(&v_s[j0 * KS + d0], KS);
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

    // Q's 64 rows through k_s into HD / 16 A fragments a subgroup (16 rows × 16 dimensions each;
    // with head_dim 32, q2 and q3 hold stale values and are not used).
    let per_row = HD / 8u;   // vec4s of eight halves a row of q, k or v
    for (var e = t; e < BR * per_row; e += 128u) {
        let row = e / per_row;
        let c8 = e % per_row;
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

    // This thread's vec4s of the K and V tiles: rows kr + kp·c, columns kc. Head_dim 64: rows
    // t / 8 + 16c, four of each (c < 4); 32: rows t / 4 + 32c, two (rk2, rk3, rv2, rv3 unused). Kept
    // in named registers (a private array indexed in a loop may live in memory).
    let kr = t / per_row;
    let kc = (t % per_row) * 8u;
    let kp = 128u / per_row;
    var rk0 = load8(1u, kv_at(b, kvh, start + kr, kc), start + kr < end);
    var rk1 = load8(1u, kv_at(b, kvh, start + kr + kp, kc), start + kr + kp < end);
    var rv0 = load8(2u, kv_at(b, kvh, start + kr, kc), start + kr < end);
    var rv1 = load8(2u, kv_at(b, kvh, start + kr + kp, kc), start + kr + kp < end);
    var rk2 = vec4<u32>(0u);
    var rk3 = vec4<u32>(0u);
    var rv2 = vec4<u32>(0u);
    var rv3 = vec4<u32>(0u);
    if (HD == 64u) {
        rk2 = load8(1u, kv_at(b, kvh, start + kr + 32u, kc), start + kr + 32u < end);
        rk3 = load8(1u, kv_at(b, kvh, start + kr + 48u, kc), start + kr + 48u < end);
        rv2 = load8(2u, kv_at(b, kvh, start + kr + 32u, kc), start + kr + 32u < end);
        rv3 = load8(2u, kv_at(b, kvh, start + kr + 48u, kc), start + kr + 48u < end);
    }

    // This lane's HD / 2 outputs of row i, four a vector (c = 4g..4g+4: columns ocol(r, hh, c);
    // o4..o7 only for head_dim 64).
    var o0 = vec4<f32>(0.0); var o1 = vec4<f32>(0.0); var o2 = vec4<f32>(0.0); var o3 = vec4<f32>(0.0);
    var o4 = vec4<f32>(0.0); var o5 = vec4<f32>(0.0); var o6 = vec4<f32>(0.0); var o7 = vec4<f32>(0.0);
    var m = LOWEST;   // the row's running maximum
    var l = 0.0;      // this lane's part of the row's running sum
    var zero: coop_mat16x16<f32, C>;

    for (var j0 = start; j0 < end; j0 += BC) {
        put8(0u, kr * KS + kc, rk0);
        put8(0u, (kr + kp) * KS + kc, rk1);
        put8(1u, kr * KS + kc, rv0);
        put8(1u, (kr + kp) * KS + kc, rv1);
        if (HD == 64u) {
            put8(0u, (kr + 32u) * KS + kc, rk2);
            put8(0u, (kr + 48u) * KS + kc, rk3);
            put8(1u, (kr + 32u) * KS + kc, rv2);
            put8(1u, (kr + 48u) * KS + kc, rv3);
        }
        workgroupBarrier();
        let jn = j0 + BC;
        if (jn < end) {
            rk0 = load8(1u, kv_at(b, kvh, jn + kr, kc), jn + kr < end);
            rk1 = load8(1u, kv_at(b, kvh, jn + kr + kp, kc), jn + kr + kp < end);
            rv0 = load8(2u, kv_at(b, kvh, jn + kr, kc), jn + kr < end);
            rv1 = load8(2u, kv_at(b, kvh, jn + kr + kp, kc), jn + kr + kp < end);
            if (HD == 64u) {
                rk2 = load8(1u, kv_at(b, kvh, jn + kr + 32u, kc), jn + kr + 32u < end);
                rk3 = load8(1u, kv_at(b, kvh, jn + kr + 48u, kc), jn + kr + 48u < end);
                rv2 = load8(2u, kv_at(b, kvh, jn + kr + 32u, kc), jn + kr + 32u < end);
                rv3 = load8(2u, kv_at(b, kvh, jn + kr + 48u, kc), jn + kr + 48u < end);
            }
        }

        // S = Q·Kᵀ, 16 rows × 64 keys a subgroup.
        for (var n = 0u; n < 4u; n++) {
            var s = coopMultiplyAdd(q0, k_frag(n * 16u, 0u), zero);
            s = coopMultiplyAdd(q1, k_frag(n * 16u, 16u), s);
            if (HD == 64u) {
                s = coopMultiplyAdd(q2, k_frag(n * 16u, 32u), s);
                s = coopMultiplyAdd(q3, k_frag(n * 16u, 48u), s);
            }
            coopStoreT(s, &s_s[s_base + n * 16u], SS);
        }
        workgroupBarrier();

        // Online softmax over this lane's 32 scores of row i.
        let sm = softmax_tile(s_base, p_base, r, hh, b, i, j0, j0, end, m);
        let corr = sm.y;
        m = sm.x;
        l = l * corr + sm.z;
        workgroupBarrier();

        // P·V, 16 rows × HD dimensions a subgroup, through the scratch into the lanes' outputs.
        let pf0 = p_frag(p_base, 0u);
        let pf1 = p_frag(p_base, 16u);
        let pf2 = p_frag(p_base, 32u);
        let pf3 = p_frag(p_base, 48u);
        for (var n = 0u; n < HD / 16u; n++) {
            var acc = coopMultiplyAdd(pf0, v_frag(0u, n * 16u), zero);
            acc = coopMultiplyAdd(pf1, v_frag(16u, n * 16u), acc);
            acc = coopMultiplyAdd(pf2, v_frag(32u, n * 16u), acc);
            acc = coopMultiplyAdd(pf3, v_frag(48u, n * 16u), acc);
            coopStoreT(acc, &s_s[s_base + n * 16u], SS);
        }
        workgroupBarrier();
        o0 = fma(o0, vec4<f32>(corr), read4(s_base, r, hh, 0u));
        o1 = fma(o1, vec4<f32>(corr), read4(s_base, r, hh, 1u));
        o2 = fma(o2, vec4<f32>(corr), read4(s_base, r, hh, 2u));
        o3 = fma(o3, vec4<f32>(corr), read4(s_base, r, hh, 3u));
        if (HD == 64u) {
            o4 = fma(o4, vec4<f32>(corr), read4(s_base, r, hh, 4u));
            o5 = fma(o5, vec4<f32>(corr), read4(s_base, r, hh, 5u));
            o6 = fma(o6, vec4<f32>(corr), read4(s_base, r, hh, 6u));
            o7 = fma(o7, vec4<f32>(corr), read4(s_base, r, hh, 7u));
        }
    }

    let total = l + subgroupShuffleXor(l, 16u);
    if (i >= p.q_len) {
        return;
    }
    let inv = select(0.0, 1.0 / total, total > 0.0);
    let base = q_index(b, i, h);
    store4(base, r, hh, 0u, o0 * inv);
    store4(base, r, hh, 1u, o1 * inv);
    store4(base, r, hh, 2u, o2 * inv);
    store4(base, r, hh, 3u, o3 * inv);
    if (HD != 64u) {
        return;
    }
    store4(base, r, hh, 4u, o4 * inv);
    store4(base, r, hh, 5u, o5 * inv);
    store4(base, r, hh, 6u, o6 * inv);
    store4(base, r, hh, 7u, o7 * inv);
}
