//! The quantized products with WASM SIMD128 written out (LLVM does not find these on its own): a
//! group's 32 weights as two `i8x16` vectors — the common 32-element formats loaded and unpacked in
//! registers (nibbles by a mask and a shift, IQ4_NL's table by a swizzle), the others through
//! [`groups::decode`] — widened to i16 and multiplied into x's 16-bit integers by
//! `i32x4.dot_i16x8_s`; sums stay in vector lanes until a row ends.

use core::arch::wasm32::*;

use super::groups::{self, f16_at};
use super::{LO_SCALE, Rows, TOKENS};
use crate::runtime::dtype::QuantType;

/// A group in registers: elements 0..16 and 16..32 as i8 lanes, with each half's scale and offset.
struct GroupV {
    q: [v128; 2],
    d: [f32; 2],
    m: [f32; 2],
}

/// 16 bytes from `b[at..]`.
#[inline(always)]
fn load16(b: &[u8], at: usize) -> v128 {
    let s = &b[at..at + 16];
    // SAFETY: `s` holds 16 bytes; WASM loads need no alignment.
    unsafe { v128_load(s.as_ptr().cast()) }
}

/// Low nibbles (elements 0..16) and high nibbles (16..32) of 16 bytes.
#[inline(always)]
fn nibbles(qs: v128) -> [v128; 2] {
    [v128_and(qs, u8x16_splat(15)), u8x16_shr(qs, 4)]
}

#[inline(always)]
fn decode(qtype: QuantType, block: &[u8], g: usize) -> GroupV {
    let same = |q, d, m| GroupV {
        q,
        d: [d, d],
        m: [m, m],
    };
    match qtype {
        QuantType::Q4_0 => {
            let [lo, hi] = nibbles(load16(block, 2));
            let eight = i8x16_splat(8);
            same(
                [i8x16_sub(lo, eight), i8x16_sub(hi, eight)],
                f16_at(block, 0),
                0.0,
            )
        }
        QuantType::Q4_1 => same(
            nibbles(load16(block, 4)),
            f16_at(block, 0),
            f16_at(block, 2),
        ),
        QuantType::Q8_0 => same([load16(block, 2), load16(block, 18)], f16_at(block, 0), 0.0),
        QuantType::IQ4_NL => {
            // SAFETY: the table is 16 bytes.
            let table = unsafe { v128_load(groups::IQ4_NL_VALUES.as_ptr().cast()) };
            let [lo, hi] = nibbles(load16(block, 2));
            same(
                [i8x16_swizzle(table, lo), i8x16_swizzle(table, hi)],
                f16_at(block, 0),
                0.0,
            )
        }
        _ => {
            let gr = groups::decode(qtype, block, g);
            // SAFETY: gr.q holds 32 bytes.
            let q = unsafe {
                [
                    v128_load(gr.q.as_ptr().cast()),
                    v128_load(gr.q[16..].as_ptr().cast()),
                ]
            };
            GroupV {
                q,
                d: gr.d,
                m: gr.m,
            }
        }
    }
}

/// i32 lanes of Σ q·x for 16 weights (i8 lanes) and 16 of x's i16s from `x[at..]`.
#[inline(always)]
fn dot16(q: v128, x: &[i16], at: usize) -> v128 {
    let x = &x[at..at + 16];
    // SAFETY: `x` holds 16 i16s (two v128); WASM loads need no alignment.
    let (x0, x1) = unsafe {
        let p = x.as_ptr().cast::<v128>();
        (v128_load(p), v128_load(p.add(1)))
    };
    i32x4_add(
        i32x4_dot_i16x8(i16x8_extend_low_i8x16(q), x0),
        i32x4_dot_i16x8(i16x8_extend_high_i8x16(q), x1),
    )
}

pub(super) fn rows_dot(a: Rows<'_>) {
    per_format!(a, rows_dot_with, decode)
}

#[inline(always)]
fn rows_dot_with(a: Rows<'_>, decode: impl Fn(&[u8], usize) -> GroupV) {
    let qtype = a.w.qtype();
    let (bytes, per) = (
        qtype.block_bytes() as usize,
        groups::groups_per_block(qtype),
    );
    let nt = a.tokens.len();
    let groups_k = a.k / 32;
    for r in a.rows.clone() {
        let mut acc = [f32x4_splat(0.0); TOKENS];
        let mut offsets = [0f32; TOKENS];
        for (b, block) in a.w.row_blocks(r, 1).chunks_exact(bytes).enumerate() {
            for g in 0..per {
                let gr = decode(block, g);
                let group = b * per + g;
                for t in 0..nt {
                    let at = (a.tokens.start + t) * groups_k + group;
                    let half = |h: usize| {
                        let i = at * 32 + 16 * h;
                        let lo = f32x4_convert_i32x4(dot16(gr.q[h], &a.x.lo, i));
                        let hi = f32x4_convert_i32x4(dot16(gr.q[h], &a.x.q, i));
                        f32x4_add(hi, f32x4_mul(lo, f32x4_splat(LO_SCALE)))
                    };
                    let (s0, s1) = (half(0), half(1));
                    let dx = a.x.scale[at];
                    let v = f32x4_add(
                        f32x4_mul(s0, f32x4_splat(gr.d[0] * dx)),
                        f32x4_mul(s1, f32x4_splat(gr.d[1] * dx)),
                    );
                    acc[t] = f32x4_add(acc[t], v);
                    let hs = &a.x.half_sums[2 * at..2 * at + 2];
                    offsets[t] += gr.m[0] * hs[0] + gr.m[1] * hs[1];
                }
            }
        }
        for t in 0..nt {
            let v = acc[t];
            let sum = (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v))
                + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v));
            let at = (a.tokens.start + t) * a.n + r;
            // SAFETY: as in the portable kernel: row `r` of this task's tokens, in bounds.
            unsafe { *a.out.ptr().add(at) += sum + offsets[t] };
        }
    }
}
