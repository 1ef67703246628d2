//! Kernels over GGML block-quantized weights (Q4_0, Q4_1, Q8_0) against a CPU dequantizer written
//! here from the GGML block layouts, over odd shapes: dequantize, gather, GEMV (with and without a
//! residual), fused SwiGLU GEMV.
mod common;

use common::{Rng, assert_close, gpu, upload};
use half::f16;
use webgpu_infer::kernels::quant;
use webgpu_infer::quant::{QTensor, QuantType};
use webgpu_infer::{DType, Gpu, Result, Tensor};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const TYPES: [QuantType; 3] = [QuantType::Q4_0, QuantType::Q4_1, QuantType::Q8_0];
/// (rows, columns): rows not a multiple of the GEMV's 8, columns of 1, 3, 18 (a model's 576) and 33
/// blocks (more blocks than the 32 threads of a row).
const SHAPES: [(usize, usize); 5] = [(1, 32), (7, 96), (9, 576), (65, 1056), (3, 64)];

/// Random blocks of `qtype` for a `[rows, cols]` matrix, and their values as the CPU reads them.
fn random_blocks(rng: &mut Rng, qtype: QuantType, rows: usize, cols: usize) -> (Vec<u8>, Vec<f32>) {
    let mut bytes = Vec::new();
    let mut values = Vec::new();
    let byte = |rng: &mut Rng| ((rng.next_f32() + 1.0) * 128.0) as u8;
    for _ in 0..rows * cols / 32 {
        let d = f16::from_f32(0.002 + 0.05 * rng.next_f32().abs());
        let m = f16::from_f32(0.3 * rng.next_f32());
        bytes.extend(d.to_le_bytes());
        let (d, m) = (d.to_f32(), m.to_f32());
        let mut block = [0f32; 32];
        match qtype {
            QuantType::Q8_0 => {
                for v in &mut block {
                    let q = byte(rng) as i8;
                    bytes.push(q as u8);
                    *v = d * f32::from(q);
                }
            }
            QuantType::Q4_0 | QuantType::Q4_1 => {
                if qtype == QuantType::Q4_1 {
                    bytes.extend(f16::from_f32(m).to_le_bytes());
                }
                for j in 0..16 {
                    let q = byte(rng);
                    bytes.push(q);
                    let (lo, hi) = (f32::from(q & 15), f32::from(q >> 4));
                    if qtype == QuantType::Q4_0 {
                        block[j] = d * (lo - 8.0);
                        block[j + 16] = d * (hi - 8.0);
                    } else {
                        block[j] = d * lo + m;
                        block[j + 16] = d * hi + m;
                    }
                }
            }
        }
        values.extend(block);
    }
    (bytes, values)
}

fn dtypes(gpu: &Gpu) -> Vec<DType> {
    if gpu.capabilities().shader_f16 {
        vec![DType::F32, DType::F16]
    } else {
        vec![DType::F32]
    }
}

async fn dequantize_and_gather_body() -> Result<()> {
    let gpu = gpu().await?;
    for qtype in TYPES {
        for (rows, cols) in SHAPES {
            let mut rng = Rng::new((rows * 1000 + cols) as u64);
            let (bytes, values) = random_blocks(&mut rng, qtype, rows, cols);
            let w = QTensor::from_blocks(&gpu, &bytes, &[rows, cols], qtype)?;
            let ids: Vec<i32> = (0..5).map(|i| ((i * 7 + 3) % rows) as i32).collect();
            let ids_t = Tensor::from_bytes(&gpu, bytemuck::cast_slice(&ids), &[5], DType::I32)?;
            let mut rec = gpu.recorder();
            let all = quant::dequantize(&mut rec, &w, DType::F32)?;
            let picked = quant::gather(&mut rec, &w, &ids_t, DType::F32)?;
            rec.submit();
            let what = format!("{qtype:?} [{rows}, {cols}]");
            // Dequantization is exact in f32: d·q + m rounds once, as on the CPU.
            assert_close(
                &format!("dequantize {what}"),
                &all.to_f32_vec().await?,
                &values,
                1e-7,
                1e-6,
            );
            let want: Vec<f32> = ids
                .iter()
                .flat_map(|&i| values[i as usize * cols..(i as usize + 1) * cols].to_vec())
                .collect();
            assert_eq!(picked.shape(), [5, cols]);
            assert_close(
                &format!("gather {what}"),
                &picked.to_f32_vec().await?,
                &want,
                1e-7,
                1e-6,
            );
        }
    }
    Ok(())
}
gpu_test!(dequantize_and_gather, dequantize_and_gather_body);

