//! A linear layer's product `c = x · wᵀ` (+ c) written for WASM SIMD128, where matrixmultiply's
//! packed kernel is slow: its 8×8 register tile needs 20 vector registers (x86 has 16) and splats
//! each element of A with a shuffle, so it runs well below what the engine's f32x4 can do.
//!
//! Here both operands are read as they are stored, along the inner dimension: `x` `[m, k]` and `w`
//! `[n, k]` (PyTorch's layout) are both contiguous in k, so a block of MR rows of x and NR rows of w
//! is MR + NR sequential streams, and each 4 wide step does MR·NR multiply-adds from MR + NR loads
//! with no shuffle and no packing; the lanes are summed once at the end. MR·NR accumulators plus
//! the MR x vectors and one w vector fit x86's 16 vector registers (5×2: 10 multiply-adds from 7
//! loads a step, 16 registers; 3×3, 4×2 and 2×5 measured within 10 % of it in Chromium 156, 4×3
//! and 3×4 slower). In Chromium 156 on this machine's 2 GHz EPYC core: ~21 GFLOP/s (~26 with relaxed
//! SIMD's fused multiply-add) against ~14 (~19) for matrixmultiply's kernel at MiniLM's shapes.
//!
//! The same code runs natively over `[f32; 4]` (the unit tests check it there); natively the
//! engine uses matrixmultiply's AVX kernels instead, which are faster than this.
//!
//! A crate of its own (webgpu-infer's `cpu::dot`) so that the dev profile builds it optimized
//! (Cargo.toml's `[profile.dev.package.webgpu-infer-dot]`): the browser tests are debug builds and
//! run whole models on the CPU backend through it, where the unoptimized kernel timed out.

/// Rows of x and of w a register block covers.
const MR: usize = 5;
const NR: usize = 2;
/// Blocks for the caches: rows of x (`MC`) and of w (`NC`) whose k-chunk (`KC` values) a pass
/// keeps in L2 while the register blocks sweep them.
const KC: usize = 512;
const MC: usize = 96;
const NC: usize = 96;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod v {
    use core::arch::wasm32::*;
    pub type V = v128;
    #[inline(always)]
    pub fn zero() -> V {
        f32x4_splat(0.0)
    }
    /// # Safety
    /// Four f32 readable at `p`.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> V {
        // SAFETY: the caller's contract (WASM loads need no alignment).
        unsafe { v128_load(p as *const v128) }
    }
    #[cfg(target_feature = "relaxed-simd")]
    #[inline(always)]
    pub fn madd(a: V, b: V, c: V) -> V {
        f32x4_relaxed_madd(a, b, c)
    }
    #[cfg(not(target_feature = "relaxed-simd"))]
    #[inline(always)]
    pub fn madd(a: V, b: V, c: V) -> V {
        f32x4_add(f32x4_mul(a, b), c)
    }
    #[inline(always)]
    pub fn sum(v: V) -> f32 {
        (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<2>(v))
            + (f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<3>(v))
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod v {
    pub type V = [f32; 4];
    #[inline(always)]
    pub fn zero() -> V {
        [0.0; 4]
    }
    /// # Safety
    /// Four f32 readable at `p`.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> V {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::read_unaligned(p as *const V) }
    }
    #[inline(always)]
    pub fn madd(a: V, b: V, c: V) -> V {
        std::array::from_fn(|l| a[l] * b[l] + c[l])
    }
    #[inline(always)]
    pub fn sum(v: V) -> f32 {
        (v[0] + v[2]) + (v[1] + v[3])
    }
}

use v::{V, load, madd, sum, zero};

/// Row strides of x, w and c.
#[derive(Clone, Copy)]
pub struct Ld {
    pub x: usize,
    pub w: usize,
    pub c: usize,
}

/// One register block: `c[i][j] (+)= Σ_{p<kc} x[i·ld.x + p]·w[j·ld.w + p]` for i < R, j < S.
///
/// # Safety
/// R rows of x and S rows of w, each `kc` values, are readable; c's R×S block is writable and not
/// touched by anyone else meanwhile.
// Indexing keeps the register tile's layout plain (acc[i][j] += x[i]·w[j]).
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn block<const R: usize, const S: usize>(
    kc: usize,
    ld: Ld,
    x: *const f32,
    w: *const f32,
    c: *mut f32,
    accumulate: bool,
) {
    let mut acc = [[zero(); S]; R];
    let k4 = kc & !3;
    let mut p = 0;
    // SAFETY (all pointer arithmetic below): the caller's contract; p + 3 < k4 ≤ kc.
    unsafe {
        while p < k4 {
            let xv: [V; R] = std::array::from_fn(|i| load(x.add(i * ld.x + p)));
            for j in 0..S {
                let wv = load(w.add(j * ld.w + p));
                for i in 0..R {
                    acc[i][j] = madd(xv[i], wv, acc[i][j]);
                }
            }
            p += 4;
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, a) in row.iter().enumerate() {
                let mut s = sum(*a);
                for q in k4..kc {
                    s += *x.add(i * ld.x + q) * *w.add(j * ld.w + q);
                }
                let o = c.add(i * ld.c + j);
                *o = if accumulate { *o + s } else { s };
            }
        }
    }
}

