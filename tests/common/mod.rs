//! Helpers shared by the integration tests, natively (`cargo test`, on the default adapter: lavapipe on
//! CI) and in the browser (`wasm-pack test --headless --chrome`, on SwiftShader). Each test body is an
//! `async fn`; [`gpu_test!`] turns it into a `#[test]` natively and a `#[wasm_bindgen_test]` on wasm32.
#![allow(dead_code)]

use webgpu_infer::{Gpu, Result};

/// Declares a test that runs the given async body on both targets.
#[macro_export]
macro_rules! gpu_test {
    ($name:ident, $body:path) => {
        #[cfg(not(target_arch = "wasm32"))]
        #[test]
        fn $name() {
            pollster::block_on($body()).expect(stringify!($name));
        }

        #[cfg(target_arch = "wasm32")]
        #[wasm_bindgen_test::wasm_bindgen_test]
        async fn $name() {
            $body().await.expect(stringify!($name));
        }
    };
}

/// Prints a line to the test output (the console in the browser, which wasm-bindgen-test relays).
pub fn log(line: &str) {
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::console_log!("{line}");
    #[cfg(not(target_arch = "wasm32"))]
    println!("{line}");
}

/// The device the tests run on. A test fails, never skips, when there is none: CI installs one.
pub async fn gpu() -> Result<Gpu> {
    Gpu::new().await
}

/// A small deterministic generator (xorshift64*), so inputs are the same on every run and target.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [-1, 1).
    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40; // 24 random bits
        bits as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next_f32()).collect()
    }
}

/// Asserts |got - want| <= atol + rtol·|want| element-wise, naming the first index that is off.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = atol + rtol * w.abs();
        assert!(
            (g - w).abs() <= tol && g.is_finite() == w.is_finite(),
            "{what}: element {i}: got {g}, want {w} (tolerance {tol})"
        );
    }
}

/// CPU reference: C[b] = A[b] · B[b] (or · B[b]ᵀ), in f64 to be an exact yardstick for f32 kernels.
/// `b_batched` false means one B for every batch entry.
#[allow(clippy::too_many_arguments)]
pub fn matmul_ref(
    a: &[f32],
    b: &[f32],
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    trans_b: bool,
    b_batched: bool,
) -> Vec<f32> {
    let mut c = vec![0f32; batch * m * n];
    for bi in 0..batch {
        let a0 = bi * m * k;
        let b0 = if b_batched { bi * k * n } else { 0 };
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0f64;
                for p in 0..k {
                    let bv = if trans_b {
                        b[b0 + j * k + p]
                    } else {
                        b[b0 + p * n + j]
                    };
                    acc += f64::from(a[a0 + i * k + p]) * f64::from(bv);
                }
                c[bi * m * n + i * n + j] = acc as f32;
            }
        }
    }
    c
}

/// CPU reference: softmax over rows of length `cols`, in f64.
pub fn softmax_ref(x: &[f32], cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(cols) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f64> = row.iter().map(|&v| f64::from(v - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        out.extend(exps.iter().map(|e| (e / sum) as f32));
    }
    out
}
