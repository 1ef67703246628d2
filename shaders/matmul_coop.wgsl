enable wgpu_cooperative_matrix;
// f16 matrix products on tensor cores (native only: wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX, Vulkan's
// VK_KHR_cooperative_matrix). The prelude is f16's (`enable f16; alias T = f16;`); products are
// accumulated in f32, as in shaders/matmul.wgsl, with the same Params and the same epilogue
// act(c + bias), stored as f16.
//
// A 256-thread workgroup (8 subgroups of 32) computes a 128×128 tile of C; each subgroup a 64×32 part
// of it as 4×2 cooperative 16×16 f32 accumulators. K advances BK at a time (an override: the host
// takes 64 for products of up to a few hundred tiles, 32 for larger ones): the next A and B tiles
// are read from global memory into registers (8 halves a vec4<u32>) while the current ones, staged
// in workgroup memory, go through the tensor cores. Edges are zero-filled, so any M and N is correct;
// the host requires K, the offsets, the batch strides (and N without TRANS_B) to be multiples of 8,
// so that every vec4 read is whole and aligned.
//
// With A_F32 (the module's T is then f32: bias and C are f32) `a` holds f32 activations, rounded to
// f16 as they are staged, while `b` stays f16 (a linear layer's weight converted once at load): the
// mixed product that puts an f32 model's linears on tensor cores.
//
// Two tile sizes: `coop`, 128×128 a workgroup of 8 subgroups (4×2 accumulators each), and `coop64`,
// 64×64 a workgroup of 4 subgroups (2×2 each) for products with too few 128×128 tiles to fill a GPU.

// Params and epilogue(): shaders/matmul_common.wgsl (prepended, with activation_fns.wgsl).

@group(0) @binding(0) var<storage, read> a: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read_write> c: array<T>;
@group(0) @binding(4) var<uniform> p: Params;
// The epilogue's residual (shape of c; bound to a placeholder when has_res is 0).
@group(0) @binding(7) var<storage, read> res: array<T>;

override TRANS_B: bool = false;
override A_F32: bool = false;

const BM: u32 = 128u;
const BN: u32 = 128u;
// K a step: 32, or 64 (half the steps and barriers for the same work; the tiles in workgroup
// memory twice as long).
override BK: u32 = 32u;
// Row strides of the staged tiles, in halves, padded by 8 against bank conflicts.
override AS: u32 = BK + 8u;      // a_s: [BM][AS], k contiguous
override BS_NK: u32 = BK + 8u;   // b_s with TRANS_B: [BN][BS_NK], k contiguous
const BS_KN: u32 = 136u;         // b_s without: [BK][BS_KN], n contiguous
override A_LEN: u32 = BM * AS;
override B_LEN: u32 = max(BN * BS_NK, BK * BS_KN);

var<workgroup> a_s: array<f16, A_LEN>;
var<workgroup> b_s: array<f16, B_LEN>;
var<workgroup> c_s: array<f32, 2048>;   // one 16×16 accumulator a subgroup, for the epilogue

// Eight halves of row `row` (< rows), from column `col` (a multiple of 8; the host checked
// cols % 8 == 0), of the matrix at `base` (in halves) with `cols` columns.
fn load_a8(base: u32, row: u32, col: u32) -> vec4<u32> {
    if (row < p.m && col < p.k) {
        if (A_F32) {
            // Eight f32 are two vec4s; each pair rounds to two packed halves.
            let i = (base + row * p.k + col) / 4u;
            let lo = bitcast<vec4<f32>>(a[i]);
            let hi = bitcast<vec4<f32>>(a[i + 1u]);
            return vec4<u32>(pack2x16float(lo.xy), pack2x16float(lo.zw),
                             pack2x16float(hi.xy), pack2x16float(hi.zw));
        }
        return a[(base + row * p.k + col) / 8u];
    }
    return vec4<u32>(0u);
}

fn load_b8(base: u32, row: u32, col: u32, rows: u32, cols: u32) -> vec4<u32> {
    if (row < rows && col < cols) {
        return b[(base + row * cols + col) / 8u];
    }
    return vec4<u32>(0u);
}

fn put8(tile: u32, at: u32, v: vec4<u32>) {
    // unpack2x16float widens exactly, so the f16 round trip loses nothing.
    let h0 = vec2<f16>(unpack2x16float(v.x));
    let h1 = vec2<f16>(unpack2x16float(v.y));
    let h2 = vec2<f16>(unpack2x16float(v.z));
    let h3 = vec2<f16>(unpack2x16float(v.w));
    if (tile == 0u) {
        a_s[at] = h0.x; a_s[at + 1u] = h0.y; a_s[at + 2u] = h1.x; a_s[at + 3u] = h1.y;
        a_s[at + 4u] = h2.x; a_s[at + 5u] = h2.y; a_s[at + 6u] = h3.x; a_s[at + 7u] = h3.y;
    } else {
        b_s[at] = h0.x; b_s[at + 1u] = h0.y; b_s[at + 2u] = h1.x; b_s[at + 3u] = h1.y;
        b_s[at + 4u] = h2.x; b_s[at + 5u] = h2.y; b_s[at + 6u] = h3.x; b_s[at + 7u] = h3.y;
    }
}

