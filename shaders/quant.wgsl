// Kernels that read GGML block-quantized matrices in their file layout: the blocks of a row one after
// another, rows one after another. The buffer is read as u32 words; f16 scales are unpacked with
// unpack2x16float, which needs no shader-f16. Every kernel walks a row in 32-element groups ("blocks"
// below): a whole block of the 32-element formats, one eighth of a 256-element K-quant super-block.
//   Q4_0   (QTYPE 0):  18 bytes / 32: d, 16 bytes of nibbles; w = d·(q − 8)
//   Q4_1   (QTYPE 1):  20 bytes / 32: d, m, 16 bytes of nibbles; w = d·q + m
//   Q8_0   (QTYPE 2):  34 bytes / 32: d, 32 signed bytes; w = d·q
//   Q5_0   (QTYPE 3):  22 bytes / 32: d, qh (u32: bit j is element j's 5th bit), 16 bytes of nibbles;
//                      w = d·(q − 16)
//   Q5_1   (QTYPE 4):  24 bytes / 32: d, m, qh, 16 bytes of nibbles; w = d·q + m
//   Q4_K   (QTYPE 5): 144 bytes / 256: d, dmin, 12 bytes of 6-bit scales and mins (8 of each, packed),
//                      128 bytes of nibbles (32-byte chunks: low nibbles sub-block 2c, high 2c + 1);
//                      w = d·sc·q − dmin·mn
//   Q5_K   (QTYPE 6): 176 bytes / 256: as Q4_K, then qh (32 bytes: byte e bit j is element e of
//                      sub-block j's 5th bit) before the nibbles
//   Q6_K   (QTYPE 7): 210 bytes / 256: ql (128 bytes of nibbles), qh (64 bytes of 2-bit pairs), 16 signed
//                      8-bit scales (one per 16 elements), d; w = d·sc·(q − 32)
//   IQ4_NL (QTYPE 8):  18 bytes / 32: as Q4_0, w = d·kvalues[q] (a fixed non-linear table)
//   Q2_K   (QTYPE 9):  84 bytes / 256: 16 bytes of 4-bit scale and min pairs (one per 16 elements),
//                      64 bytes of 2-bit quants (32-byte chunks: bits 2j of byte l are element l of
//                      block 4·half + j), d, dmin; w = d·sc·q − dmin·mn
//   Q3_K   (QTYPE 10): 110 bytes / 256: hmask (32 bytes: byte l bit j is element l of block j's
//                      third bit), 2-bit quants as Q2_K, 12 bytes of 16 packed 6-bit signed scales
//                      (offset 32), d; w = d·sc·(q − 4 when the hmask bit is clear)
// In the 32-element nibble formats byte j holds element j in its low nibble and element j + 16 in its
// high one. Blocks of 18, 22, 34 and 210 bytes start at even, not always 4-aligned, byte offsets: words
// are read unaligned by combining two (never past the block's end rounded up to 4 bytes, which the
// buffer's size always is).

override QTYPE: u32 = 1u;
// gemv_qkv: the value weight's type (Q4_K_M files give v more bits than q and k in some layers).
override QTYPE_V: u32 = 1u;
override HAS_RESIDUAL: bool = false;
// gemv_qkv and gemv_swiglu (one row of x): RMSNorm folded in, x / sqrt(mean(x²) + eps) · norm_w,
// computed by every workgroup for itself (shaders/norm.wgsl's MODE 1, summed in another order).
override NORM: bool = false;
// gemv_qkv: RoPE frequencies divided by per-pair factors (Llama 3's scaling, `rope_freqs.weight`).
override HAS_FACTORS: bool = false;

struct Params {
    m: u32,              // rows of x (tokens)
    n: u32,              // rows of the weight (outputs)
    k: u32,              // columns of the weight (inputs), a multiple of the block size
    x_offset: u32,       // in elements
    out_offset: u32,     // in elements
    res_offset: u32,     // in elements
    ids_offset: u32,     // in elements (gather)
    n_kv: u32,           // gemv_qkv: rows of the key and of the value weight
    k_offset: u32,       // gemv_qkv: where the key row goes (a KV cache's next row), in elements
    v_offset: u32,       // gemv_qkv: where the value row goes
    pos: u32,            // gemv_qkv: the token's position, for RoPE
    theta: f32,          // gemv_qkv: RoPE base
    head_dim: u32,       // gemv_qkv: RoPE's head size (0: no RoPE)
    eps: f32,            // NORM: RMSNorm's epsilon
    norm_offset: u32,    // NORM: the norm weight's offset, in elements
    factor_offset: u32,  // gemv_qkv, HAS_FACTORS: rope_factors' first element
}

