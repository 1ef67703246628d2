enable wgpu_cooperative_matrix;
enable f16;
// Flash attention on tensor cores with K and V read straight from global memory (native only; f16
// q, k, v, head_dim 64; a cache of at least 64 keys): the semantics of attention_coop.wgsl, which it
// replaces where it can. attention_common.wgsl and attention_coop_lanes.wgsl are prepended.
//
// Every subgroup works alone on 16 query rows and its own key tiles, so nothing is staged and no
// subgroup waits for another's loads: a workgroup's 4 subgroups take 4 / SPLIT row blocks of 16
// rows, and the SPLIT subgroups of a row block take every SPLIT-th key tile of its range (more
// subgroups in flight for the same rows: the latency of a tile's chain of loads, products, scratch
// round trip and softmax is hidden by the others'). Per key tile, a subgroup:
//   1. loads K's fragments from global memory (16 keys × 16 dimensions each: key rows of the cache
//      are the columns of Kᵀ) and computes S = Q·Kᵀ into its f32 scratch;
//   2. runs the online softmax in its lanes (attention_coop_lanes.wgsl), P to its f16 tile; a row's
//      maximum moves only when a tile's exceeds it by more than SLACK;
//   3. loads V's fragments from global memory and adds P·V to its four output accumulators, which
//      stay on the tensor cores across tiles (through the scratch, rescaled by the lanes, only in a
//      tile where some row's maximum moved).
// A tile never reads past the cache: the last one of a range that would is moved back to end at
// kv_len (kv_len ≥ 64), its keys before the tile's own start masked. The SPLIT partial results of a
// row (maximum, sum, outputs) are merged through the scratch at the end. Workgroup barriers order
// each subgroup's scratch and P tile: two a tile (every subgroup walks the same number of tiles; one
// past its share masks everything). Workgroup memory: 26.5 KiB.

@group(0) @binding(0) var<storage, read> q: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> k: array<f16>;
@group(0) @binding(2) var<storage, read> v: array<f16>;
@group(0) @binding(3) var<storage, read> mask: array<i32>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;
@group(0) @binding(5) var<uniform> p: Params;

// Subgroups on the same 16 query rows (1, 2 or 4); the workgroup takes 16 · 4 / SPLIT rows.
override SPLIT: u32 = 4u;

var<workgroup> ml_s: array<f32, 128>;   // 4 subgroups × (16 row maxima, 16 row sums)
var<workgroup> moved_s: array<u32, 4>;  // a subgroup's rows moved their maxima this tile

// How far a tile's maximum may exceed a row's before the row's maximum moves: P then reaches at
// most e^8 ≈ 2981 (f16 holds 65504), and after the first tiles the accumulators rarely need
// rescaling.
const SLACK: f32 = 8.0;