// Where the vec4 number `v` of a BM×BK (A, B with TRANS_B) tile goes: (row, column) in the tile.
fn a_slot(v: u32) -> vec2<u32> {
    return vec2<u32>(v / (BK / 8u), (v % (BK / 8u)) * 8u);
}

// `bn`: the tile's width (128 or 64).
fn b_slot(v: u32, bn: u32) -> vec2<u32> {
    if (TRANS_B) {
        return a_slot(v);   // [n][k]
    }
    let per_row = bn / 8u;
    return vec2<u32>(v / per_row, (v % per_row) * 8u);     // [k][n]
}

fn fetch_b(base: u32, col0: u32, k0: u32, v: u32, bn: u32) -> vec4<u32> {
    let s = b_slot(v, bn);
    if (TRANS_B) {
        return load_b8(base, col0 + s.x, k0 + s.y, p.n, p.k);
    }
    return load_b8(base, k0 + s.x, col0 + s.y, p.k, p.n);
}

fn store_b(v: u32, val: vec4<u32>, bn: u32) {
    let s = b_slot(v, bn);
    if (TRANS_B) {
        put8(1u, s.x * BS_NK + s.y, val);
    } else {
        put8(1u, s.x * BS_KN + s.y, val);
    }
}

// The vec4s of eight halves a thread moves for one K step, from their fetch from global memory to
// their staging in workgroup memory: two of the A tile and two of the B tile, four of each with
// BK = 64 (named registers: a private array indexed in a loop may live in memory).
struct Step {
    a0: vec4<u32>, a1: vec4<u32>, a2: vec4<u32>, a3: vec4<u32>,
    b0: vec4<u32>, b1: vec4<u32>, b2: vec4<u32>, b3: vec4<u32>,
}

fn fetch_a(base: u32, row0: u32, k0: u32, v: u32) -> vec4<u32> {
    let s = a_slot(v);
    return load_a8(base, row0 + s.x, k0 + s.y);
}

fn store_a(v: u32, val: vec4<u32>) {
    let s = a_slot(v);
    put8(0u, s.x * AS + s.y, val);
}

// Thread `t` of `n`'s share of the K step from `k0` of the tile at (row0, col0), `bn` columns wide:
// vec4s t and t + n of each tile (and t + 2n, t + 3n with BK = 64).
fn fetch_step(a_base: u32, b_base: u32, row0: u32, col0: u32, k0: u32, t: u32, n: u32,
              bn: u32) -> Step {
    var st: Step;
    st.a0 = fetch_a(a_base, row0, k0, t);
    st.a1 = fetch_a(a_base, row0, k0, t + n);
    st.b0 = fetch_b(b_base, col0, k0, t, bn);
    st.b1 = fetch_b(b_base, col0, k0, t + n, bn);
    if (BK == 64u) {
        st.a2 = fetch_a(a_base, row0, k0, t + 2u * n);
        st.a3 = fetch_a(a_base, row0, k0, t + 3u * n);
        st.b2 = fetch_b(b_base, col0, k0, t + 2u * n, bn);
        st.b3 = fetch_b(b_base, col0, k0, t + 3u * n, bn);
    }
    return st;
}

// The same share into the staged tiles.
fn stage_step(st: Step, t: u32, n: u32, bn: u32) {
    store_a(t, st.a0);
    store_a(t + n, st.a1);
    store_b(t, st.b0, bn);
    store_b(t + n, st.b1, bn);
    if (BK == 64u) {
        store_a(t + 2u * n, st.a2);
        store_a(t + 3u * n, st.a3);
        store_b(t + 2u * n, st.b2, bn);
        store_b(t + 3u * n, st.b3, bn);
    }
}

fn b_frag(n0: u32, kk: u32) -> coop_mat16x16<f16, B> {
    if (TRANS_B) {
        // Element (k, n) at n * BS_NK + k: column-major.
        return coopLoad<coop_mat16x16<f16, B>>(&b_s[n0 * BS_NK + kk], BS_NK);
    }
    return coopLoadT<coop_mat16x16<f16, B>>(&b_s[kk * BS_KN + n0], BS_KN);
}

fn a_frag(m0: u32, kk: u32) -> coop_mat16x16<f16, A> {
    return coopLoadT<coop_mat16x16<f16, A>>(&a_s[m0 * AS + kk], AS);
}