@group(0) @binding(0) var<storage, read> w: array<u32>;

fn is_k_quant(t: u32) -> bool {
    return (t >= 5u && t <= 7u) || t == 9u || t == 10u;
}

// Bytes of a block (32-element formats) or of a super-block (K-quants).
fn block_bytes(t: u32) -> u32 {
    switch t {
        case 0u, 8u: { return 18u; }
        case 1u: { return 20u; }
        case 3u: { return 22u; }
        case 4u: { return 24u; }
        case 5u: { return 144u; }
        case 6u: { return 176u; }
        case 7u: { return 210u; }
        case 9u: { return 84u; }
        case 10u: { return 110u; }
        default: { return 34u; }
    }
}

// The little-endian u32 at byte `b` (b even).
fn word_at(b: u32) -> u32 {
    let i = b / 4u;
    if ((b & 3u) == 0u) {
        return w[i];
    }
    return (w[i] >> 16u) | (w[i + 1u] << 16u);
}

fn f16_at(b: u32) -> f32 {
    let word = w[b / 4u];
    return unpack2x16float(select(word, word >> 16u, (b & 3u) != 0u)).x;
}

// A 32-element block as the kernels read it: its scales, offset, where its quants start, and what its
// format needs besides. Blocks are read as 8 quads of 4 elements through `quad`, not as an array: with
// WebGPU's runtime checks (always on in browsers) a private array indexed in a loop is not kept in
// registers and spills to memory.
struct BlockHead {
    d: f32,      // scale of elements 0..15
    d2: f32,     // scale of elements 16..31 (Q6_K's second scale; d otherwise)
    m: f32,      // offset of elements 0..15: w = d·q + m
    m2: f32,     // offset of elements 16..31 (Q2_K's second min; m otherwise)
    qs: u32,     // byte offset of the quant words
    qh: u32,     // Q5_0/Q5_1: the high bits; Q5_K/Q6_K: byte offset of the high-bit words
    shift: u32,  // K-quants: which nibble (0 or 4) holds this block's quants
    hshift: u32, // Q5_K/Q6_K: where in each high-bit byte this block's bits are
}

// Where block `blk`'s head is: the byte offsets of its first f16 (d) and of the words after it
// (scales, high bits) that `head_of` reads, and the block's index in its super-block.
struct HeadAt {
    base: u32,   // the (super-)block's first byte
    d: u32,      // byte offset of d (then m or dmin)
    s: u32,      // byte offset of the extra words
    sub: u32,    // K-quants: the 32-element block within the super-block (0..7)
}

fn head_at(t: u32, blk: u32) -> HeadAt {
    if (is_k_quant(t)) {
        let base = (blk / 8u) * block_bytes(t);
        let sub = blk % 8u;
        if (t == 7u) {
            // Q6_K: scales 2·sub and 2·sub + 1 are at 192 + 2·sub.
            return HeadAt(base, base + 208u, base + 192u + 2u * sub, sub);
        }
        if (t == 9u) {
            // Q2_K: scale/min bytes 2·sub and 2·sub + 1 are at 2·sub.
            return HeadAt(base, base + 80u, base + 2u * sub, sub);
        }
        if (t == 10u) {
            return HeadAt(base, base + 108u, base + 96u, sub);
        }
        return HeadAt(base, base, base + 4u, sub);
    }
    let base = blk * block_bytes(t);
    return HeadAt(base, base, base + select(2u, 4u, t == 4u), 0u);
}

// Extra head words `head_of` reads: Q5_0/Q5_1 and Q6_K one, Q4_K/Q5_K three.
fn head_words(t: u32) -> u32 {
    switch t {
        case 3u, 4u, 7u, 9u: { return 1u; }
        case 5u, 6u, 10u: { return 3u; }
        default: { return 0u; }
    }
}

// Whether the second f16 (m, dmin) is read.
fn has_min(t: u32) -> bool {
    return t == 1u || t == 4u || t == 5u || t == 6u || t == 9u;
}

// Byte `i` of the words s (K-quant scales).
fn byte_of(s: vec3<u32>, i: u32) -> u32 {
    return (s[i / 4u] >> (8u * (i % 4u))) & 255u;
}

