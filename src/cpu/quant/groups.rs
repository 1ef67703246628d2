//! GGML's block formats read 32 elements at a time, the way the GPU kernels read them
//! (`shaders/quant_blocks.wgsl`): a [`Group`] holds the 32 small integers and, for each half of 16,
//! a scale and an offset, so that `w[i] = d[i / 16] · q[i] + m[i / 16]` for every format. The
//! formats' layouts follow ggml's `dequantize_row_*` (ggml-quants.c); the unit tests check every one
//! against the `gguf` package's dequantizer (tests/goldens/quants, scripts/goldens_quants.py).

use crate::runtime::dtype::QuantType;

/// 32 consecutive weights: `w[i] = d[i / 16] · q[i] + m[i / 16]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Group {
    pub q: [i8; 32],
    pub d: [f32; 2],
    pub m: [f32; 2],
}

/// IQ4_NL's non-linear 4-bit table (ggml's `kvalues_iq4nl`).
pub(super) const IQ4_NL_VALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// The f16 at `b[at..]` as f32 (`half`'s conversion: in WASM it measured faster than a branch-free
/// bit-shift version, 67.7 against 78.8 ms for SmolLM2's 30 Q4_1 layers).
#[inline(always)]
pub(super) fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Low nibbles to q[0..16], high nibbles to q[16..32], each minus `bias`.
#[inline(always)]
fn nibbles(qs: &[u8], bias: i8, q: &mut [i8; 32]) {
    for j in 0..16 {
        q[j] = (qs[j] & 15) as i8 - bias;
        q[j + 16] = (qs[j] >> 4) as i8 - bias;
    }
}

/// Q4_K/Q5_K's 6-bit scale and min of sub-block `j` (ggml's `get_scale_min_k4`).
fn scale_min_k4(j: usize, s: &[u8]) -> (f32, f32) {
    let (sc, mn) = if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    };
    (f32::from(sc), f32::from(mn))
}

/// Q3_K's sixteen 6-bit signed scales (ggml's unpacking of its 12 scale bytes), minus 32.
fn q3k_scales(s: &[u8]) -> [i8; 16] {
    let word = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (a0, a1, tmp) = (word(0), word(1), word(2));
    const K1: u32 = 0x0303_0303;
    const K2: u32 = 0x0f0f_0f0f;
    let aux = [
        (a0 & K2) | ((tmp & K1) << 4),
        (a1 & K2) | (((tmp >> 2) & K1) << 4),
        ((a0 >> 4) & K2) | (((tmp >> 4) & K1) << 4),
        ((a1 >> 4) & K2) | (((tmp >> 6) & K1) << 4),
    ];
    let mut out = [0i8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = ((aux[i / 4] >> (8 * (i % 4))) & 0xFF) as i8 - 32;
    }
    out
}

