// GGML's block formats, decoded: what shaders/quant.wgsl's kernels read (src/kernels/quant.rs puts this
// file in front of that one). Every function takes the format `t` (quant.wgsl's QTYPE or QTYPE_V, a
// pipeline constant, so each pipeline keeps one format's code) and the raw words its wrappers read.
// Matrices are kept in their file layout: the blocks of a row one after another, rows one after
// another. The buffer is read as u32 words; f16 scales are unpacked with
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