// The head from the raw values at `a`: d, the second f16 (m or dmin), the extra words.
fn head_of(t: u32, a: HeadAt, d: f32, m: f32, s: vec3<u32>) -> BlockHead {
    switch t {
        case 0u: { return BlockHead(d, d, -8.0 * d, -8.0 * d, a.base + 2u, 0u, 0u, 0u); }
        case 1u: { return BlockHead(d, d, m, m, a.base + 4u, 0u, 0u, 0u); }
        case 3u: { return BlockHead(d, d, -16.0 * d, -16.0 * d, a.base + 6u, s.x, 0u, 0u); }
        case 4u: { return BlockHead(d, d, m, m, a.base + 8u, s.x, 0u, 0u); }
        case 5u, 6u: {
            // 6-bit scale and min of block j (GGML's get_scale_min_k4).
            let j = a.sub;
            var sc: u32;
            var mn: u32;
            if (j < 4u) {
                sc = byte_of(s, j) & 63u;
                mn = byte_of(s, j + 4u) & 63u;
            } else {
                sc = (byte_of(s, j + 4u) & 15u) | ((byte_of(s, j - 4u) >> 6u) << 4u);
                mn = (byte_of(s, j + 4u) >> 4u) | ((byte_of(s, j) >> 6u) << 4u);
            }
            let ds = d * f32(sc);
            let qs = a.base + select(16u, 48u, t == 6u) + 32u * (j / 2u);
            let mm = -m * f32(mn);
            return BlockHead(ds, ds, mm, mm, qs, a.base + 16u, 4u * (j & 1u), j);
        }
        case 7u: {
            // Block j = 4·half + part: ql chunk 64·half + 32·(part & 1), nibble part / 2; qh chunk
            // 32·half, bits 2·part.
            let half = a.sub / 4u;
            let part = a.sub % 4u;
            let s0 = f32(i32(s.x << 24u) >> 24u);
            let s1 = f32(i32(s.x << 16u) >> 24u);
            return BlockHead(d * s0, d * s1, 0.0, 0.0, a.base + 64u * half + 32u * (part & 1u),
                a.base + 128u + 32u * half, 4u * (part / 2u), 2u * part);
        }
        case 9u: {
            // Block sub = 4·half + j: quants at 16 + 32·half, bits 2j; scale/min bytes 2·sub, 2·sub + 1.
            let half = a.sub / 4u;
            let j = a.sub % 4u;
            let s0 = s.x & 255u;
            let s1 = (s.x >> 8u) & 255u;
            return BlockHead(d * f32(s0 & 15u), d * f32(s1 & 15u), -m * f32(s0 >> 4u), -m * f32(s1 >> 4u),
                a.base + 16u + 32u * half, 0u, 2u * j, 0u);
        }
        case 10u: {
            // Block sub = 4·half + j: quants at 32 + 32·half, bits 2j; hmask bit sub; scales 2·sub and
            // 2·sub + 1: low 4 bits in byte i % 8 (nibble i / 8), high 2 in byte 8 + i % 4 (bits 2·(i / 4)).
            let half = a.sub / 4u;
            let j = a.sub % 4u;
            let i0 = 2u * a.sub;
            let i1 = i0 + 1u;
            let sc0 = ((byte_of(s, i0 % 8u) >> (4u * (i0 / 8u))) & 15u) | (((byte_of(s, 8u + i0 % 4u) >> (2u * (i0 / 4u))) & 3u) << 4u);
            let sc1 = ((byte_of(s, i1 % 8u) >> (4u * (i1 / 8u))) & 15u) | (((byte_of(s, 8u + i1 % 4u) >> (2u * (i1 / 4u))) & 3u) << 4u);
            return BlockHead(d * (f32(sc0) - 32.0), d * (f32(sc1) - 32.0), 0.0, 0.0, a.base + 32u + 32u * half,
                a.base, 2u * j, a.sub);
        }
        default: { return BlockHead(d, d, 0.0, 0.0, a.base + 2u, 0u, 0u, 0u); } // Q8_0, IQ4_NL
    }
}

fn block_head(blk: u32) -> BlockHead {
    let a = head_at(QTYPE, blk);
    var m = 0.0;
    if (has_min(QTYPE)) {
        m = f16_at(a.d + 2u);
    }
    var s = vec3<u32>(0u);
    if (head_words(QTYPE) > 0u) {
        s.x = word_at(a.s);
    }
    if (head_words(QTYPE) > 1u) {
        s.y = word_at(a.s + 4u);
        s.z = word_at(a.s + 8u);
    }
    return head_of(QTYPE, a, f16_at(a.d), m, s);
}