/// `x · Wᵀ` in f64.
fn gemv_ref(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
    let mut out = vec![0f64; m * n];
    for r in 0..m {
        for j in 0..n {
            out[r * n + j] = (0..k)
                .map(|p| f64::from(x[r * k + p]) * f64::from(w[j * k + p]))
                .sum();
        }
    }
    out
}

async fn gemv_matches_cpu_body() -> Result<()> {
    let gpu = gpu().await?;
    for dtype in dtypes(&gpu) {
        for qtype in TYPES {
            for (n, k) in SHAPES {
                for m in [1, 3] {
                    let mut rng = Rng::new((n * 31 + k + m) as u64);
                    let (bytes, values) = random_blocks(&mut rng, qtype, n, k);
                    let w = QTensor::from_blocks(&gpu, &bytes, &[n, k], qtype)?;
                    let mut x = rng.vec(m * k);
                    let mut res = rng.vec(m * n);
                    let tx = upload(&gpu, dtype, &mut x, &[m, k])?;
                    let tres = upload(&gpu, dtype, &mut res, &[m, n])?;
                    let mut rec = gpu.recorder();
                    let y = quant::gemv(&mut rec, &tx, &w, None)?;
                    let yr = quant::gemv(&mut rec, &tx, &w, Some(&tres))?;
                    rec.submit();
                    let want = gemv_ref(&x, &values, m, n, k);
                    let plain: Vec<f32> = want.iter().map(|&v| v as f32).collect();
                    let with_res: Vec<f32> = want
                        .iter()
                        .zip(&res)
                        .map(|(&v, &r)| (v + f64::from(r)) as f32)
                        .collect();
                    // f32: accumulation over k ≤ 1056 terms of size ≤ 0.5 (1e-4 absolute); f16: one
                    // rounding of an output of size ≤ ~10 (2^-11 relative, plus 1e-2 absolute).
                    let (atol, rtol) = if dtype == DType::F32 {
                        (1e-4, 1e-5)
                    } else {
                        (1e-2, 1e-3)
                    };
                    let what = format!("{dtype:?} {qtype:?} m {m} [{n}, {k}]");
                    assert_close(
                        &format!("gemv {what}"),
                        &y.to_f32_vec().await?,
                        &plain,
                        atol,
                        rtol,
                    );
                    assert_close(
                        &format!("gemv+residual {what}"),
                        &yr.to_f32_vec().await?,
                        &with_res,
                        atol,
                        rtol,
                    );
                }
            }
        }
    }
    Ok(())
}
gpu_test!(gemv_matches_cpu, gemv_matches_cpu_body);

async fn swiglu_gemv_matches_cpu_body() -> Result<()> {
    let gpu = gpu().await?;
    for qtype in TYPES {
        for (n, k) in SHAPES {
            let m = 2;
            let mut rng = Rng::new((n + 7 * k) as u64);
            let (gb, gv) = random_blocks(&mut rng, qtype, n, k);
            let (ub, uv) = random_blocks(&mut rng, qtype, n, k);
            let gate = QTensor::from_blocks(&gpu, &gb, &[n, k], qtype)?;
            let up = QTensor::from_blocks(&gpu, &ub, &[n, k], qtype)?;
            let mut x = rng.vec(m * k);
            let tx = upload(&gpu, DType::F32, &mut x, &[m, k])?;
            let mut rec = gpu.recorder();
            let y = quant::gemv_swiglu(&mut rec, &tx, &gate, &up)?;
            rec.submit();
            let g = gemv_ref(&x, &gv, m, n, k);
            let u = gemv_ref(&x, &uv, m, n, k);
            let want: Vec<f32> = g
                .iter()
                .zip(&u)
                .map(|(&g, &u)| (g / (1.0 + (-g).exp()) * u) as f32)
                .collect();
            let what = format!("swiglu {qtype:?} [{n}, {k}]");
            assert_close(&what, &y.to_f32_vec().await?, &want, 1e-4, 1e-4);
        }
    }
    Ok(())
}
gpu_test!(swiglu_gemv_matches_cpu, swiglu_gemv_matches_cpu_body);