@compute @workgroup_size(128, 1, 1)
fn prefill_coop_direct(@builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(local_invocation_index) t: u32) {
    let h = wid.y;
    let b = wid.z;
    let kvh = h / (p.n_heads / p.n_kv_heads);
    let sg = t / 32u;
    let lane = t % 32u;
    let blocks = 4u / SPLIT;   // row blocks of 16 a workgroup
    let rb = sg / SPLIT;       // this subgroup's row block
    let part = sg % SPLIT;     // and its share of the key tiles
    let row0 = wid.x * 16u * blocks;
    let r = lane % 16u;        // this lane's row of its subgroup's 16
    let hh = lane / 16u;       // and which 32 of the tile's 64 keys / output columns
    let i = row0 + rb * 16u + r;
    let s_base = sg * 16u * SS;
    let p_base = sg * 16u * PS;

    // The row block's Q through this subgroup's P tile into four A fragments (16 rows × 16 dimensions).
    for (var e = lane; e < 128u; e += 32u) {
        let row = e / 8u;
        let c8 = e % 8u;
        let qi = row0 + rb * 16u + row;
        var val = q[q_index(b, min(qi, p.q_len - 1u), h) / 8u + c8];
        if (qi >= p.q_len) {
            val = vec4<u32>(0u);
        }
        let at = p_base + row * PS + c8 * 8u;
        let h0 = vec2<f16>(unpack2x16float(val.x));
        let h1 = vec2<f16>(unpack2x16float(val.y));
        let h2 = vec2<f16>(unpack2x16float(val.z));
        let h3 = vec2<f16>(unpack2x16float(val.w));
        p_s[at] = h0.x; p_s[at + 1u] = h0.y; p_s[at + 2u] = h1.x; p_s[at + 3u] = h1.y;
        p_s[at + 4u] = h2.x; p_s[at + 5u] = h2.y; p_s[at + 6u] = h3.x; p_s[at + 7u] = h3.y;
    }
    workgroupBarrier();
    let q0 = coopLoadT<coop_mat16x16<f16, A>>(&p_s[p_base], PS);
    let q1 = coopLoadT<coop_mat16x16<f16, A>>(&p_s[p_base + 16u], PS);
    let q2 = coopLoadT<coop_mat16x16<f16, A>>(&p_s[p_base + 32u], PS);
    let q3 = coopLoadT<coop_mat16x16<f16, A>>(&p_s[p_base + 48u], PS);
    workgroupBarrier();

    // The workgroup's key range, as attention_coop.wgsl's (uniform over the workgroup).
    let offset = p.kv_len - p.q_len;
    var end = p.kv_len;
    if (p.causal == 1u) {
        end = min(p.kv_len, offset + min(row0 + 16u * blocks, p.q_len));
    }
    var start = 0u;
    if (p.window > 0u && offset + row0 + 1u > p.window) {
        start = (offset + row0 + 1u - p.window) / BC * BC;
    }
    let tiles = select(0u, (end - start + BC - 1u) / BC, end > start);
    let rounds = (tiles + SPLIT - 1u) / SPLIT;
    let last = max(p.kv_len, BC) - BC;   // the last tile that stays inside the cache starts here
    let stride = p.n_kv_heads * HD;      // halves from one key's row to the next

    // The outputs stay in four accumulators (16 rows × 16 dimensions each) across tiles, relative
    // to the rows' maxima m; a row's maximum moves only when a tile's exceeds it by more than SLACK,
    // and then (any row of the workgroup: the products must stay in uniform control flow) the
    // accumulators go through the scratch, where each lane rescales its row's values.
    var m = LOWEST;   // the row's maximum (over this subgroup's tiles, up to SLACK)
    var l = 0.0;      // this lane's part of the row's running sum
    var zero: coop_mat16x16<f32, C>;
    var acc0: coop_mat16x16<f32, C>;
    var acc1: coop_mat16x16<f32, C>;
    var acc2: coop_mat16x16<f32, C>;
    var acc3: coop_mat16x16<f32, C>;

    for (var round = 0u; round < rounds; round++) {
        let tile = round * SPLIT + part;
        let j0 = start + min(tile, tiles - 1u) * BC;   // the tile's first key
        let jb = min(j0, last);                         // where its loads start
        let lo = select(end, j0, tile < tiles);         // keys from lo on count (none past the share)
        let kb = kv_index(b, jb, kvh);

        // S = Q·Kᵀ, 16 rows × 64 keys: Kᵀ's fragment (dimension d, key n) is k[kb + n · stride + d].
        for (var n = 0u; n < 4u; n++) {
            let at = kb + n * 16u * stride;
            var s = coopMultiplyAdd(q0, coopLoad<coop_mat16x16<f16, B>>(&k[at], stride), zero);
            s = coopMultiplyAdd(q1, coopLoad<coop_mat16x16<f16, B>>(&k[at + 16u], stride), s);
            s = coopMultiplyAdd(q2, coopLoad<coop_mat16x16<f16, B>>(&k[at + 32u], stride), s);
            s = coopMultiplyAdd(q3, coopLoad<coop_mat16x16<f16, B>>(&k[at + 48u], stride), s);
            coopStoreT(s, &s_s[s_base + n * 16u], SS);
        }
        workgroupBarrier();

        let sm = softmax_tile(s_base, p_base, r, hh, b, i, jb, lo, end, m, SLACK);
        let corr = sm.y;
        let moved = subgroupAny(m > LOWEST && sm.x > m);   // rows with something to rescale
        m = sm.x;
        l = l * corr + sm.z;
        if (lane == 0u) {
            moved_s[sg] = u32(moved);
        }
        let flags = workgroupUniformLoad(&moved_s);   // a barrier: P and the flags are written
        if (flags[0] + flags[1] + flags[2] + flags[3] > 0u) {
            coopStoreT(acc0, &s_s[s_base], SS);
            coopStoreT(acc1, &s_s[s_base + 16u], SS);
            coopStoreT(acc2, &s_s[s_base + 32u], SS);
            coopStoreT(acc3, &s_s[s_base + 48u], SS);
            workgroupBarrier();
            for (var g = 0u; g < 8u; g++) {
                put4(s_base, r, hh, g, read4(s_base, r, hh, g) * corr);
            }
            workgroupBarrier();
            acc0 = coopLoadT<coop_mat16x16<f32, C>>(&s_s[s_base], SS);
            acc1 = coopLoadT<coop_mat16x16<f32, C>>(&s_s[s_base + 16u], SS);
            acc2 = coopLoadT<coop_mat16x16<f32, C>>(&s_s[s_base + 32u], SS);
            acc3 = coopLoadT<coop_mat16x16<f32, C>>(&s_s[s_base + 48u], SS);
            workgroupBarrier();   // the scratch is the next tile's S
        }

        // O += P·V: V's fragment (key j, dimension d) is v[kb + j · stride + d].
        let pf0 = p_frag(p_base, 0u);
        let pf1 = p_frag(p_base, 16u);
        let pf2 = p_frag(p_base, 32u);
        let pf3 = p_frag(p_base, 48u);
        acc0 = pv(pf0, pf1, pf2, pf3, kb, stride, acc0);
        acc1 = pv(pf0, pf1, pf2, pf3, kb + 16u, stride, acc1);
        acc2 = pv(pf0, pf1, pf2, pf3, kb + 32u, stride, acc2);
        acc3 = pv(pf0, pf1, pf2, pf3, kb + 48u, stride, acc3);
    }

    // Merge the row block's SPLIT partial results: each subgroup leaves its outputs in its scratch
    // and its row's maximum and sum in ml_s; subgroup `part` of the block then writes the output
    // groups g ≡ part (mod SPLIT) of its rows.
    let total = l + subgroupShuffleXor(l, 16u);
    coopStoreT(acc0, &s_s[s_base], SS);
    coopStoreT(acc1, &s_s[s_base + 16u], SS);
    coopStoreT(acc2, &s_s[s_base + 32u], SS);
    coopStoreT(acc3, &s_s[s_base + 48u], SS);
    if (hh == 0u) {
        ml_s[sg * 32u + r] = m;
        ml_s[sg * 32u + 16u + r] = total;
    }
    workgroupBarrier();
    if (i >= p.q_len) {
        return;
    }
    let first = rb * SPLIT;   // the row block's first subgroup
    var mx = LOWEST;
    for (var w = 0u; w < SPLIT; w++) {
        mx = max(mx, ml_s[(first + w) * 32u + r]);
    }
    var sum = 0.0;
    for (var w = 0u; w < SPLIT; w++) {
        sum += ml_s[(first + w) * 32u + 16u + r] * exp(ml_s[(first + w) * 32u + r] - mx);
    }
    let inv = select(0.0, 1.0 / sum, sum > 0.0);
    let base = q_index(b, i, h);
    for (var g = part; g < 8u; g += SPLIT) {
        var o = vec4<f32>(0.0);
        for (var w = 0u; w < SPLIT; w++) {
            let f = exp(ml_s[(first + w) * 32u + r] - mx);
            o = fma(read4((first + w) * 16u * SS, r, hh, g), vec4<f32>(f), o);
        }
        store4(base, r, hh, g, o * inv);
    }
}