// Byte offset of the quant word holding quad i (elements 4·i .. 4·i + 3).
fn quad_word(t: u32, h: BlockHead, i: u32) -> u32 {
    if (t == 2u || is_k_quant(t)) {
        return h.qs + 4u * i;
    }
    return h.qs + 4u * (i & 3u);
}

// Whether a quad needs a word of high bits (Q5_K, Q6_K, Q3_K), read at h.qh + 4·i.
fn has_high_words(t: u32) -> bool {
    return t == 6u || t == 7u || t == 10u;
}

// IQ4_NL's 16 values, 4 signed bytes a word.
const IQ4NL: vec4<u32> = vec4<u32>(0xBFAD9881u, 0xF6EADDCFu, 0x26190D01u, 0x71594535u);

fn iq4nl(q: vec4<u32>) -> vec4<f32> {
    let words = vec4<u32>(IQ4NL[q.x / 4u], IQ4NL[q.y / 4u], IQ4NL[q.z / 4u], IQ4NL[q.w / 4u]);
    let shifted = words << (vec4<u32>(24u) - 8u * (q % vec4<u32>(4u)));
    return vec4<f32>(bitcast<vec4<i32>>(shifted) >> vec4<u32>(24u));
}

// Elements 4·i .. 4·i + 3 of a block from its quant word `q` and high-bit word `hw`.
fn quad_of(t: u32, h: BlockHead, q: u32, hw: u32, i: u32) -> vec4<f32> {
    let bytes = vec4<u32>(0u, 8u, 16u, 24u);
    if (t == 2u) {
        return h.d * vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(q) << (vec4<u32>(24u) - bytes)) >> vec4<u32>(24u));
    }
    if (t == 9u || t == 10u) {
        let v = vec4<f32>((vec4<u32>(q) >> (bytes + h.shift)) & vec4<u32>(3u));
        let d = select(h.d, h.d2, i >= 4u);
        if (t == 9u) {
            return d * v + select(h.m, h.m2, i >= 4u);
        }
        let hb = vec4<f32>((vec4<u32>(hw) >> (bytes + h.hshift)) & vec4<u32>(1u));
        return d * (v + 4.0 * hb - 4.0);
    }
    if (is_k_quant(t)) {
        var v = (vec4<u32>(q) >> (bytes + h.shift)) & vec4<u32>(15u);
        if (t == 6u) {
            v |= ((vec4<u32>(hw) >> (bytes + h.hshift)) & vec4<u32>(1u)) << vec4<u32>(4u);
        }
        if (t == 7u) {
            v |= ((vec4<u32>(hw) >> (bytes + h.hshift)) & vec4<u32>(3u)) << vec4<u32>(4u);
            return select(h.d, h.d2, i >= 4u) * (vec4<f32>(v) - 32.0);
        }
        return h.d * vec4<f32>(v) + h.m;
    }
    // 32-element nibble formats: byte j holds element j (low nibble) and j + 16 (high nibble).
    let s = select(0u, 4u, i >= 4u);
    var v = (vec4<u32>(q) >> (bytes + s)) & vec4<u32>(15u);
    if (t == 8u) {
        return h.d * iq4nl(v);
    }
    if (t == 3u || t == 4u) {
        // Element 4·i + e's fifth bit is bit 4·i + e of qh.
        v |= ((vec4<u32>(h.qh >> (4u * i)) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u)) << vec4<u32>(4u);
    }
    return h.d * vec4<f32>(v) + h.m;
}

fn quad(h: BlockHead, i: u32) -> vec4<f32> {
    var hw = 0u;
    if (has_high_words(QTYPE)) {
        hw = word_at(h.qh + 4u * i);
    }
    return quad_of(QTYPE, h, word_at(quad_word(QTYPE, h, i)), hw, i);
}

// ---- GEMV: out[r, j] = Σ_k x[r, k] · W[j, k] (+ residual[r, j]) --------------------------------------
// 256 threads: 8 weight rows a workgroup, 32 threads a row, each thread whole blocks of its row.

const ROWS: u32 = 8u;
const LANES: u32 = 32u;

@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> residual: array<T>;

var<workgroup> partial: array<f32, 256>;