/// Group `g` (0 for the 32-element formats, 0..8 in a K-quant super-block) of `block`.
#[inline(always)]
pub fn decode(qtype: QuantType, block: &[u8], g: usize) -> Group {
    let mut out = Group::default();
    let q = &mut out.q;
    let same = |d: f32, m: f32| ([d, d], [m, m]);
    let (d, m) = match qtype {
        QuantType::Q4_0 => {
            nibbles(&block[2..18], 8, q);
            same(f16_at(block, 0), 0.0)
        }
        QuantType::Q4_1 => {
            nibbles(&block[4..20], 0, q);
            same(f16_at(block, 0), f16_at(block, 2))
        }
        QuantType::Q5_0 | QuantType::Q5_1 => {
            let at = if qtype == QuantType::Q5_0 { 2 } else { 4 };
            let qh = u32::from_le_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]]);
            let bias = if qtype == QuantType::Q5_0 { 16 } else { 0 };
            let qs = &block[at + 4..at + 20];
            for j in 0..16 {
                let lo = (qs[j] & 15) | ((((qh >> j) & 1) as u8) << 4);
                let hi = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
                q[j] = lo as i8 - bias;
                q[j + 16] = hi as i8 - bias;
            }
            let m = if qtype == QuantType::Q5_1 {
                f16_at(block, 2)
            } else {
                0.0
            };
            same(f16_at(block, 0), m)
        }
        QuantType::Q8_0 => {
            for (o, &b) in q.iter_mut().zip(&block[2..34]) {
                *o = b as i8;
            }
            same(f16_at(block, 0), 0.0)
        }
        QuantType::IQ4_NL => {
            for j in 0..16 {
                q[j] = IQ4_NL_VALUES[usize::from(block[2 + j] & 15)];
                q[j + 16] = IQ4_NL_VALUES[usize::from(block[2 + j] >> 4)];
            }
            same(f16_at(block, 0), 0.0)
        }
        QuantType::Q2_K => {
            // scales[16], qs[64], d, dmin; group g: 128-chunk n, 2-bit plane j.
            let (n, j) = (g / 4, g % 4);
            let (d, dmin) = (f16_at(block, 80), f16_at(block, 82));
            let qs = &block[16 + 32 * n..16 + 32 * n + 32];
            for l in 0..32 {
                q[l] = ((qs[l] >> (2 * j)) & 3) as i8;
            }
            let sc = |h: usize| block[8 * n + 2 * j + h];
            let d2 = [0, 1].map(|h| d * f32::from(sc(h) & 15));
            let m2 = [0, 1].map(|h| -dmin * f32::from(sc(h) >> 4));
            (d2, m2)
        }
        QuantType::Q3_K => {
            // hmask[32], qs[64], scales[12], d.
            let (n, j) = (g / 4, g % 4);
            let bit = 1u8 << (4 * n + j);
            let (hm, qs) = (&block[..32], &block[32 + 32 * n..64 + 32 * n]);
            for l in 0..32 {
                let low = ((qs[l] >> (2 * j)) & 3) as i8;
                q[l] = low - if hm[l] & bit != 0 { 0 } else { 4 };
            }
            let scales = q3k_scales(&block[96..108]);
            let d = f16_at(block, 108);
            (
                [0, 1].map(|h| d * f32::from(scales[8 * n + 2 * j + h])),
                [0.0; 2],
            )
        }
        QuantType::Q4_K | QuantType::Q5_K => {
            // d, dmin, scales[12], (Q5_K: qh[32]), qs[128]; groups in pairs over 32 bytes of nibbles.
            let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
            let (sc, mn) = scale_min_k4(g, &block[4..16]);
            let base = if qtype == QuantType::Q4_K { 16 } else { 48 };
            let qs = &block[base + 32 * (g / 2)..base + 32 * (g / 2) + 32];
            let shift = 4 * (g % 2);
            for l in 0..32 {
                let mut v = (qs[l] >> shift) & 15;
                if qtype == QuantType::Q5_K {
                    v |= ((block[16 + l] >> g) & 1) << 4;
                }
                q[l] = v as i8;
            }
            same(d * sc, -dmin * mn)
        }
        QuantType::Q6_K => {
            // ql[128], qh[64], scales[16] (i8), d; group g: 128-chunk n, quarter r.
            let (n, r) = (g / 4, g % 4);
            let ql = &block[64 * n + 32 * (r % 2)..64 * n + 32 * (r % 2) + 32];
            let qh = &block[128 + 32 * n..160 + 32 * n];
            let shift = 4 * (r / 2);
            for l in 0..32 {
                let v = ((ql[l] >> shift) & 15) | (((qh[l] >> (2 * r)) & 3) << 4);
                q[l] = v as i8 - 32;
            }
            let d = f16_at(block, 208);
            let sc = |h: usize| f32::from(block[192 + 8 * n + 2 * r + h] as i8);
            ([d * sc(0), d * sc(1)], [0.0; 2])
        }
    };
    out.d = d;
    out.m = m;
    out
}

/// Groups of 32 in one block of `qtype`.
pub fn groups_per_block(qtype: QuantType) -> usize {
    qtype.block_elems() as usize / 32
}

/// The values of whole blocks (`out.len()` = the blocks' elements).
pub fn dequantize(qtype: QuantType, blocks: &[u8], out: &mut [f32]) {
    let (bytes, per) = (qtype.block_bytes() as usize, groups_per_block(qtype));
    for (b, block) in blocks.chunks_exact(bytes).enumerate() {
        for g in 0..per {
            let gr = decode(qtype, block, g);
            let o = &mut out[(b * per + g) * 32..(b * per + g + 1) * 32];
            for (i, v) in o.iter_mut().enumerate() {
                *v = gr.d[i / 16] * f32::from(gr.q[i]) + gr.m[i / 16];
            }
        }
    }
}
