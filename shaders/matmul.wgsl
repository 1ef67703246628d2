// Batched matrix products C = A · B or A · Bᵀ, with a fused epilogue C = act(C + bias).
//
// The prelude defines `T`, the storage type (f32, or f16 with `enable f16;`); products are
// accumulated in f32 either way. A is [batch, M, K]; B is [batch, K, N], or with TRANS_B [batch, N, K]
// (linear-layer weights, [out, in]); a batch stride of 0 broadcasts one B over the batch. C is
// [batch, M, N]. Every global read and write is bounds-checked: any M, N, K is correct.
//
// Entry points:
//   tiled:    a 16×16-thread workgroup computes a 64×64 tile of C, each thread a 4×4 block held in
//             registers (rows and columns strided by 16, so that workgroup-memory reads are consecutive
//             across threads); K advances 16 at a time through tiles staged in workgroup memory.
//   tiled128: 128×128 tiles, 8×8 outputs a thread as vec4 accumulators (below).
//   direct:   CPU adapters: 4×4 outputs a thread straight from A and B, no workgroup memory (below).
//   gemv:    one row of A (decoding): with TRANS_B, 64 threads share each output (coalesced reads of
//            a weight row, tree-reduced); without, one thread a column.

// Params and epilogue(): shaders/matmul_common.wgsl (prepended, with activation_fns.wgsl).

@group(0) @binding(0) var<storage, read> a: array<T>;
@group(0) @binding(1) var<storage, read> b: array<T>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read_write> c: array<T>;
@group(0) @binding(4) var<uniform> p: Params;
// The epilogue's residual (shape of c; bound to a placeholder when has_res is 0).
@group(0) @binding(7) var<storage, read> res: array<T>;

override TRANS_B: bool = false;
// The epilogue's activation: ACT in shaders/activation_fns.wgsl (prepended).
const TM: u32 = 4u;
const TN: u32 = 4u;
const BK: u32 = 16u;
const WG: u32 = 16u;
const THREADS: u32 = 256u;

// k-major tiles, [BK][BM] and [BK][BN] (64 × 16 each).
var<workgroup> a_tile: array<f32, 1024>;
var<workgroup> b_tile: array<f32, 1024>;

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
    let part = k_part(wid.z);
    let a_base = p.a_offset + part.x * p.a_batch_stride;
    let b_base = p.b_offset + part.x * p.b_batch_stride;

    // Rows ty + 16·i (acc_i), columns tx + 16·j (component j): named vectors, not an array indexed
    // in a loop. With WebGPU's runtime checks (bounds checks, bounded loops: always on in browsers)
    // a private array indexed by a loop counter is not unrolled into registers and spills to memory:
    // 0.5 instead of 18 TFLOP/s at 1024³ on an H200 (`bench_kernels --checked`).
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let ty = lid.y;
    let tx = lid.x;

    for (var k0 = part.y; k0 < part.z; k0 += BK) {
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
            let ai = kk * bm + ty;
            let bi = kk * bn + tx;
            let a_reg = vec4<f32>(a_tile[ai], a_tile[ai + WG], a_tile[ai + 2u * WG], a_tile[ai + 3u * WG]);
            let b_reg = vec4<f32>(b_tile[bi], b_tile[bi + WG], b_tile[bi + 2u * WG], b_tile[bi + 3u * WG]);
            acc0 = fma(vec4<f32>(a_reg.x), b_reg, acc0);
            acc1 = fma(vec4<f32>(a_reg.y), b_reg, acc1);
            acc2 = fma(vec4<f32>(a_reg.z), b_reg, acc2);
            acc3 = fma(vec4<f32>(a_reg.w), b_reg, acc3);
        }
        workgroupBarrier();
    }

    let c_base = p.c_offset + wid.z * p.m * p.n;
    store_strided(c_base, row0 + ty, col0 + tx, acc0);
    store_strided(c_base, row0 + ty + WG, col0 + tx, acc1);
    store_strided(c_base, row0 + ty + 2u * WG, col0 + tx, acc2);
    store_strided(c_base, row0 + ty + 3u * WG, col0 + tx, acc3);
}

