// Batched matrix products C = A · B or A · Bᵀ, with a fused epilogue C = act(C + bias).
//
// The prelude defines `T`, the storage type (f32, or f16 with `enable f16;`); products are
// accumulated in f32 either way. A is [batch, M, K]; B is [batch, K, N], or with TRANS_B [batch, N, K]
// (linear-layer weights, [out, in]); a batch stride of 0 broadcasts one B over the batch. C is
// [batch, M, N]. Every global read and write is bounds-checked: any M, N, K is correct.
//
// Entry points:
//   tiled:   a 16×16-thread workgroup computes a (16·TM)×(16·TN) tile of C, each thread a TM×TN block
//            held in registers (rows and columns strided by 16, so that workgroup-memory reads are
//            consecutive across threads); K advances BK at a time through tiles staged in workgroup
//            memory. TM = TN = 4, BK = 16 (64×64 tiles) or TM = TN = 8, BK = 8 (128×128 tiles).
//   gemv:    one row of A (decoding): with TRANS_B, 64 threads share each output (coalesced reads of
//            a weight row, tree-reduced); without, one thread a column.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    a_batch_stride: u32,
    b_batch_stride: u32,
    a_offset: u32,
    b_offset: u32,
    c_offset: u32,
    has_bias: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> a: array<T>;
@group(0) @binding(1) var<storage, read> b: array<T>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read_write> c: array<T>;
@group(0) @binding(4) var<uniform> p: Params;

override TRANS_B: bool = false;
// 0: none, 1: GELU (erf), 2: SiLU.
override ACT: u32 = 0u;
override TM: u32 = 4u;
override TN: u32 = 4u;
override BK: u32 = 16u;

const WG: u32 = 16u;
const THREADS: u32 = 256u;
const MAX_T: u32 = 8u;

// k-major tiles, [BK][BM] and [BK][BN]: BM·BK = BN·BK = 1024 for both tile shapes.
var<workgroup> a_tile: array<f32, 1024>;
var<workgroup> b_tile: array<f32, 1024>;

fn erf(v: f32) -> f32 {
    // Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7 (as in activation.wgsl).
    let x = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * x);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(v) * (1.0 - poly * exp(-x * x));
}

fn epilogue(v: f32, col: u32) -> f32 {
    var r = v;
    if (p.has_bias == 1u) {
        r += f32(bias[col]);
    }
    if (ACT == 1u) {
        r = 0.5 * r * (1.0 + erf(r * 0.70710678118654752));
    } else if (ACT == 2u) {
        r = r / (1.0 + exp(-r));
    }
    return r;
}

fn load_a(base: u32, row: u32, col: u32) -> f32 {
    if (row < p.m && col < p.k) {
        return f32(a[base + row * p.k + col]);
    }
    return 0.0;
}

fn load_b(base: u32, kk: u32, col: u32) -> f32 {
    if (kk < p.k && col < p.n) {
        if (TRANS_B) {
            return f32(b[base + col * p.k + kk]);
        }
        return f32(b[base + kk * p.n + col]);
    }
    return 0.0;
}

@compute @workgroup_size(16, 16, 1)
fn tiled(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let bm = WG * TM;
    let bn = WG * TN;
    let row0 = wid.y * bm;
    let col0 = wid.x * bn;
    let a_base = p.a_offset + wid.z * p.a_batch_stride;
    let b_base = p.b_offset + wid.z * p.b_batch_stride;

    var acc: array<array<f32, MAX_T>, MAX_T>;
    for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
            acc[i][j] = 0.0;
        }
    }

    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // Each thread stages 4 elements of each tile; consecutive threads read consecutive addresses
        // along each operand's contiguous axis.
        for (var s = 0u; s < (bm * BK) / THREADS; s++) {
            let e = lidx + s * THREADS;
            let r = e / BK;
            let kk = e % BK;
            a_tile[kk * bm + r] = load_a(a_base, row0 + r, k0 + kk);
        }
        for (var s = 0u; s < (bn * BK) / THREADS; s++) {
            let e = lidx + s * THREADS;
            if (TRANS_B) {
                let cb = e / BK;
                let kk = e % BK;
                b_tile[kk * bn + cb] = load_b(b_base, k0 + kk, col0 + cb);
            } else {
                let kk = e / bn;
                let cb = e % bn;
                b_tile[kk * bn + cb] = load_b(b_base, k0 + kk, col0 + cb);
            }
        }
        workgroupBarrier();

        for (var kk = 0u; kk < BK; kk++) {
            var a_reg: array<f32, MAX_T>;
            var b_reg: array<f32, MAX_T>;
            for (var i = 0u; i < TM; i++) {
                a_reg[i] = a_tile[kk * bm + lid.y + i * WG];
            }
            for (var j = 0u; j < TN; j++) {
                b_reg[j] = b_tile[kk * bn + lid.x + j * WG];
            }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) {
                    acc[i][j] = fma(a_reg[i], b_reg[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }

    let c_base = p.c_offset + wid.z * p.m * p.n;
    for (var i = 0u; i < TM; i++) {
        let row = row0 + lid.y + i * WG;
        for (var j = 0u; j < TN; j++) {
            let col = col0 + lid.x + j * WG;
            if (row < p.m && col < p.n) {
                c[c_base + row * p.n + col] = T(epilogue(acc[i][j], col));
            }
        }
    }
}

const GEMV_SPLIT: u32 = 64u; // threads sharing one output (TRANS_B)
var<workgroup> partial: array<f32, 256>;

// Workgroup (x: output group, y: row of A, z: batch).
@compute @workgroup_size(256, 1, 1)
fn gemv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let row = wid.y;
    let a_base = p.a_offset + wid.z * p.a_batch_stride + row * p.k;
    let b_base = p.b_offset + wid.z * p.b_batch_stride;
    let c_base = p.c_offset + (wid.z * p.m + row) * p.n;
    if (TRANS_B) {
        // 4 outputs a workgroup, 64 threads each, striding over K.
        let col = wid.x * (THREADS / GEMV_SPLIT) + t / GEMV_SPLIT;
        let lane = t % GEMV_SPLIT;
        var s = 0.0;
        if (col < p.n) {
            let w = b_base + col * p.k;
            for (var kk = lane; kk < p.k; kk += GEMV_SPLIT) {
                s = fma(f32(a[a_base + kk]), f32(b[w + kk]), s);
            }
        }
        partial[t] = s;
        workgroupBarrier();
        for (var stride = GEMV_SPLIT / 2u; stride > 0u; stride /= 2u) {
            if (lane < stride) {
                partial[t] += partial[t + stride];
            }
            workgroupBarrier();
        }
        if (lane == 0u && col < p.n) {
            c[c_base + col] = T(epilogue(partial[t], col));
        }
    } else {
        let col = wid.x * THREADS + t;
        if (col < p.n) {
            var s = 0.0;
            for (var kk = 0u; kk < p.k; kk++) {
                s = fma(f32(a[a_base + kk]), f32(b[b_base + kk * p.n + col]), s);
            }
            c[c_base + col] = T(epilogue(s, col));
        }
    }
}