fn x4(r: u32, k: u32) -> vec4<f32> {
    let i = p.x_offset + r * p.k + k;
    return vec4<f32>(f32(x[i]), f32(x[i + 1u]), f32(x[i + 2u]), f32(x[i + 3u]));
}

fn row_dot(r: u32, row: u32, lane: u32) -> f32 {
    let blocks = p.k / 32u;
    var acc = 0.0;
    for (var b = lane; b < blocks; b += LANES) {
        let h = block_head(row * blocks + b);
        for (var i = 0u; i < 8u; i++) {
            acc += dot(quad(h, i), x4(r, b * 32u + 4u * i));
        }
    }
    return acc;
}

// Sums `partial` over each row's 32 lanes; the result is in the row's lane 0.
fn reduce_lanes(lid: u32) {
    for (var s = LANES / 2u; s > 0u; s /= 2u) {
        workgroupBarrier();
        if (lid % LANES < s) {
            partial[lid] += partial[lid + s];
        }
    }
    workgroupBarrier();
}

@group(0) @binding(10) var<storage, read> norm_w: array<T>;
var<private> inv_rms: f32;

// NORM: 1/sqrt(mean(x[0]²) + eps) into inv_rms, for every thread; leaves `partial` free again.
fn fold_norm(lid: u32) {
    var ss = 0.0;
    for (var i = lid; i < p.k; i += 256u) {
        let v = f32(x[p.x_offset + i]);
        ss += v * v;
    }
    partial[lid] = ss;
    for (var s = 128u; s > 0u; s /= 2u) {
        workgroupBarrier();
        if (lid < s) {
            partial[lid] += partial[lid + s];
        }
    }
    workgroupBarrier();
    inv_rms = inverseSqrt(partial[0] / f32(p.k) + p.eps);
    workgroupBarrier();
}

// Elements k .. k + 3 of row r of x, normalised when NORM (then r is 0).
fn xin(r: u32, k: u32) -> vec4<f32> {
    let v = x4(r, k);
    if (NORM) {
        let i = p.norm_offset + k;
        let w = vec4<f32>(f32(norm_w[i]), f32(norm_w[i + 1u]), f32(norm_w[i + 2u]), f32(norm_w[i + 3u]));
        return v * inv_rms * w;
    }
    return v;
}

@compute @workgroup_size(256, 1, 1)
fn gemv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x * ROWS + lid / LANES;
    let r = wg.y;
    var acc = 0.0;
    if (row < p.n) {
        acc = row_dot(r, row, lid % LANES);
    }
    partial[lid] = acc;
    reduce_lanes(lid);
    if (row < p.n && lid % LANES == 0u) {
        var y = partial[lid];
        if (HAS_RESIDUAL) {
            y += f32(residual[p.res_offset + r * p.n + row]);
        }
        out[p.out_offset + r * p.n + row] = T(y);
    }
}

// ---- SwiGLU GEMV: out[r, j] = silu(Wg[j]·x[r]) · (Wu[j]·x[r]), both weights of one type -------------

@group(0) @binding(5) var<storage, read> w_up: array<u32>;

var<workgroup> partial_up: array<f32, 256>;

fn up_f16_at(b: u32) -> f32 {
    let word = w_up[b / 4u];
    return unpack2x16float(select(word, word >> 16u, (b & 3u) != 0u)).x;
}

fn up_word_at(b: u32) -> u32 {
    let i = b / 4u;
    if ((b & 3u) == 0u) {
        return w_up[i];
    }
    return (w_up[i] >> 16u) | (w_up[i + 1u] << 16u);
}

// block_head and quad for w_up (WGSL cannot pass a storage array to a function): the same reads.
fn block_head_up(blk: u32) -> BlockHead {
    let a = head_at(QTYPE, blk);
    var m = 0.0;
    if (has_min(QTYPE)) {
        m = up_f16_at(a.d + 2u);
    }
    var s = vec3<u32>(0u);
    if (head_words(QTYPE) > 0u) {
        s.x = up_word_at(a.s);
    }
    if (head_words(QTYPE) > 1u) {
        s.y = up_word_at(a.s + 4u);
        s.z = up_word_at(a.s + 8u);
    }
    return head_of(QTYPE, a, up_f16_at(a.d), m, s);
}