// The epilogue of one 16×16 accumulator: staged row-major in c_s, then 8 outputs a lane.
fn write_out(acc: coop_mat16x16<f32, C>, sg: u32, lane: u32, row0: u32, col0: u32, c_base: u32) {
    coopStoreT(acc, &c_s[sg * 256u], 16u);
    workgroupBarrier();
    for (var t = 0u; t < 8u; t++) {
        let e = lane * 8u + t;
        let row = row0 + e / 16u;
        let col = col0 + e % 16u;
        if (row < p.m && col < p.n) {
            put_c(c_base + row * p.n + col, c_s[sg * 256u + e], col);
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(256, 1, 1)
fn coop(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let part = k_part(wid.z);
    let batch = part.x;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let a_base = p.a_offset + batch * p.a_batch_stride;
    let b_base = p.b_offset + batch * p.b_batch_stride;
    let sg = lidx / 32u;
    let lane = lidx % 32u;
    let sm = (sg / 4u) * 64u;   // this subgroup's rows in the tile
    let sn = (sg % 4u) * 32u;   // and columns

    var c00: coop_mat16x16<f32, C>;
    var c01: coop_mat16x16<f32, C>;
    var c10: coop_mat16x16<f32, C>;
    var c11: coop_mat16x16<f32, C>;
    var c20: coop_mat16x16<f32, C>;
    var c21: coop_mat16x16<f32, C>;
    var c30: coop_mat16x16<f32, C>;
    var c31: coop_mat16x16<f32, C>;

    var step = fetch_step(a_base, b_base, row0, col0, part.y, lidx, 256u, BN);

    for (var k0 = part.y; k0 < part.z; k0 += BK) {
        stage_step(step, lidx, 256u, BN);
        workgroupBarrier();
        let kn = k0 + BK;
        if (kn < part.z) {
            step = fetch_step(a_base, b_base, row0, col0, kn, lidx, 256u, BN);
        }
        for (var kk = 0u; kk < BK; kk += 16u) {
            let b0 = b_frag(sn, kk);
            let b1 = b_frag(sn + 16u, kk);
            var af = a_frag(sm, kk);
            c00 = coopMultiplyAdd(af, b0, c00);
            c01 = coopMultiplyAdd(af, b1, c01);
            af = a_frag(sm + 16u, kk);
            c10 = coopMultiplyAdd(af, b0, c10);
            c11 = coopMultiplyAdd(af, b1, c11);
            af = a_frag(sm + 32u, kk);
            c20 = coopMultiplyAdd(af, b0, c20);
            c21 = coopMultiplyAdd(af, b1, c21);
            af = a_frag(sm + 48u, kk);
            c30 = coopMultiplyAdd(af, b0, c30);
            c31 = coopMultiplyAdd(af, b1, c31);
        }
        workgroupBarrier();
    }

    let c_base = p.c_offset + wid.z * p.m * p.n;
    let r = row0 + sm;
    let q = col0 + sn;
    write_out(c00, sg, lane, r, q, c_base);
    write_out(c01, sg, lane, r, q + 16u, c_base);
    write_out(c10, sg, lane, r + 16u, q, c_base);
    write_out(c11, sg, lane, r + 16u, q + 16u, c_base);
    write_out(c20, sg, lane, r + 32u, q, c_base);
    write_out(c21, sg, lane, r + 32u, q + 16u, c_base);
    write_out(c30, sg, lane, r + 48u, q, c_base);
    write_out(c31, sg, lane, r + 48u, q + 16u, c_base);
}

// 64×64 tiles: a 128-thread workgroup (4 subgroups of 32), each subgroup a 32×32 quarter as 2×2
// accumulators; otherwise as `coop`.
@compute @workgroup_size(128, 1, 1)
fn coop64(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    const TILE: u32 = 64u;
    let part = k_part(wid.z);
    let batch = part.x;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let a_base = p.a_offset + batch * p.a_batch_stride;
    let b_base = p.b_offset + batch * p.b_batch_stride;
    let sg = lidx / 32u;
    let lane = lidx % 32u;
    let sm = (sg / 2u) * 32u;
    let sn = (sg % 2u) * 32u;

    var c00: coop_mat16x16<f32, C>;
    var c01: coop_mat16x16<f32, C>;
    var c10: coop_mat16x16<f32, C>;
    var c11: coop_mat16x16<f32, C>;

    // A 64×BK (or BK×64) tile is 8·BK vec4s of halves: two a thread (four with BK = 64).
    var step = fetch_step(a_base, b_base, row0, col0, part.y, lidx, 128u, TILE);

    for (var k0 = part.y; k0 < part.z; k0 += BK) {
        stage_step(step, lidx, 128u, TILE);
        workgroupBarrier();
        let kn = k0 + BK;
        if (kn < part.z) {
            step = fetch_step(a_base, b_base, row0, col0, kn, lidx, 128u, TILE);
        }
        for (var kk = 0u; kk < BK; kk += 16u) {
            let b0 = b_frag(sn, kk);
            let b1 = b_frag(sn + 16u, kk);
            var af = a_frag(sm, kk);
            c00 = coopMultiplyAdd(af, b0, c00);
            c01 = coopMultiplyAdd(af, b1, c01);
            af = a_frag(sm + 16u, kk);
            c10 = coopMultiplyAdd(af, b0, c10);
            c11 = coopMultiplyAdd(af, b1, c11);
        }
        workgroupBarrier();
    }

    let c_base = p.c_offset + wid.z * p.m * p.n;
    let r = row0 + sm;
    let q = col0 + sn;
    write_out(c00, sg, lane, r, q, c_base);
    write_out(c01, sg, lane, r, q + 16u, c_base);
    write_out(c10, sg, lane, r + 16u, q, c_base);
    write_out(c11, sg, lane, r + 16u, q + 16u, c_base);
}