// acc + P·V for the 16 output dimensions whose first element in key row 0 is `at`.
fn pv(pf0: coop_mat16x16<f16, A>, pf1: coop_mat16x16<f16, A>, pf2: coop_mat16x16<f16, A>,
      pf3: coop_mat16x16<f16, A>, at: u32, stride: u32, acc: coop_mat16x16<f32, C>)
    -> coop_mat16x16<f32, C> {
    var o = coopMultiplyAdd(pf0, coopLoadT<coop_mat16x16<f16, B>>(&v[at], stride), acc);
    o = coopMultiplyAdd(pf1, coopLoadT<coop_mat16x16<f16, B>>(&v[at + 16u * stride], stride), o);
    o = coopMultiplyAdd(pf2, coopLoadT<coop_mat16x16<f16, B>>(&v[at + 32u * stride], stride), o);
    return coopMultiplyAdd(pf3, coopLoadT<coop_mat16x16<f16, B>>(&v[at + 48u * stride], stride), o);
}

// Four of this lane's outputs (c = 4g..4g+4) to the scratch, where read4 finds them.
fn put4(base: u32, r: u32, h: u32, g: u32, val: vec4<f32>) {
    let at = base + r * SS;
    s_s[at + ocol(r, h, g * 4u)] = val.x;
    s_s[at + ocol(r, h, g * 4u + 1u)] = val.y;
    s_s[at + ocol(r, h, g * 4u + 2u)] = val.z;
    s_s[at + ocol(r, h, g * 4u + 3u)] = val.w;
}