fn quad_up(h: BlockHead, i: u32) -> vec4<f32> {
    var hw = 0u;
    if (has_high_words(QTYPE)) {
        hw = up_word_at(h.qh + 4u * i);
    }
    return quad_of(QTYPE, h, up_word_at(quad_word(QTYPE, h, i)), hw, i);
}

@compute @workgroup_size(256, 1, 1)
fn gemv_swiglu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    if (NORM) {
        fold_norm(lid);
    }
    let row = wg.x * ROWS + lid / LANES;
    let r = wg.y;
    let lane = lid % LANES;
    var gate = 0.0;
    var up = 0.0;
    if (row < p.n) {
        let blocks = p.k / 32u;
        for (var b = lane; b < blocks; b += LANES) {
            let g = block_head(row * blocks + b);
            let u = block_head_up(row * blocks + b);
            for (var i = 0u; i < 8u; i++) {
                let xv = xin(r, b * 32u + 4u * i);
                gate += dot(quad(g, i), xv);
                up += dot(quad_up(u, i), xv);
            }
        }
    }
    partial[lid] = gate;
    partial_up[lid] = up;
    for (var s = LANES / 2u; s > 0u; s /= 2u) {
        workgroupBarrier();
        if (lane < s) {
            partial[lid] += partial[lid + s];
            partial_up[lid] += partial_up[lid + s];
        }
    }
    workgroupBarrier();
    if (row < p.n && lane == 0u) {
        let g = partial[lid];
        out[p.out_offset + r * p.n + row] = T(g / (1.0 + exp(-g)) * partial_up[lid]);
    }
}

// ---- GEMV over 4 rows of x at once (short prompts): each weight quad is dequantized once and dotted
// with 4 rows of x, so the weights are read m/4 times rather than m. Rows past p.m read row p.m − 1 and
// are not written. Accumulators are named vectors (component j: row 4·wg.y + j), not arrays. -----------

var<workgroup> partial4: array<vec4<f32>, 256>;
var<workgroup> partial4_up: array<vec4<f32>, 256>;

// Rows 4·g .. 4·g + 3 of x, clamped to the last.
fn x_rows(g: u32) -> vec4<u32> {
    let last = p.m - 1u;
    let r = 4u * g;
    return vec4<u32>(min(r, last), min(r + 1u, last), min(r + 2u, last), min(r + 3u, last));
}

// quad q times the 4 rows' elements k .. k + 3.
fn dot4(q: vec4<f32>, rs: vec4<u32>, k: u32) -> vec4<f32> {
    return vec4<f32>(dot(q, x4(rs.x, k)), dot(q, x4(rs.y, k)), dot(q, x4(rs.z, k)), dot(q, x4(rs.w, k)));
}

fn reduce_lanes4(lid: u32, up: bool) {
    for (var s = LANES / 2u; s > 0u; s /= 2u) {
        workgroupBarrier();
        if (lid % LANES < s) {
            partial4[lid] += partial4[lid + s];
            if (up) {
                partial4_up[lid] += partial4_up[lid + s];
            }
        }
    }
    workgroupBarrier();
}

// Writes y[j] to row 4·g + j of the output, column `row`, for the rows that exist.
fn store4(g: u32, row: u32, y: vec4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        let r = 4u * g + j;
        if (r < p.m) {
            out[p.out_offset + r * p.n + row] = T(y[j]);
        }
    }
}

@compute @workgroup_size(256, 1, 1)
fn gemv4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x * ROWS + lid / LANES;
    let rs = x_rows(wg.y);
    var acc = vec4<f32>(0.0);
    if (row < p.n) {
        let blocks = p.k / 32u;
        for (var b = lid % LANES; b < blocks; b += LANES) {
            let h = block_head(row * blocks + b);
            for (var i = 0u; i < 8u; i++) {
                acc += dot4(quad(h, i), rs, b * 32u + 4u * i);
            }
        }
    }
    partial4[lid] = acc;
    reduce_lanes4(lid, false);
    if (row < p.n && lid % LANES == 0u) {
        var y = partial4[lid];
        if (HAS_RESIDUAL) {
            let i = p.res_offset + row;
            y += vec4<f32>(f32(residual[i + rs.x * p.n]), f32(residual[i + rs.y * p.n]),
                f32(residual[i + rs.z * p.n]), f32(residual[i + rs.w * p.n]));
        }
        store4(wg.y, row, y);
    }
}

