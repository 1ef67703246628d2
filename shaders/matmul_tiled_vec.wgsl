// tiled128 (shaders/matmul.wgsl) with vec4 reads and the next K step's tiles fetched into registers
// while the current ones are multiplied: the same 128×128 tile, 8×8 outputs a thread, same
// accumulation order over K. Appended to shaders/matmul.wgsl. On an H100 (Vulkan), f32 4096³: 36.4
// TFLOP/s against tiled128's 26.7.
//
// The host picks it only where K, the operands' offsets and batch strides (and N without TRANS_B) are
// multiples of 4, so that every vec4 read is whole and aligned; rows past M and columns past N read
// as zeros, and a vec4 is either wholly inside K or wholly outside.

@group(0) @binding(5) var<storage, read> a_v: array<vec4<T>>;
@group(0) @binding(6) var<storage, read> b_v: array<vec4<T>>;

// [16 k][32 vec4]: the tiles k-major, a vec4 four consecutive rows (A) or columns (B).
var<workgroup> a_s4: array<vec4<f32>, 512>;
var<workgroup> b_s4: array<vec4<f32>, 512>;

// Four consecutive elements along K of row `row` of a [rows][K] operand, from column `col`.
fn fetch_k4(which: u32, base: u32, row: u32, rows: u32, col: u32) -> vec4<f32> {
    if (row < rows && col < p.k) {
        let i = (base + row * p.k + col) / 4u;
        if (which == 0u) {
            return vec4<f32>(a_v[i]);
        }
        return vec4<f32>(b_v[i]);
    }
    return vec4<f32>(0.0);
}

// Vec4 number `e` (0..511) of a 128-row × 16-k tile: (row, first k).
fn slot_k4(e: u32) -> vec2<u32> {
    return vec2<u32>(e / 4u, (e % 4u) * 4u);
}

fn fetch_a(base: u32, row0: u32, k0: u32, e: u32) -> vec4<f32> {
    let s = slot_k4(e);
    return fetch_k4(0u, base, row0 + s.x, p.m, k0 + s.y);
}

fn fetch_bv(base: u32, col0: u32, k0: u32, e: u32) -> vec4<f32> {
    if (TRANS_B) {
        let s = slot_k4(e);
        return fetch_k4(1u, base, col0 + s.x, p.n, k0 + s.y);
    }
    // [K][N]: vec4 `e` is row e / 32 of the tile, columns 4 (e % 32)...
    let kk = k0 + e / 32u;
    let col = col0 + (e % 32u) * 4u;
    if (kk < p.k && col < p.n) {
        return vec4<f32>(b_v[(base + kk * p.n + col) / 4u]);
    }
    return vec4<f32>(0.0);
}

// Stores a [row][k] vec4 transposed into a k-major tile.
fn put_k4(which: u32, e: u32, v: vec4<f32>) {
    let s = slot_k4(e);
    let at = s.y * 32u + s.x / 4u;
    let c = s.x % 4u;
    if (which == 0u) {
        a_s4[at][c] = v.x;
        a_s4[at + 32u][c] = v.y;
        a_s4[at + 64u][c] = v.z;
        a_s4[at + 96u][c] = v.w;
    } else {
        b_s4[at][c] = v.x;
        b_s4[at + 32u][c] = v.y;
        b_s4[at + 64u][c] = v.z;
        b_s4[at + 96u][c] = v.w;
    }
}

fn put_b(e: u32, v: vec4<f32>) {
    if (TRANS_B) {
        put_k4(1u, e, v);
    } else {
        b_s4[e] = v;
    }
}

// > 0: workgroups walk the tiles in bands of SWIZZLE row tiles, column by column within a band, so that
// workgroups running together share rows of A and columns of B in the L2 cache (set from
// `SWIZZLE_BAND` in src/kernels/matmul.rs; natively `WEBGPU_INFER_MATMUL_SWIZZLE` for A/B runs).
override SWIZZLE: u32 = 0u;

// The (column, row) tile that workgroup `wid` of a `groups` grid takes.
fn tile_of(wid: vec3<u32>, groups: vec3<u32>) -> vec2<u32> {
    if (SWIZZLE == 0u) {
        return wid.xy;
    }
    let linear = wid.y * groups.x + wid.x;
    let band = linear / (SWIZZLE * groups.x);
    let first = band * SWIZZLE;
    let rows = min(groups.y - first, SWIZZLE);
    let within = linear % (SWIZZLE * groups.x);
    return vec2<u32>(within / rows, first + within % rows);
}

@compute @workgroup_size(16, 16, 1)
fn tiled128v(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let tile = tile_of(wid, groups);
    let row0 = tile.y * 128u;
    let col0 = tile.x * 128u;
    let a_base = p.a_offset + wid.z * p.a_batch_stride;
    let b_base = p.b_offset + wid.z * p.b_batch_stride;
    let tx = lid.x;
    let ty = lid.y;

    // As in tiled128: c{row half}{col half}_{i}, rows 4ty+i (+64), columns 4tx.. (+64).
    var c00_0 = vec4<f32>(0.0); var c00_1 = vec4<f32>(0.0); var c00_2 = vec4<f32>(0.0); var c00_3 = vec4<f32>(0.0);
    var c01_0 = vec4<f32>(0.0); var c01_1 = vec4<f32>(0.0); var c01_2 = vec4<f32>(0.0); var c01_3 = vec4<f32>(0.0);
    var c10_0 = vec4<f32>(0.0); var c10_1 = vec4<f32>(0.0); var c10_2 = vec4<f32>(0.0); var c10_3 = vec4<f32>(0.0);
    var c11_0 = vec4<f32>(0.0); var c11_1 = vec4<f32>(0.0); var c11_2 = vec4<f32>(0.0); var c11_3 = vec4<f32>(0.0);

    var ra0 = fetch_a(a_base, row0, 0u, lidx);
    var ra1 = fetch_a(a_base, row0, 0u, lidx + 256u);
    var rb0 = fetch_bv(b_base, col0, 0u, lidx);
    var rb1 = fetch_bv(b_base, col0, 0u, lidx + 256u);
    for (var k0 = 0u; k0 < p.k; k0 += 16u) {
        put_k4(0u, lidx, ra0);
        put_k4(0u, lidx + 256u, ra1);
        put_b(lidx, rb0);
        put_b(lidx + 256u, rb1);
        workgroupBarrier();
        let kn = k0 + 16u;
        if (kn < p.k) {
            ra0 = fetch_a(a_base, row0, kn, lidx);
            ra1 = fetch_a(a_base, row0, kn, lidx + 256u);
            rb0 = fetch_bv(b_base, col0, kn, lidx);
            rb1 = fetch_bv(b_base, col0, kn, lidx + 256u);
        }
        for (var kk = 0u; kk < 16u; kk++) {
            let a0 = a_s4[kk * 32u + ty];
            let a1 = a_s4[kk * 32u + 16u + ty];
            let b0 = b_s4[kk * 32u + tx];
            let b1 = b_s4[kk * 32u + 16u + tx];
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
