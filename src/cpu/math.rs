//! Element-wise functions written without branches or libm calls, so that LLVM vectorizes the loops
//! over them (f32x4 in WASM SIMD128, SSE/AVX natively): `exp`, `erf`, and the activations.

use crate::kernels::activation::Activation;

/// 1.5·2²³: adding and subtracting it rounds an f32 of magnitude < 2²² to the nearest integer.
const ROUND: f32 = 12_582_912.0;

/// `e^x` within ~2 ulp for x in [-87, 88]; 0 below -87.5 (Cephes' `expf` polynomial after the reduction
/// x = n·ln2 + r, |r| ≤ ln2/2); 0 below -87.3, +inf past 88.7 (as the true function's f32 result).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let input = x;
    let x = x.clamp(-87.5, 88.5);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // ln 2 split into a part exact in f32 and the rest (Cody–Waite).
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let y = p * r * r + r + 1.0;
    // 2^n by building the exponent field; n + 127 stays within [1, 255] for x in [-87.5, 88.5]
    // except at the top, where 2^128 rounds to +inf as expf does.
    let bits = ((n as i32 + 127).clamp(0, 255) as u32) << 23;
    let y = y * f32::from_bits(bits);
    if input < -87.5 { 0.0 } else { y }
}

/// `erf(x)` by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7 exactly; ≤ 6e-7 evaluated in f32), odd
/// by construction.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_7) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    (1.0 - poly * exp(-a * a)).copysign(x)
}

/// `0.5·x·(1 + erf(x/√2))`, BERT's GELU.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// Applies `act` to every value in place.
pub fn activate(values: &mut [f32], act: Activation) {
    match act {
        Activation::Gelu => values.iter_mut().for_each(|v| *v = gelu(*v)),
        Activation::Silu => values.iter_mut().for_each(|v| *v *= sigmoid(*v)),
        Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Relu6 => values.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
        Activation::Sigmoid => values.iter_mut().for_each(|v| *v = sigmoid(*v)),
    }
}

/// Lanes of the reductions below: independent partial results that LLVM keeps in SIMD registers
/// (a float reduction in one accumulator is a dependency chain it may not reorder).
const LANES: usize = 8;

/// Σ values, in [`LANES`] partial sums.
#[inline]
pub fn sum(values: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Σ (v - mean)², in [`LANES`] partial sums.
#[inline]
pub fn sum_sq_dev(values: &[f32], mean: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|v| (v - mean) * (v - mean))
        .sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += (v - mean) * (v - mean);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The largest value (-inf for none; NaNs are skipped).
#[inline]
pub fn max(values: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a = if *v > *a { *v } else { *a };
        }
    }
    acc.iter().copied().fold(tail, f32::max)
}

/// Softmax of one row in place; entries at -inf get 0; a row of only -inf becomes all 0.
pub fn softmax(row: &mut [f32]) {
    let max = max(row);
    if max == f32::NEG_INFINITY {
        row.fill(0.0);
        return;
    }
    row.iter_mut().for_each(|v| *v = exp(*v - max));
    let inv = 1.0 / sum(row);
    row.iter_mut().for_each(|v| *v *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_against_libm() {
        let mut worst_exp = 0.0f64;
        let mut worst_erf = 0.0f64;
        for i in -20_000..=20_000 {
            let x = i as f32 * 0.00435; // [-87, 87]
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            worst_exp = worst_exp.max(rel);
            let x = i as f32 * 0.0005; // [-10, 10]
            worst_erf = worst_erf.max((erf(x) as f64 - libm::erf(x as f64)).abs());
        }
        assert!(worst_exp < 3e-7, "exp relative error {worst_exp}");
        assert!(worst_erf < 1e-6, "erf absolute error {worst_erf}");
        assert_eq!(exp(-200.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(erf(-3.0), -erf(3.0));
    }

    #[test]
    fn reductions_over_odd_lengths() {
        for n in [0, 1, 7, 8, 9, 63, 65, 257] {
            let v: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.5).collect();
            let want: f64 = v.iter().map(|&x| x as f64).sum();
            assert!((sum(&v) as f64 - want).abs() < 1e-4, "sum of {n}");
            let mean = (want / n.max(1) as f64) as f32;
            let dev: f64 = v.iter().map(|&x| ((x - mean) as f64).powi(2)).sum();
            assert!(
                (sum_sq_dev(&v, mean) as f64 - dev).abs() < 1e-3,
                "deviations of {n}"
            );
            let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(max(&v), m, "max of {n}");
        }
    }

    #[test]
    fn softmax_rows() {
        let mut row = [1.0, 2.0, f32::NEG_INFINITY, 3.0];
        softmax(&mut row);
        let e = [1f64.exp(), 2f64.exp(), 0.0, 3f64.exp()];
        let s: f64 = e.iter().sum();
        for (g, w) in row.iter().zip(e) {
            assert!((*g as f64 - w / s).abs() < 1e-7, "{row:?}");
        }
        let mut masked = [f32::NEG_INFINITY; 3];
        softmax(&mut masked);
        assert_eq!(masked, [0.0; 3]);
    }
}
