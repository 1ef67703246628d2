
// ---- Prompts: x · Wᵀ for many rows of x, W read in its blocks (no dequantized copy). A 16×16-thread
// workgroup computes a 64×64 tile of the output (64 rows of x by 64 rows of W), each thread a 4×4
// block strided by 16 (as shaders/matmul.wgsl's `tiled`); K advances one 32-element block at a time:
// 64 rows of x and 64 weight blocks, decoded once each into workgroup memory, serve 64·64·32
// multiply-adds. Appended to shaders/quant.wgsl (its bindings, block_head and quad). ----------------

const MM_TILE: u32 = 64u;
const MM_WG: u32 = 16u;
// k-major: [32][64] each.
var<workgroup> mm_x: array<f32, 2048>;
var<workgroup> mm_w: array<f32, 2048>;

fn mm_store(row: u32, col: u32, v: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let c = col + j * MM_WG;
        if (c < p.n) {
            var y = v[j];
            if (HAS_RESIDUAL) {
                y += f32(residual[p.res_offset + row * p.n + c]);
            }
            out[p.out_offset + row * p.n + c] = T(y);
        }
    }
}

@compute @workgroup_size(16, 16, 1)
fn mm(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let row0 = wid.y * MM_TILE;
    let col0 = wid.x * MM_TILE;
    let blocks = p.k / 32u;
    // Named vectors, not an array (see shaders/matmul.wgsl's `tiled`: arrays spill under runtime checks).
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // The weight block this thread decodes: row wr of the tile, quads 2·wq and 2·wq + 1.
    let wr = lidx / 4u;
    let wq = 2u * (lidx % 4u);
    for (var b = 0u; b < blocks; b++) {
        let k0 = b * 32u;
        // x: 64 rows × 32 columns, consecutive threads along a row.
        for (var s = 0u; s < 8u; s++) {
            let e = lidx + s * 256u;
            let r = e / 32u;
            let kk = e % 32u;
            var v = 0.0;
            if (row0 + r < p.m) {
                v = f32(x[p.x_offset + (row0 + r) * p.k + k0 + kk]);
            }
            mm_x[kk * MM_TILE + r] = v;
        }
        var v0 = vec4<f32>(0.0);
        var v1 = vec4<f32>(0.0);
        if (col0 + wr < p.n) {
            let h = block_head((col0 + wr) * blocks + b);
            v0 = quad(h, wq);
            v1 = quad(h, wq + 1u);
        }
        let kw = 4u * wq;
        mm_w[kw * MM_TILE + wr] = v0.x;
        mm_w[(kw + 1u) * MM_TILE + wr] = v0.y;
        mm_w[(kw + 2u) * MM_TILE + wr] = v0.z;
        mm_w[(kw + 3u) * MM_TILE + wr] = v0.w;
        mm_w[(kw + 4u) * MM_TILE + wr] = v1.x;
        mm_w[(kw + 5u) * MM_TILE + wr] = v1.y;
        mm_w[(kw + 6u) * MM_TILE + wr] = v1.z;
        mm_w[(kw + 7u) * MM_TILE + wr] = v1.w;
        workgroupBarrier();
        for (var kk = 0u; kk < 32u; kk++) {
            let ai = kk * MM_TILE + lid.y;
            let bi = kk * MM_TILE + lid.x;
            let a_reg = vec4<f32>(mm_x[ai], mm_x[ai + MM_WG], mm_x[ai + 2u * MM_WG], mm_x[ai + 3u * MM_WG]);
            let b_reg = vec4<f32>(mm_w[bi], mm_w[bi + MM_WG], mm_w[bi + 2u * MM_WG], mm_w[bi + 3u * MM_WG]);
            acc0 = fma(vec4<f32>(a_reg.x), b_reg, acc0);
            acc1 = fma(vec4<f32>(a_reg.y), b_reg, acc1);
            acc2 = fma(vec4<f32>(a_reg.z), b_reg, acc2);
            acc3 = fma(vec4<f32>(a_reg.w), b_reg, acc3);
        }
        workgroupBarrier();
    }
    mm_store(row0 + lid.y, col0 + lid.x, acc0);
    mm_store(row0 + lid.y + MM_WG, col0 + lid.x, acc1);
    mm_store(row0 + lid.y + 2u * MM_WG, col0 + lid.x, acc2);
    mm_store(row0 + lid.y + 3u * MM_WG, col0 + lid.x, acc3);
}