// Row `row` of C at columns col, col + 16, col + 32, col + 48 (v's components), bounds-checked.
fn store_strided(c_base: u32, row: u32, col: u32, v: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    if (col < p.n) { put_c(c_base + row * p.n + col, v.x, col); }
    if (col + WG < p.n) { put_c(c_base + row * p.n + col + WG, v.y, col + WG); }
    if (col + 2u * WG < p.n) { put_c(c_base + row * p.n + col + 2u * WG, v.z, col + 2u * WG); }
    if (col + 3u * WG < p.n) { put_c(c_base + row * p.n + col + 3u * WG, v.w, col + 3u * WG); }
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
            put_c(c_base + col, partial[t], col);
        }
    } else {
        let col = wid.x * THREADS + t;
        if (col < p.n) {
            var s = 0.0;
            for (var kk = 0u; kk < p.k; kk++) {
                s = fma(f32(a[a_base + kk]), f32(b[b_base + kk * p.n + col]), s);
            }
            put_c(c_base + col, s, col);
        }
    }
}

// ---- tiled128: 128×128 tiles, 8×8 outputs a thread as 16 vec4 accumulators, BK = 16 ----
// Thread (tx, ty) owns rows {4ty..4ty+3} ∪ {64+4ty..64+4ty+3} and the same pattern of columns, so
// that each k step reads 4 + 4 consecutive words of A and of B from workgroup memory for 64 FMAs.
// Accumulators are only ever indexed by constants (a dynamic index would send them to slow local
// memory), and the tiles are scalar arrays (each thread writes whole words; no vector-component
// stores shared between threads).

var<workgroup> a_s: array<f32, 2048>; // [16][128]: A tile, k-major
var<workgroup> b_s: array<f32, 2048>; // [16][128]: B tile, k-major

fn a4(i: u32) -> vec4<f32> {
    return vec4<f32>(a_s[i], a_s[i + 1u], a_s[i + 2u], a_s[i + 3u]);
}

fn b4(i: u32) -> vec4<f32> {
    return vec4<f32>(b_s[i], b_s[i + 1u], b_s[i + 2u], b_s[i + 3u]);
}

fn store4(c_base: u32, row: u32, col: u32, v: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    if (col < p.n) { put_c(c_base + row * p.n + col, v.x, col); }
    if (col + 1u < p.n) { put_c(c_base + row * p.n + col + 1u, v.y, col + 1u); }
    if (col + 2u < p.n) { put_c(c_base + row * p.n + col + 2u, v.z, col + 2u); }
    if (col + 3u < p.n) { put_c(c_base + row * p.n + col + 3u, v.w, col + 3u); }
}

