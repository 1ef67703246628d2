//! The integer products' kernels, each run directly (natively the portable one is otherwise only
//! picked on CPUs without AVX2), against an f64 product of the weights' dequantized values
//! (`groups::dequantize`, itself checked against the `gguf` package in tests/quant.rs).

use super::*;

/// Deterministic bytes (a 64-bit LCG's high bits).
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

/// Where each block of `qtype` keeps its f16 scales and offsets (ggml's layouts).
fn f16_fields(qtype: QuantType) -> &'static [usize] {
    use QuantType as Q;
    match qtype {
        Q::Q4_0 | Q::Q5_0 | Q::Q8_0 | Q::IQ4_NL => &[0],
        Q::Q4_1 | Q::Q5_1 | Q::Q4_K | Q::Q5_K => &[0, 2],
        Q::Q2_K => &[80, 82],
        Q::Q3_K => &[108],
        Q::Q6_K => &[208],
    }
}

/// Random blocks of `qtype` for an `[n, k]` weight, with scales of ±(1..2)·2⁻⁸ (random f16 bits
/// would be infinite or huge) and their values.
fn weight(qtype: QuantType, n: usize, k: usize) -> (HostQTensor, Vec<f32>) {
    let len = qtype.bytes_for((n * k) as u64) as usize;
    let mut b = bytes(qtype as u64, len);
    let step = qtype.block_bytes() as usize;
    for (i, block) in b.chunks_exact_mut(step).enumerate() {
        for (j, &at) in f16_fields(qtype).iter().enumerate() {
            let v = (1.0 + ((i * 7 + j * 3) % 10) as f32 / 10.0) / 256.0;
            let v = if (i + j) % 3 == 0 { -v } else { v };
            block[at..at + 2].copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
        }
    }
    let w = HostQTensor::from_blocks(&b, &[n, k], qtype).unwrap();
    let values = w.dequantize().unwrap().to_vec().unwrap();
    assert!(values.iter().all(|v| v.is_finite()), "{qtype:?}");
    (w, values)
}

type Kernel = fn(Rows<'_>);

fn kernels() -> Vec<(&'static str, Kernel)> {
    #[allow(unused_mut)]
    let mut all: Vec<(&'static str, Kernel)> = vec![("portable", rows_dot_portable)];
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        // SAFETY: the CPU has what the kernel needs.
        all.push(("avx2", |a| unsafe { x86::rows_dot(a) }));
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    all.push(("simd128", simd::rows_dot));
    all
}

/// Every format, 1 to 7 rows of x (runs of 4 and their remainders), 512 columns (several blocks
/// of every format, an odd count of groups in none): each output within Σ|w|·2⁻¹⁶ (x as 16-bit
/// integers a group, off by at most half a step; the `lo` part makes it far closer in practice)
/// plus 1e-4 for f32 sums, of the f64 product; rows of W split over two tasks.
#[test]
fn integer_kernels_match_the_dequantized_product() {
    let (n, k) = (6, 512);
    for qtype in QuantType::ALL {
        let (w, values) = weight(qtype, n, k);
        for m in 1..=7 {
            let x: Vec<f32> = bytes(m as u64 + 99, m * k)
                .iter()
                .map(|&b| (f32::from(b) - 127.5) / 64.0)
                .collect();
            let xq = quantize_x(&x);
            for (name, kernel) in kernels() {
                let mut out = vec![0f32; m * n];
                for rows in [0..4, 4..n] {
                    kernel(Rows {
                        w: &w,
                        rows,
                        x: &xq,
                        tokens: 0..m,
                        k,
                        n,
                        out: SharedOut(out.as_mut_ptr()),
                    });
                }
                for t in 0..m {
                    for r in 0..n {
                        let wr = &values[r * k..(r + 1) * k];
                        let xr = &x[t * k..(t + 1) * k];
                        let want: f64 = wr
                            .iter()
                            .zip(xr)
                            .map(|(&w, &x)| f64::from(w) * f64::from(x))
                            .sum();
                        let bound = wr.iter().map(|w| w.abs()).sum::<f32>() / 65536.0 + 1e-4;
                        let got = out[t * n + r];
                        assert!(
                            (f64::from(got) - want).abs() <= f64::from(bound),
                            "{name} {qtype:?} m {m} token {t} row {r}: {got} vs {want} (bound {bound})"
                        );
                    }
                }
            }
        }
    }
}
