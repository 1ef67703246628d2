enable wgpu_cooperative_matrix;
enable f16;

// ---- Prompts on tensor cores (native only: wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX): `mm`'s 64×64
// output tile, K one 32-element block a step, but the products run as 16×16×16 f16 cooperative
// matrices with f32 accumulation. A 128-thread workgroup (4 subgroups of 32) computes the tile, each
// subgroup a 32×32 quarter as 2×2 accumulators. Each step 64 rows of x are rounded to f16 and 64
// weight blocks decoded to f16 (two threads a block) into workgroup memory, k contiguous in both.
// Appended to shaders/quant_mm.wgsl (with quant.wgsl's bindings, block_head and quad). ------------

const QC_TILE: u32 = 64u;
// Row stride of the staged tiles, in halves: 32 padded by 8 against bank conflicts.
const QC_S: u32 = 40u;
var<workgroup> qc_x: array<f16, 2560>;   // [64 rows of x][QC_S]
var<workgroup> qc_w: array<f16, 2560>;   // [64 weight rows][QC_S]
var<workgroup> qc_c: array<f32, 1024>;   // one 16×16 accumulator a subgroup, for the epilogue

// f16 saturates instead of overflowing to infinity (|x| > 65504 is rounded to the largest half).
fn qc_half(v: f32) -> f16 {
    return f16(clamp(v, -65504.0, 65504.0));
}

// One 16×16 accumulator out: staged row-major in qc_c, then 8 outputs a lane (+ residual).
fn qc_store(acc: coop_mat16x16<f32, C>, sg: u32, lane: u32, row0: u32, col0: u32) {
    coopStoreT(acc, &qc_c[sg * 256u], 16u);
    workgroupBarrier();
    for (var t = 0u; t < 8u; t++) {
        let e = lane * 8u + t;
        let row = row0 + e / 16u;
        let col = col0 + e % 16u;
        if (row < p.m && col < p.n) {
            var y = qc_c[sg * 256u + e];
            if (HAS_RESIDUAL) {
                y += f32(residual[p.res_offset + row * p.n + col]);
            }
            out[p.out_offset + row * p.n + col] = T(y);
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(128, 1, 1)
fn mm_coop(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let row0 = wid.y * QC_TILE;
    let col0 = wid.x * QC_TILE;
    let blocks = p.k / 32u;
    let sg = lidx / 32u;
    let lane = lidx % 32u;
    let sm = (sg / 2u) * 32u;   // this subgroup's rows of the tile
    let sn = (sg % 2u) * 32u;   // and columns (weight rows)

    var c00: coop_mat16x16<f32, C>;
    var c01: coop_mat16x16<f32, C>;
    var c10: coop_mat16x16<f32, C>;
    var c11: coop_mat16x16<f32, C>;

    // The half block this thread decodes: weight row wr of the tile, quads wq .. wq + 3.
    let wr = lidx / 2u;
    let wq = 4u * (lidx % 2u);
    for (var b = 0u; b < blocks; b++) {
        let k0 = b * 32u;
        // x: 64 rows × 32 columns, 16 a thread, consecutive threads along a row.
        for (var s = 0u; s < 16u; s++) {
            let e = lidx + s * 128u;
            let r = e / 32u;
            let kk = e % 32u;
            var v = 0.0;
            if (row0 + r < p.m) {
                v = f32(x[p.x_offset + (row0 + r) * p.k + k0 + kk]);
            }
            qc_x[r * QC_S + kk] = qc_half(v);
        }
        var h: BlockHead;
        let live = col0 + wr < p.n;
        if (live) {
            h = block_head((col0 + wr) * blocks + b);
        }
        for (var q = 0u; q < 4u; q++) {
            var v = vec4<f32>(0.0);
            if (live) {
                v = quad(h, wq + q);
            }
            let at = wr * QC_S + 4u * (wq + q);
            qc_w[at] = qc_half(v.x);
            qc_w[at + 1u] = qc_half(v.y);
            qc_w[at + 2u] = qc_half(v.z);
            qc_w[at + 3u] = qc_half(v.w);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 32u; kk += 16u) {
            // Weight element (k, n) at n * QC_S + k: column-major B.
            let b0 = coopLoad<coop_mat16x16<f16, B>>(&qc_w[sn * QC_S + kk], QC_S);
            let b1 = coopLoad<coop_mat16x16<f16, B>>(&qc_w[(sn + 16u) * QC_S + kk], QC_S);
            var af = coopLoadT<coop_mat16x16<f16, A>>(&qc_x[sm * QC_S + kk], QC_S);
            c00 = coopMultiplyAdd(af, b0, c00);
            c01 = coopMultiplyAdd(af, b1, c01);
            af = coopLoadT<coop_mat16x16<f16, A>>(&qc_x[(sm + 16u) * QC_S + kk], QC_S);
            c10 = coopMultiplyAdd(af, b0, c10);
            c11 = coopMultiplyAdd(af, b1, c11);
        }
        workgroupBarrier();
    }
    let r = row0 + sm;
    let c = col0 + sn;
    qc_store(c00, sg, lane, r, c);
    qc_store(c01, sg, lane, r, c + 16u);
    qc_store(c10, sg, lane, r + 16u, c);
    qc_store(c11, sg, lane, r + 16u, c + 16u);
}
