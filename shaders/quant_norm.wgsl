// A one-row GEMV of RMSNorm(x) (`gemv_norm`; after shaders/quant.wgsl, whose `x4`, `quad`,
// `block_head`, `row_sum2`, `xin` and `rms_scale` it uses, with NORM set: src/kernels/quant.rs puts
// it there): a decoder's final norm folded into its LM head, one dispatch rather than two. As `gemv`
// (8 weight rows a workgroup, 32 lanes a row walking it in quads), each lane also summing the squares
// of the x it reads, so each row's lanes together have mean(x²) when their sums are added: out[j] =
// (Σ_k x_k·g_k·W[j, k]) / sqrt(mean(x²) + eps), g the norm's weight. The row's sums are added in one
// reduction of two values.

// Row `wg.x · ROWS + lid / LANES`'s output, in every lane of the row (rows past p.n: 0). Called by
// every thread (barriers inside).
fn norm_row(wg: vec3<u32>, lid: u32) -> f32 {
    let row = wg.x * ROWS + lid / LANES;
    let lane = lid % LANES;
    var acc = 0.0;
    var ss = 0.0;
    if (row < p.n) {
        let blocks = p.k / 32u;
        let quads = blocks * 8u;
        let i = lane % 8u;
        for (var u0 = lane; u0 < quads; u0 += UNROLL * LANES) {
            for (var j = 0u; j < UNROLL; j++) {
                let u = u0 + j * LANES;
                if (u < quads) {
                    let xr = x4(0u, 4u * u);
                    ss += dot(xr, xr);
                    acc += dot(quad(block_head(row * blocks + u / 8u), i), xin(xr, 4u * u));
                }
            }
        }
    }
    let total = row_sum2(acc, ss, lid);
    return total.x * rms_scale(total.y);
}

@compute @workgroup_size(256, 1, 1)
fn gemv_norm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x * ROWS + lid / LANES;
    let y = norm_row(wg, lid);
    if (row < p.n && lid % LANES == 0u) {
        out[p.out_offset + row] = T(y);
    }
}

// ---- gemv_norm that also writes its workgroup's (maximum as stored, first row holding it) to
// `parts[wg.x]` (f32 bits, row; 0xffffffff: no row), rows compared in order with the argmax's rule
// (shaders/sample.wgsl's keep_max): shaders/sample.wgsl's `argmax_parts` then takes the first maximum
// of these pairs, the same token as an argmax over the whole row, reading 1/8 of it.

@group(0) @binding(13) var<storage, read_write> parts: array<vec2<u32>>;
var<workgroup> part_v: array<f32, ROWS>;

@compute @workgroup_size(256, 1, 1)
fn gemv_norm_argmax(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x * ROWS + lid / LANES;
    let y = T(norm_row(wg, lid));
    if (row < p.n && lid % LANES == 0u) {
        out[p.out_offset + row] = y;
        part_v[lid / LANES] = f32(y);
    }
    workgroupBarrier();
    if (lid == 0u) {
        var best = 0.0;
        var best_i = 0xffffffffu;
        for (var r = 0u; r < ROWS; r++) {
            let j = wg.x * ROWS + r;
            if (j < p.n && (part_v[r] > best || best_i == 0xffffffffu)) {
                best = part_v[r];
                best_i = j;
            }
        }
        parts[wg.x] = vec2<u32>(bitcast<u32>(best), best_i);
    }
}