@compute @workgroup_size(256, 1, 1)
fn gemv_swiglu4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x * ROWS + lid / LANES;
    let rs = x_rows(wg.y);
    var gate = vec4<f32>(0.0);
    var up = vec4<f32>(0.0);
    if (row < p.n) {
        let blocks = p.k / 32u;
        for (var b = lid % LANES; b < blocks; b += LANES) {
            let g = block_head(row * blocks + b);
            let u = block_head_up(row * blocks + b);
            for (var i = 0u; i < 8u; i++) {
                let k = b * 32u + 4u * i;
                gate += dot4(quad(g, i), rs, k);
                up += dot4(quad_up(u, i), rs, k);
            }
        }
    }
    partial4[lid] = gate;
    partial4_up[lid] = up;
    reduce_lanes4(lid, true);
    if (row < p.n && lid % LANES == 0u) {
        let g = partial4[lid];
        store4(wg.y, row, g / (vec4<f32>(1.0) + exp(-g)) * partial4_up[lid]);
    }
}

// ---- Decoding's attention input in one dispatch: q = Wq·x, k = Wk·x, v = Wv·x for one token (three
// weights of one type), RoPE applied to q and k in GGML's interleaved layout (pairs of adjacent rows,
// which sit in one workgroup), k and v written straight into the KV cache's next rows. The weights'
// rows are laid end to end, q's then k's then v's; each workgroup's 8 rows lie in one of them (row
// counts are multiples of 8). The angle is computed as shaders/rope.wgsl does. ----------------------

@group(0) @binding(7) var<storage, read> w_v: array<u32>;
@group(0) @binding(8) var<storage, read_write> out_k: array<T>;
@group(0) @binding(9) var<storage, read_write> out_v: array<T>;

fn v_f16_at(b: u32) -> f32 {
    let word = w_v[b / 4u];
    return unpack2x16float(select(word, word >> 16u, (b & 3u) != 0u)).x;
}

fn v_word_at(b: u32) -> u32 {
    let i = b / 4u;
    if ((b & 3u) == 0u) {
        return w_v[i];
    }
    return (w_v[i] >> 16u) | (w_v[i + 1u] << 16u);
}

fn block_head_v(blk: u32) -> BlockHead {
    let a = head_at(QTYPE_V, blk);
    var m = 0.0;
    if (has_min(QTYPE_V)) {
        m = v_f16_at(a.d + 2u);
    }
    var s = vec3<u32>(0u);
    if (head_words(QTYPE_V) > 0u) {
        s.x = v_word_at(a.s);
    }
    if (head_words(QTYPE_V) > 1u) {
        s.y = v_word_at(a.s + 4u);
        s.z = v_word_at(a.s + 8u);
    }
    return head_of(QTYPE_V, a, v_f16_at(a.d), m, s);
}

fn quad_v(h: BlockHead, i: u32) -> vec4<f32> {
    var hw = 0u;
    if (has_high_words(QTYPE_V)) {
        hw = v_word_at(h.qh + 4u * i);
    }
    return quad_of(QTYPE_V, h, v_word_at(quad_word(QTYPE_V, h, i)), hw, i);
}

const QKV_TWO_PI: f32 = 6.283185307179586;

@group(0) @binding(11) var<storage, read> rope_factors: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn gemv_qkv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    if (NORM) {
        fold_norm(lid);
    }
    let row_all = wg.x * ROWS + lid / LANES;
    let lane = lid % LANES;
    let blocks = p.k / 32u;
    // Which weight this workgroup reads (uniform across it): 0 q, 1 k, 2 v.
    let first = wg.x * ROWS;
    var which = 0u;
    var row = row_all;
    if (first >= p.n + p.n_kv) {
        which = 2u;
        row = row_all - p.n - p.n_kv;
    } else if (first >= p.n) {
        which = 1u;
        row = row_all - p.n;
    }
    var acc = 0.0;
    for (var b = lane; b < blocks; b += LANES) {
        let k0 = b * 32u;
        if (which == 0u) {
            let h = block_head(row * blocks + b);
            for (var i = 0u; i < 8u; i++) {
                acc += dot(quad(h, i), xin(0u, k0 + 4u * i));
            }
        } else if (which == 1u) {
            let h = block_head_up(row * blocks + b);
            for (var i = 0u; i < 8u; i++) {
                acc += dot(quad_up(h, i), xin(0u, k0 + 4u * i));
            }
        } else {
            let h = block_head_v(row * blocks + b);
            for (var i = 0u; i < 8u; i++) {
                acc += dot(quad_v(h, i), xin(0u, k0 + 4u * i));
            }
        }
    }
    partial[lid] = acc;
    reduce_lanes(lid);
    if (lane != 0u) {
        return;
    }
    var y = partial[lid];
    if (which < 2u && p.head_dim > 0u) {
        // The partner of row 2i is 2i + 1 and back: the row next to this one, 32 lanes away.
        let other = partial[lid ^ LANES];
        let i = (row % p.head_dim) / 2u;
        var inv_freq = 1.0 / pow(p.theta, f32(2u * i) / f32(p.head_dim));
        if (HAS_FACTORS) {
            inv_freq = inv_freq / rope_factors[p.factor_offset + i];
        }
        let angle = f32(p.pos) * inv_freq;
        let reduced = angle - QKV_TWO_PI * round(angle / QKV_TWO_PI);
        let c = cos(reduced);
        let sn = sin(reduced);
        if ((row & 1u) == 0u) {
            y = y * c - other * sn;
        } else {
            y = y * c + other * sn;
        }
    }
    switch which {
        case 0u: { out[p.out_offset + row] = T(y); }
        case 1u: { out_k[p.k_offset + row] = T(y); }
        default: { out_v[p.v_offset + row] = T(y); }
    }
}

