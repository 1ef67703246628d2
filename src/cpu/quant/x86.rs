//! The quantized products with AVX2 and FMA written out, for x86-64 CPUs that have them (checked at
//! run time: a native build targets plain x86-64, so LLVM alone stays with SSE2 and the portable
//! kernel's scalar decode). A group's 32 weights: the common 32-element formats unpacked in registers
//! (nibbles by a mask and a shift, IQ4_NL's table by `pshufb`), the others through
//! [`groups::decode`]; widened to two vectors of 16 i16 once, then multiplied into each row of x's
//! 16-bit integers by `vpmaddwd`; sums stay in vector lanes until a row ends, as in the WASM kernel.

use core::arch::x86_64::*;

use super::groups;
use super::{LO_SCALE, QuantizedX, Rows};
use crate::runtime::dtype::QuantType;

/// Whether this CPU runs [`rows_dot`] (std caches the answer).
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

/// A group in registers: elements 0..16 and 16..32 as i16 lanes, with each half's scale and offset.
struct GroupV {
    q: [__m256i; 2],
    d: [f32; 2],
    m: [f32; 2],
}

/// 16 bytes from `b[at..]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load16(b: &[u8], at: usize) -> __m128i {
    let s = &b[at..at + 16];
    // SAFETY: `s` holds 16 bytes; the load needs no alignment.
    unsafe { _mm_loadu_si128(s.as_ptr().cast()) }
}

/// Low nibbles (elements 0..16) and high nibbles (16..32) of 16 bytes, as 32 i8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn nibbles(qs: __m128i) -> __m256i {
    let mask = _mm_set1_epi8(15);
    let lo = _mm_and_si128(qs, mask);
    let hi = _mm_and_si128(_mm_srli_epi16::<4>(qs), mask);
    _mm256_set_m128i(hi, lo)
}

/// 32 i8 lanes as two vectors of 16 i16 (elements 0..16, 16..32).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn widen(q: __m256i) -> [__m256i; 2] {
    [
        _mm256_cvtepi8_epi16(_mm256_castsi256_si128(q)),
        _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(q)),
    ]
}

/// The f16 at `b[at..]` as f32, by F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16(b: &[u8], at: usize) -> f32 {
    let bits = i32::from(u16::from_le_bytes([b[at], b[at + 1]]));
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)))
}

/// A group whose halves share a scale and an offset.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn same(q: __m256i, d: f32, m: f32) -> GroupV {
    GroupV {
        q: widen(q),
        d: [d, d],
        m: [m, m],
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0(block: &[u8]) -> GroupV {
    let q = _mm256_sub_epi8(nibbles(load16(block, 2)), _mm256_set1_epi8(8));
    same(q, f16(block, 0), 0.0)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_1(block: &[u8]) -> GroupV {
    same(nibbles(load16(block, 4)), f16(block, 0), f16(block, 2))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q8_0(block: &[u8]) -> GroupV {
    let s = &block[2..34];
    // SAFETY: `s` holds 32 bytes; the load needs no alignment.
    let q = unsafe { _mm256_loadu_si256(s.as_ptr().cast()) };
    same(q, f16(block, 0), 0.0)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn iq4_nl(block: &[u8]) -> GroupV {
    // SAFETY: the table is 16 bytes; the load needs no alignment.
    let table = unsafe { _mm_loadu_si128(groups::IQ4_NL_VALUES.as_ptr().cast()) };
    let table = _mm256_broadcastsi128_si256(table);
    let q = _mm256_shuffle_epi8(table, nibbles(load16(block, 2)));
    same(q, f16(block, 0), 0.0)
}

/// The other formats (the K-quants, Q5_0/Q5_1) through the portable decoder.
#[target_feature(enable = "avx2,fma,f16c")]
fn other(qtype: QuantType, block: &[u8], g: usize) -> GroupV {
    let gr = groups::decode(qtype, block, g);
    // SAFETY: gr.q holds 32 bytes; the load needs no alignment.
    let q = unsafe { _mm256_loadu_si256(gr.q.as_ptr().cast()) };
    GroupV {
        q: widen(q),
        d: gr.d,
        m: gr.m,
    }
}

/// The sum of 8 f32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn sum8(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
}

/// [`super::rows_dot`] on AVX2, FMA and F16C.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C ([`available`]).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn rows_dot(a: Rows<'_>) {
    use QuantType as Q;
    match a.w.qtype() {
        Q::Q4_0 => by_tokens::<true, false>(a, |b, _| q4_0(b)),
        Q::Q4_1 => by_tokens::<true, true>(a, |b, _| q4_1(b)),
        Q::Q8_0 => by_tokens::<true, false>(a, |b, _| q8_0(b)),
        Q::IQ4_NL => by_tokens::<true, false>(a, |b, _| iq4_nl(b)),
        q @ (Q::Q5_0 | Q::Q5_1 | Q::Q4_K | Q::Q5_K) => {
            by_tokens::<true, true>(a, |b, g| other(q, b, g))
        }
        q => by_tokens::<false, true>(a, |b, g| other(q, b, g)),
    }
}

/// The task's rows of x in runs of up to 4, each run's count a constant (its sums in registers).
/// `SAME`: the format's two half-groups share a scale; `OFFSET`: the format has offsets.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn by_tokens<const SAME: bool, const OFFSET: bool>(
    a: Rows<'_>,
    decode: impl Fn(&[u8], usize) -> GroupV + Copy,
) {
    let mut t0 = a.tokens.start;
    while t0 < a.tokens.end {
        let nt = (a.tokens.end - t0).min(4);
        let run = Rows {
            tokens: t0..t0 + nt,
            ..a.clone()
        };
        match nt {
            1 => rows_dot_n::<1, SAME, OFFSET>(run, decode),
            2 => rows_dot_n::<2, SAME, OFFSET>(run, decode),
            3 => rows_dot_n::<3, SAME, OFFSET>(run, decode),
            _ => rows_dot_n::<4, SAME, OFFSET>(run, decode),
        }
        t0 += nt;
    }
}

/// i32 lanes of Σ q·x for 16 weights (i16 lanes) and x's 16 integers at `x`.
///
/// # Safety
/// `x` points at 16 readable i16s.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn madd16(q: __m256i, x: *const i16) -> __m256i {
    // SAFETY: the caller's; the load needs no alignment.
    _mm256_madd_epi16(q, unsafe { _mm256_loadu_si256(x.cast()) })
}

