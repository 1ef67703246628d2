// f16 products on tensor cores with the fragments read straight from global memory: nothing staged
// in workgroup memory, no barrier in the K loop (each subgroup loads the A and B fragments it
// multiplies; the subgroups of a workgroup that share them hit the same cache lines). Appended to
// shaders/matmul_coop.wgsl (same Params, epilogue and write_out); f16 a only (not A_F32).
//
// The host picks these entries only where M, N and K are multiples of 16 (and the operands' offsets
// and batch strides of 8), so that a fragment is either wholly inside the matrix or wholly outside:
// one outside (a tile's rows or columns past M or N) is read from the matrix's last 16 rows or
// columns instead, and its products are dropped by write_out's bounds check.
//
//   coop_direct: 256 threads, 8 subgroups of 64×32 outputs (4×2 accumulators), a 128×128 tile;
//   coop_direct_wide: 128 threads, 4 subgroups of 64×64 outputs (4×4 accumulators), a 128×128
//   tile: twice the products per fragment loaded.
//
// The fragments of the next 16 of K are loaded before the current ones go through the tensor cores.

@group(0) @binding(5) var<storage, read> a_h: array<f16>;
@group(0) @binding(6) var<storage, read> b_h: array<f16>;

// A's fragment of rows row..row+15, columns kk..kk+15 (row-major, K contiguous).
fn a_direct(base: u32, row: u32, kk: u32) -> coop_mat16x16<f16, A> {
    let r = min(row, p.m - 16u);
    return coopLoadT<coop_mat16x16<f16, A>>(&a_h[base + r * p.k + kk], p.k);
}

// B's fragment of rows kk..kk+15, columns col..col+15 of the K×N operand.
fn b_direct(base: u32, col: u32, kk: u32) -> coop_mat16x16<f16, B> {
    let c = min(col, p.n - 16u);
    if (TRANS_B) {
        // [N][K]: element (k, n) at n * K + k, column-major.
        return coopLoad<coop_mat16x16<f16, B>>(&b_h[base + c * p.k + kk], p.k);
    }
    return coopLoadT<coop_mat16x16<f16, B>>(&b_h[base + kk * p.n + c], p.n);
}

@compute @workgroup_size(256, 1, 1)
fn coop_direct(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let batch = wid.z;
    let a_base = p.a_offset + batch * p.a_batch_stride;
    let b_base = p.b_offset + batch * p.b_batch_stride;
    let sg = lidx / 32u;
    let lane = lidx % 32u;
    let r = wid.y * BM + (sg / 4u) * 64u;
    let q = wid.x * BN + (sg % 4u) * 32u;

    var c00: coop_mat16x16<f32, C>;
    var c01: coop_mat16x16<f32, C>;
    var c10: coop_mat16x16<f32, C>;
    var c11: coop_mat16x16<f32, C>;
    var c20: coop_mat16x16<f32, C>;
    var c21: coop_mat16x16<f32, C>;
    var c30: coop_mat16x16<f32, C>;
    var c31: coop_mat16x16<f32, C>;

    var a0 = a_direct(a_base, r, 0u);
    var a1 = a_direct(a_base, r + 16u, 0u);
    var a2 = a_direct(a_base, r + 32u, 0u);
    var a3 = a_direct(a_base, r + 48u, 0u);
    var b0 = b_direct(b_base, q, 0u);
    var b1 = b_direct(b_base, q + 16u, 0u);
    for (var k0 = 0u; k0 < p.k; k0 += 16u) {
        // The next step's fragments (the last step reloads its own: in bounds, unused).
        let kn = min(k0 + 16u, p.k - 16u);
        let na0 = a_direct(a_base, r, kn);
        let na1 = a_direct(a_base, r + 16u, kn);
        let na2 = a_direct(a_base, r + 32u, kn);
        let na3 = a_direct(a_base, r + 48u, kn);
        let nb0 = b_direct(b_base, q, kn);
        let nb1 = b_direct(b_base, q + 16u, kn);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        c20 = coopMultiplyAdd(a2, b0, c20);
        c21 = coopMultiplyAdd(a2, b1, c21);
        c30 = coopMultiplyAdd(a3, b0, c30);
        c31 = coopMultiplyAdd(a3, b1, c31);
        a0 = na0;
        a1 = na1;
        a2 = na2;
        a3 = na3;
        b0 = nb0;
        b1 = nb1;
    }

    let c_base = p.c_offset + batch * p.m * p.n;
    write_out(c00, sg, lane, r, q, c_base);
    write_out(c01, sg, lane, r, q + 16u, c_base);
    write_out(c10, sg, lane, r + 16u, q, c_base);
    write_out(c11, sg, lane, r + 16u, q + 16u, c_base);
    write_out(c20, sg, lane, r + 32u, q, c_base);
    write_out(c21, sg, lane, r + 32u, q + 16u, c_base);
    write_out(c30, sg, lane, r + 48u, q, c_base);
    write_out(c31, sg, lane, r + 48u, q + 16u, c_base);
}