// ---- Dequantize rows: out[i, :] = W[row_i, :], row_i = i, or ids[i] (embedding gather) ---------------
// One thread a block. `p.m` is the number of output rows; `p.n` the weight's rows (ids past it give 0).

@group(0) @binding(6) var<storage, read> ids: array<i32>;

fn write_block(i: u32, src_row: u32, b: u32) {
    let blocks = p.k / 32u;
    let base = p.out_offset + i * p.k + b * 32u;
    if (src_row >= p.n) {
        for (var j = 0u; j < 32u; j++) {
            out[base + j] = T(0.0);
        }
        return;
    }
    let h = block_head(src_row * blocks + b);
    for (var j = 0u; j < 8u; j++) {
        let v = quad(h, j);
        out[base + 4u * j] = T(v.x);
        out[base + 4u * j + 1u] = T(v.y);
        out[base + 4u * j + 2u] = T(v.z);
        out[base + 4u * j + 3u] = T(v.w);
    }
}

@compute @workgroup_size(256, 1, 1)
fn dequant(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = gid.x + gid.y * groups.x * 256u;
    let blocks = p.k / 32u;
    if (t >= p.m * blocks) {
        return;
    }
    write_block(t / blocks, t / blocks, t % blocks);
}

@compute @workgroup_size(256, 1, 1)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = gid.x + gid.y * groups.x * 256u;
    let blocks = p.k / 32u;
    if (t >= p.m * blocks) {
        return;
    }
    let id = ids[p.ids_offset + t / blocks];
    write_block(t / blocks, select(u32(id), p.n, id < 0), t % blocks);
}

// ---- One thread an output: for CPU adapters (llvmpipe, SwiftShader), where workgroup barriers are
// expensive and memory coalescing does not matter. Same results as gemv / gemv_swiglu. --------------

@compute @workgroup_size(64, 1, 1)
fn gemv_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x;
    let r = gid.y;
    if (row >= p.n) {
        return;
    }
    let blocks = p.k / 32u;
    var acc = 0.0;
    for (var b = 0u; b < blocks; b++) {
        let h = block_head(row * blocks + b);
        for (var i = 0u; i < 8u; i++) {
            acc += dot(quad(h, i), x4(r, b * 32u + 4u * i));
        }
    }
    if (HAS_RESIDUAL) {
        acc += f32(residual[p.res_offset + r * p.n + row]);
    }
    out[p.out_offset + r * p.n + row] = T(acc);
}

@compute @workgroup_size(64, 1, 1)
fn gemv_swiglu_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x;
    let r = gid.y;
    if (row >= p.n) {
        return;
    }
    let blocks = p.k / 32u;
    var gate = 0.0;
    var up = 0.0;
    for (var b = 0u; b < blocks; b++) {
        let g = block_head(row * blocks + b);
        let u = block_head_up(row * blocks + b);
        for (var i = 0u; i < 8u; i++) {
            let xv = x4(r, b * 32u + 4u * i);
            gate += dot(quad(g, i), xv);
            up += dot(quad_up(u, i), xv);
        }
    }
    out[p.out_offset + r * p.n + row] = T(gate / (1.0 + exp(-gate)) * up);
}