@compute @workgroup_size(16, 16, 1)
fn tiled128(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let row0 = wid.y * 128u;
    let col0 = wid.x * 128u;
    let a_base = p.a_offset + wid.z * p.a_batch_stride;
    let b_base = p.b_offset + wid.z * p.b_batch_stride;
    let tx = lid.x;
    let ty = lid.y;

    // c{row half}{col half}_{i}: rows 4ty+i (+64 for row half 1), columns 4tx.. (+64 for col half 1).
    var c00_0 = vec4<f32>(0.0); var c00_1 = vec4<f32>(0.0); var c00_2 = vec4<f32>(0.0); var c00_3 = vec4<f32>(0.0);
    var c01_0 = vec4<f32>(0.0); var c01_1 = vec4<f32>(0.0); var c01_2 = vec4<f32>(0.0); var c01_3 = vec4<f32>(0.0);
    var c10_0 = vec4<f32>(0.0); var c10_1 = vec4<f32>(0.0); var c10_2 = vec4<f32>(0.0); var c10_3 = vec4<f32>(0.0);
    var c11_0 = vec4<f32>(0.0); var c11_1 = vec4<f32>(0.0); var c11_2 = vec4<f32>(0.0); var c11_3 = vec4<f32>(0.0);

    for (var k0 = 0u; k0 < p.k; k0 += 16u) {
        for (var s = 0u; s < 8u; s++) {
            let e = lidx + s * 256u;
            let r = e / 16u;
            let kk = e % 16u;
            a_s[kk * 128u + r] = load_a(a_base, row0 + r, k0 + kk);
            if (TRANS_B) {
                b_s[kk * 128u + r] = load_b(b_base, k0 + kk, col0 + r);
            } else {
                b_s[e] = load_b(b_base, k0 + e / 128u, col0 + e % 128u);
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            let a0 = a4(kk * 128u + 4u * ty);
            let a1 = a4(kk * 128u + 64u + 4u * ty);
            let b0 = b4(kk * 128u + 4u * tx);
            let b1 = b4(kk * 128u + 64u + 4u * tx);
            c00_0 = fma(vec4<f32>(a0.x), b0, c00_0);
            c00_1 = fma(vec4<f32>(a0.y), b0, c00_1);
            c00_2 = fma(vec4<f32>(a0.z), b0, c00_2);
            c00_3 = fma(vec4<f32>(a0.w), b0, c00_3);
            c01_0 = fma(vec4<f32>(a0.x), b1, c01_0);
            c01_1 = fma(vec4<f32>(a0.y), b1, c01_1);
            c01_2 = fma(vec4<f32>(a0.z), b1, c01_2);
            c01_3 = fma(vec4<f32>(a0.w), b1, c01_3);
            c10_0 = fma(vec4<f32>(a1.x), b0, c10_0);
            c10_1 = fma(vec4<f32>(a1.y), b0, c10_1);
            c10_2 = fma(vec4<f32>(a1.z), b0, c10_2);
            c10_3 = fma(vec4<f32>(a1.w), b0, c10_3);
            c11_0 = fma(vec4<f32>(a1.x), b1, c11_0);
            c11_1 = fma(vec4<f32>(a1.y), b1, c11_1);
            c11_2 = fma(vec4<f32>(a1.z), b1, c11_2);
            c11_3 = fma(vec4<f32>(a1.w), b1, c11_3);
        }
        workgroupBarrier();
    }

    let cb = p.c_offset + wid.z * p.m * p.n;
    let r0 = row0 + 4u * ty;
    let r1 = row0 + 64u + 4u * ty;
    let q0 = col0 + 4u * tx;
    let q1 = col0 + 64u + 4u * tx;
    store4(cb, r0, q0, c00_0); store4(cb, r0 + 1u, q0, c00_1); store4(cb, r0 + 2u, q0, c00_2); store4(cb, r0 + 3u, q0, c00_3);
    store4(cb, r0, q1, c01_0); store4(cb, r0 + 1u, q1, c01_1); store4(cb, r0 + 2u, q1, c01_2); store4(cb, r0 + 3u, q1, c01_3);
    store4(cb, r1, q0, c10_0); store4(cb, r1 + 1u, q0, c10_1); store4(cb, r1 + 2u, q0, c10_2); store4(cb, r1 + 3u, q0, c10_3);
    store4(cb, r1, q1, c11_0); store4(cb, r1 + 1u, q1, c11_1); store4(cb, r1 + 2u, q1, c11_2); store4(cb, r1 + 3u, q1, c11_3);
}

// ---- tiled16: 16×64 tiles for few rows (short texts, prompts), 1×4 outputs a thread ----
// With 64-row tiles a 3-token input would compute 61 rows of zeros; here at most 15 are wasted.

var<workgroup> a_tile16: array<f32, 256>; // [16 k][16 rows]

@compute @workgroup_size(16, 16, 1)
fn tiled16(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let row0 = wid.y * 16u;
    let col0 = wid.x * 64u;
    let part = k_part(wid.z);
    let a_base = p.a_offset + part.x * p.a_batch_stride;
    let b_base = p.b_offset + part.x * p.b_batch_stride;
    var acc = vec4<f32>(0.0);
    for (var k0 = part.y; k0 < part.z; k0 += 16u) {
        a_tile16[(lidx % 16u) * 16u + lidx / 16u] = load_a(a_base, row0 + lidx / 16u, k0 + lidx % 16u);
        for (var s = 0u; s < 4u; s++) {
            let e = lidx + s * 256u;
            if (TRANS_B) {
                b_tile[(e % 16u) * 64u + e / 16u] = load_b(b_base, k0 + e % 16u, col0 + e / 16u);
            } else {
                b_tile[e] = load_b(b_base, k0 + e / 64u, col0 + e % 64u);
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            let av = a_tile16[kk * 16u + lid.y];
            let bv = vec4<f32>(
                b_tile[kk * 64u + lid.x],
                b_tile[kk * 64u + lid.x + 16u],
                b_tile[kk * 64u + lid.x + 32u],
                b_tile[kk * 64u + lid.x + 48u],
            );
            acc = fma(vec4<f32>(av), bv, acc);
        }
        workgroupBarrier();
    }
    let row = row0 + lid.y;
    if (row < p.m) {
        let c_base = p.c_offset + wid.z * p.m * p.n + row * p.n;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + j * 16u;
            if (col < p.n) {
                put_c(c_base + col, acc[j], col);
            }
        }
    }
}

// ---- direct: for CPU adapters (SwiftShader, llvmpipe), no workgroup memory and no barriers ----
// A CPU emulates workgroup memory with ordinary memory and each barrier with a switch between the
// invocations of the workgroup, so staging tiles costs more there than it saves; its caches do the
// reuse. Each thread computes a 4×4 block of C straight from A and B. Out-of-range rows and columns
// read a clamped (valid) index and are not stored.
@compute @workgroup_size(8, 8, 1)
fn direct(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * 4u;
    let col0 = gid.x * 4u;
    if (row0 >= p.m || col0 >= p.n) {
        return;
    }
    let a_base = p.a_offset + gid.z * p.a_batch_stride;
    let b_base = p.b_offset + gid.z * p.b_batch_stride;
    var ra: array<u32, 4>;
    var cb: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        ra[i] = a_base + min(row0 + i, p.m - 1u) * p.k;
        let col = min(col0 + i, p.n - 1u);
        if (TRANS_B) {
            cb[i] = b_base + col * p.k;
        } else {
            cb[i] = b_base + col;
        }
    }
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    for (var kk = 0u; kk < p.k; kk++) {
        var bv: vec4<f32>;
        if (TRANS_B) {
            bv = vec4<f32>(f32(b[cb[0] + kk]), f32(b[cb[1] + kk]), f32(b[cb[2] + kk]), f32(b[cb[3] + kk]));
        } else {
            let o = kk * p.n;
            bv = vec4<f32>(f32(b[cb[0] + o]), f32(b[cb[1] + o]), f32(b[cb[2] + o]), f32(b[cb[3] + o]));
        }
        c0 = fma(vec4<f32>(f32(a[ra[0] + kk])), bv, c0);
        c1 = fma(vec4<f32>(f32(a[ra[1] + kk])), bv, c1);
        c2 = fma(vec4<f32>(f32(a[ra[2] + kk])), bv, c2);
        c3 = fma(vec4<f32>(f32(a[ra[3] + kk])), bv, c3);
    }
    let base = p.c_offset + gid.z * p.m * p.n;
    store4(base, row0, col0, c0);
    store4(base, row0 + 1u, col0, c1);
    store4(base, row0 + 2u, col0, c2);
    store4(base, row0 + 3u, col0, c3);
}

// ---- splitk_reduce: c = act(Σ parts + bias) + residual, one thread an output ----
// `a` holds the parts' products, [batch, k_split, M, N] from a_offset; p.k is the batch count here.
@compute @workgroup_size(256, 1, 1)
fn splitk_reduce(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let size = p.m * p.n;
    let i = gid.y * groups.x * 256u + gid.x;
    if (i >= p.k * size) {
        return;
    }
    let entry = i / size;
    let within = i % size;
    var s = 0.0;
    for (var part = 0u; part < p.k_split; part++) {
        s += f32(a[p.a_offset + (entry * p.k_split + part) * size + within]);
    }
    put_c(p.c_offset + i, s, within % p.n);
}