async fn bad_shapes_are_refused_body() -> Result<()> {
    let gpu = gpu().await?;
    let mut rng = Rng::new(1);
    let (bytes, _) = random_blocks(&mut rng, QuantType::Q8_0, 4, 64);
    assert!(QTensor::from_blocks(&gpu, &bytes[1..], &[4, 64], QuantType::Q8_0).is_err());
    assert!(QTensor::from_blocks(&gpu, &bytes, &[8, 32 + 1], QuantType::Q8_0).is_err());
    let w = QTensor::from_blocks(&gpu, &bytes, &[4, 64], QuantType::Q8_0)?;
    let x = Tensor::from_f32(&gpu, &[0.0; 32], &[1, 32])?;
    let mut rec = gpu.recorder();
    let Err(err) = quant::gemv(&mut rec, &x, &w, None) else {
        panic!("a k mismatch was accepted");
    };
    assert!(err.to_string().contains("64"), "{err}");
    Ok(())
}
gpu_test!(bad_shapes_are_refused, bad_shapes_are_refused_body);

/// Both GEMV flavours (32 threads a row with a workgroup reduction, for GPUs; one thread a row, for CPU
/// adapters) on this adapter, whichever `Auto` would pick, against the CPU.
async fn both_gemv_variants_match_cpu_body() -> Result<()> {
    let gpu = gpu().await?;
    // m 1: decoding's kernel; 2 and 7: on GPUs the 4-rows-a-workgroup kernel, 7 with a partial group.
    for (qtype, m) in TYPES.iter().flat_map(|&q| [(q, 1), (q, 2), (q, 7)]) {
        for (n, k) in SHAPES {
            let mut rng = Rng::new((3 * n + k + 101 * m) as u64);
            let (wb, wv) = random_blocks(&mut rng, qtype, n, k);
            let (ub, uv) = random_blocks(&mut rng, qtype, n, k);
            let w = QTensor::from_blocks(&gpu, &wb, &[n, k], qtype)?;
            let u = QTensor::from_blocks(&gpu, &ub, &[n, k], qtype)?;
            let mut x = rng.vec(m * k);
            let mut res = rng.vec(m * n);
            let tx = upload(&gpu, DType::F32, &mut x, &[m, k])?;
            let tres = upload(&gpu, DType::F32, &mut res, &[m, n])?;
            let g = gemv_ref(&x, &wv, m, n, k);
            let up = gemv_ref(&x, &uv, m, n, k);
            let want: Vec<f32> = g
                .iter()
                .zip(&res)
                .map(|(&g, &r)| (g + f64::from(r)) as f32)
                .collect();
            let want_swiglu: Vec<f32> = g
                .iter()
                .zip(&up)
                .map(|(&g, &u)| (g / (1.0 + (-g).exp()) * u) as f32)
                .collect();
            for variant in [quant::Variant::Cooperative, quant::Variant::Rows] {
                let mut rec = gpu.recorder();
                let opts = quant::GemvOptions {
                    residual: Some(&tres),
                    variant,
                    ..Default::default()
                };
                let y = quant::gemv_with(&mut rec, &tx, &w, opts)?;
                let s = quant::gemv_swiglu_with(&mut rec, &tx, &w, &u, variant)?;
                rec.submit();
                let what = format!("{variant:?} {qtype:?} m {m} [{n}, {k}]");
                assert_close(
                    &format!("gemv {what}"),
                    &y.to_f32_vec().await?,
                    &want,
                    1e-4,
                    1e-4,
                );
                assert_close(
                    &format!("swiglu {what}"),
                    &s.to_f32_vec().await?,
                    &want_swiglu,
                    1e-4,
                    1e-4,
                );
            }
        }
    }
    Ok(())
}
gpu_test!(
    both_gemv_variants_match_cpu,
    both_gemv_variants_match_cpu_body
);