@compute @workgroup_size(128, 1, 1)
fn coop_direct_wide(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let batch = wid.z;
    let a_base = p.a_offset + batch * p.a_batch_stride;
    let b_base = p.b_offset + batch * p.b_batch_stride;
    let sg = lidx / 32u;
    let lane = lidx % 32u;
    let r = wid.y * BM + (sg / 2u) * 64u;
    let q = wid.x * BN + (sg % 2u) * 64u;

    var c00: coop_mat16x16<f32, C>;
    var c01: coop_mat16x16<f32, C>;
    var c02: coop_mat16x16<f32, C>;
    var c03: coop_mat16x16<f32, C>;
    var c10: coop_mat16x16<f32, C>;
    var c11: coop_mat16x16<f32, C>;
    var c12: coop_mat16x16<f32, C>;
    var c13: coop_mat16x16<f32, C>;
    var c20: coop_mat16x16<f32, C>;
    var c21: coop_mat16x16<f32, C>;
    var c22: coop_mat16x16<f32, C>;
    var c23: coop_mat16x16<f32, C>;
    var c30: coop_mat16x16<f32, C>;
    var c31: coop_mat16x16<f32, C>;
    var c32: coop_mat16x16<f32, C>;
    var c33: coop_mat16x16<f32, C>;

    var a0 = a_direct(a_base, r, 0u);
    var a1 = a_direct(a_base, r + 16u, 0u);
    var a2 = a_direct(a_base, r + 32u, 0u);
    var a3 = a_direct(a_base, r + 48u, 0u);
    var b0 = b_direct(b_base, q, 0u);
    var b1 = b_direct(b_base, q + 16u, 0u);
    var b2 = b_direct(b_base, q + 32u, 0u);
    var b3 = b_direct(b_base, q + 48u, 0u);
    for (var k0 = 0u; k0 < p.k; k0 += 16u) {
        let kn = min(k0 + 16u, p.k - 16u);
        let na0 = a_direct(a_base, r, kn);
        let na1 = a_direct(a_base, r + 16u, kn);
        let na2 = a_direct(a_base, r + 32u, kn);
        let na3 = a_direct(a_base, r + 48u, kn);
        let nb0 = b_direct(b_base, q, kn);
        let nb1 = b_direct(b_base, q + 16u, kn);
        let nb2 = b_direct(b_base, q + 32u, kn);
        let nb3 = b_direct(b_base, q + 48u, kn);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c02 = coopMultiplyAdd(a0, b2, c02);
        c03 = coopMultiplyAdd(a0, b3, c03);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        c12 = coopMultiplyAdd(a1, b2, c12);
        c13 = coopMultiplyAdd(a1, b3, c13);
        c20 = coopMultiplyAdd(a2, b0, c20);
        c21 = coopMultiplyAdd(a2, b1, c21);
        c22 = coopMultiplyAdd(a2, b2, c22);
        c23 = coopMultiplyAdd(a2, b3, c23);
        c30 = coopMultiplyAdd(a3, b0, c30);
        c31 = coopMultiplyAdd(a3, b1, c31);
        c32 = coopMultiplyAdd(a3, b2, c32);
        c33 = coopMultiplyAdd(a3, b3, c33);
        a0 = na0;
        a1 = na1;
        a2 = na2;
        a3 = na3;
        b0 = nb0;
        b1 = nb1;
        b2 = nb2;
        b3 = nb3;
    }

    let c_base = p.c_offset + batch * p.m * p.n;
    write_out(c00, sg, lane, r, q, c_base);
    write_out(c01, sg, lane, r, q + 16u, c_base);
    write_out(c02, sg, lane, r, q + 32u, c_base);
    write_out(c03, sg, lane, r, q + 48u, c_base);
    write_out(c10, sg, lane, r + 16u, q, c_base);
    write_out(c11, sg, lane, r + 16u, q + 16u, c_base);
    write_out(c12, sg, lane, r + 16u, q + 32u, c_base);
    write_out(c13, sg, lane, r + 16u, q + 48u, c_base);
    write_out(c20, sg, lane, r + 32u, q, c_base);
    write_out(c21, sg, lane, r + 32u, q + 16u, c_base);
    write_out(c22, sg, lane, r + 32u, q + 32u, c_base);
    write_out(c23, sg, lane, r + 32u, q + 48u, c_base);
    write_out(c30, sg, lane, r + 48u, q, c_base);
    write_out(c31, sg, lane, r + 48u, q + 16u, c_base);
    write_out(c32, sg, lane, r + 48u, q + 32u, c_base);
    write_out(c33, sg, lane, r + 48u, q + 48u, c_base);
}