/// Rows of W against `NT` rows of x. Each row of x sums in two registers of its own, even groups
/// in one, odd in the other, so that consecutive groups' additions do not wait on each other.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn rows_dot_n<const NT: usize, const SAME: bool, const OFFSET: bool>(
    a: Rows<'_>,
    decode: impl Fn(&[u8], usize) -> GroupV,
) {
    let qtype = a.w.qtype();
    let (bytes, per) = (
        qtype.block_bytes() as usize,
        groups::groups_per_block(qtype),
    );
    let (k, groups_k, t0) = (a.k, a.k / 32, a.tokens.start);
    // The loads below read x's rows t0..t0 + NT: k integers, k / 32 scales, k / 16 sums each.
    assert!(
        a.x.q.len() >= (t0 + NT) * k
            && a.x.lo.len() >= (t0 + NT) * k
            && a.x.scale.len() >= (t0 + NT) * groups_k
            && a.x.half_sums.len() >= (t0 + NT) * 2 * groups_k
            && a.w.cols() == k
            && k % 32 == 0
    );
    let lo_scale = _mm256_set1_ps(LO_SCALE);
    for r in a.rows.clone() {
        let row = a.w.row_blocks(r, 1);
        let mut acc = [[_mm256_setzero_ps(); 2]; NT];
        let mut offsets = [[0f32; 2]; NT];
        for pair in (0..groups_k).step_by(2) {
            for u in 0..2 {
                let group = pair + u;
                if group == groups_k {
                    break;
                }
                let (b, g) = if per == 1 {
                    (group, 0)
                } else {
                    (group / per, group % per)
                };
                let gr = decode(&row[b * bytes..(b + 1) * bytes], g);
                for t in 0..NT {
                    let at = (t0 + t) * groups_k + group;
                    // SAFETY: group < k / 32, so every index is within the lengths asserted above.
                    unsafe {
                        group_dot::<SAME, OFFSET>(
                            &gr,
                            a.x,
                            at,
                            lo_scale,
                            &mut acc[t][u],
                            &mut offsets[t][u],
                        )
                    };
                }
            }
        }
        for t in 0..NT {
            let at = (t0 + t) * a.n + r;
            let sum = sum8(_mm256_add_ps(acc[t][0], acc[t][1])) + (offsets[t][0] + offsets[t][1]);
            // SAFETY: as in the portable kernel: row `r` of this task's tokens, in bounds.
            unsafe { *a.out.ptr().add(at) += sum };
        }
    }
}

/// One group of W dotted with x's group `at` into `acc` (vector) and `offset` (the format's offsets
/// times x's half sums).
///
/// # Safety
/// x holds group `at`: 32 integers from `32 · at` in `q` and `lo`, scale `at`, half sums `2 · at` and
/// `2 · at + 1`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_dot<const SAME: bool, const OFFSET: bool>(
    gr: &GroupV,
    x: &QuantizedX,
    at: usize,
    lo_scale: __m256,
    acc: &mut __m256,
    offset: &mut f32,
) {
    // SAFETY: the caller's.
    unsafe {
        let dx = *x.scale.get_unchecked(at);
        let (q, lo) = (x.q.as_ptr().add(at * 32), x.lo.as_ptr().add(at * 32));
        if SAME {
            let hi = _mm256_add_epi32(madd16(gr.q[0], q), madd16(gr.q[1], q.add(16)));
            let lo = _mm256_add_epi32(madd16(gr.q[0], lo), madd16(gr.q[1], lo.add(16)));
            let s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), lo_scale, _mm256_cvtepi32_ps(hi));
            *acc = _mm256_fmadd_ps(s, _mm256_set1_ps(gr.d[0] * dx), *acc);
        } else {
            for h in 0..2 {
                let hi = _mm256_cvtepi32_ps(madd16(gr.q[h], q.add(16 * h)));
                let lo = _mm256_cvtepi32_ps(madd16(gr.q[h], lo.add(16 * h)));
                let s = _mm256_fmadd_ps(lo, lo_scale, hi);
                *acc = _mm256_fmadd_ps(s, _mm256_set1_ps(gr.d[h] * dx), *acc);
            }
        }
        if OFFSET {
            let hs = x.half_sums.as_ptr().add(2 * at);
            *offset += if SAME {
                gr.m[0] * (*hs + *hs.add(1))
            } else {
                gr.m[0] * *hs + gr.m[1] * *hs.add(1)
            };
        }
    }
}
