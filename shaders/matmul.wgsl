// Batched matrix product C = A · B (or A · Bᵀ), tiled in workgroup memory.
//
// The prelude defines `T`, the storage type (f32, or f16 with `enable f16;`); products are accumulated
// in f32 either way. Each workgroup of 16×16 threads computes a 64×64 tile of C; each thread holds a
// 4×4 block of it in registers. K advances 16 at a time through workgroup tiles of A and B. Every
// global read and write is bounds-checked, so any M, N, K is correct, multiples of 64 or not.
//
// A is [batch, M, K]; B is [batch, K, N] or, with TRANS_B, [batch, N, K] (weights stored [out, in]);
// a batch stride of 0 broadcasts one matrix over the batch. C is [batch, M, N].

struct Params {
    m: u32,
    n: u32,
    k: u32,
    a_batch_stride: u32,
    b_batch_stride: u32,
    a_offset: u32,
    b_offset: u32,
    c_offset: u32,
}

@group(0) @binding(0) var<storage, read> a: array<T>;
@group(0) @binding(1) var<storage, read> b: array<T>;
@group(0) @binding(2) var<storage, read_write> c: array<T>;
@group(0) @binding(3) var<uniform> p: Params;

// B is laid out [N, K] (true) or [K, N] (false).
override TRANS_B: bool = false;

const BM: u32 = 64u;   // rows of C per workgroup
const BN: u32 = 64u;   // columns of C per workgroup
const BK: u32 = 16u;   // depth of one K step
const WG: u32 = 16u;   // threads per workgroup side
const TM: u32 = 4u;    // rows per thread (strided by WG)
const TN: u32 = 4u;    // columns per thread (strided by WG)
const THREADS: u32 = WG * WG;

// Stored k-major, [BK][BM] and [BK][BN], so that the inner loop reads consecutive words across threads.
var<workgroup> a_tile: array<f32, 1024>; // BK * BM
var<workgroup> b_tile: array<f32, 1024>; // BK * BN

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
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let a_base = p.a_offset + wid.z * p.a_batch_stride;
    let b_base = p.b_offset + wid.z * p.b_batch_stride;

    var acc: array<array<f32, TN>, TM>;
    for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
            acc[i][j] = 0.0;
        }
    }

    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // Each thread stages 4 of the 1024 elements of each tile. Consecutive threads read
        // consecutive addresses of the contiguous axis of each operand.
        for (var s = 0u; s < (BM * BK) / THREADS; s++) {
            let e = lidx + s * THREADS;
            let r = e / BK;
            let kk = e % BK;
            a_tile[kk * BM + r] = load_a(a_base, row0 + r, k0 + kk);
            if (TRANS_B) {
                b_tile[kk * BN + r] = load_b(b_base, k0 + kk, col0 + r);
            } else {
                let kb = e / BN;
                let cb = e % BN;
                b_tile[kb * BN + cb] = load_b(b_base, k0 + kb, col0 + cb);
            }
        }
        workgroupBarrier();

        for (var kk = 0u; kk < BK; kk++) {
            var a_reg: array<f32, TM>;
            var b_reg: array<f32, TN>;
            for (var i = 0u; i < TM; i++) {
                a_reg[i] = a_tile[kk * BM + lid.y + i * WG];
            }
            for (var j = 0u; j < TN; j++) {
                b_reg[j] = b_tile[kk * BN + lid.x + j * WG];
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
                c[c_base + row * p.n + col] = T(acc[i][j]);
            }
        }
    }
}