/// Dispatches an edge block of r ≤ MR rows and s ≤ NR columns to its instance of [`block`].
///
/// # Safety
/// As [`block`] with R = r, S = s.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn edge(
    r: usize,
    s: usize,
    kc: usize,
    ld: Ld,
    x: *const f32,
    w: *const f32,
    c: *mut f32,
    acc: bool,
) {
    // SAFETY: the caller's contract.
    unsafe {
        match (r, s) {
            (5, 2) => block::<5, 2>(kc, ld, x, w, c, acc),
            (5, 1) => block::<5, 1>(kc, ld, x, w, c, acc),
            (4, 2) => block::<4, 2>(kc, ld, x, w, c, acc),
            (4, 1) => block::<4, 1>(kc, ld, x, w, c, acc),
            (3, 2) => block::<3, 2>(kc, ld, x, w, c, acc),
            (3, 1) => block::<3, 1>(kc, ld, x, w, c, acc),
            (2, 2) => block::<2, 2>(kc, ld, x, w, c, acc),
            (2, 1) => block::<2, 1>(kc, ld, x, w, c, acc),
            (1, 2) => block::<1, 2>(kc, ld, x, w, c, acc),
            _ => block::<1, 1>(kc, ld, x, w, c, acc),
        }
    }
}

/// `c = x · wᵀ` (`accumulate`: `c += x · wᵀ`) for x `m × k` and w `n × k`, each row contiguous
/// (rows at strides `ld.x`, `ld.w`), and c `m × n` (rows at stride `ld.c`).
///
/// # Safety
/// Rows 0..m of x and 0..n of w, k values each, are readable; c's m×n block is writable, overlaps
/// neither, and no other thread touches it meanwhile.
pub unsafe fn xwt(
    (m, k, n): (usize, usize, usize),
    x: *const f32,
    w: *const f32,
    c: *mut f32,
    ld: Ld,
    accumulate: bool,
) {
    const _: () = assert!(MR == 5 && NR == 2, "edge() covers 5×2 blocks");
    for p0 in (0..k).step_by(KC) {
        let kc = KC.min(k - p0);
        let acc = accumulate || p0 > 0;
        for i0 in (0..m).step_by(MC) {
            let mc = MC.min(m - i0);
            for j0 in (0..n).step_by(NC) {
                let nc = NC.min(n - j0);
                for i in (i0..i0 + mc).step_by(MR) {
                    let r = MR.min(i0 + mc - i);
                    for j in (j0..j0 + nc).step_by(NR) {
                        let s = NR.min(j0 + nc - j);
                        // SAFETY: rows i..i+r of x, j..j+s of w and that block of c are in bounds
                        // (the caller's contract); columns p0..p0+kc < k.
                        unsafe {
                            let (xp, wp) = (x.add(i * ld.x + p0), w.add(j * ld.w + p0));
                            let cp = c.add(i * ld.c + j);
                            if r == MR && s == NR {
                                block::<MR, NR>(kc, ld, xp, wp, cp, acc);
                            } else {
                                edge(r, s, kc, ld, xp, wp, cp, acc);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xwt_matches_a_plain_loop_over_edge_shapes_and_k_chunks() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (2, 3, 5),
            (4, 7, 4),
            (7, 1029, 8),
            (100, 64, 97),
            (5, 384, 200),
        ] {
            // x's rows are k + 2 apart (a strided view, as attention's heads are).
            let ldx = k + 2;
            let x: Vec<f32> = (0..m * ldx)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.1)
                .collect();
            // c has a wider row (ldc = n + 3) and starts at 1: accumulate adds to it, the other
            // mode overwrites it, and the padding stays untouched.
            for accumulate in [false, true] {
                let ldc = n + 3;
                let mut c = vec![1.0f32; m * ldc];
                // SAFETY: the sizes above.
                unsafe {
                    xwt(
                        (m, k, n),
                        x.as_ptr(),
                        w.as_ptr(),
                        c.as_mut_ptr(),
                        Ld {
                            x: ldx,
                            w: k,
                            c: ldc,
                        },
                        accumulate,
                    )
                };
                for i in 0..m {
                    for j in 0..ldc {
                        let got = c[i * ldc + j];
                        if j >= n {
                            assert_eq!(got, 1.0, "padding written at {i},{j}");
                            continue;
                        }
                        let dot: f64 = (0..k)
                            .map(|p| x[i * ldx + p] as f64 * w[j * k + p] as f64)
                            .sum();
                        let want = dot as f32 + if accumulate { 1.0 } else { 0.0 };
                        // f32 sums of ≤ 1029 products of magnitude ≤ 0.36, in another order.
                        assert!(
                            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "{m}×{k}×{n} acc={accumulate} ({i},{j}): {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
