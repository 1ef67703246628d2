//! Kernels over GGML block-quantized weights (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K ... Q6_K, IQ4_NL)
//! against goldens from the `gguf` package's dequantizer (scripts/goldens_quants.py: random blocks and
//! their values; matrices here are runs of those blocks) and GEMVs computed here in f64, over odd shapes: dequantize, gather, GEMV (with and without a
//! residual), fused SwiGLU GEMV, the 4-rows-a-workgroup GEMV, and the fused QKV + RoPE GEMV of decoding.
mod common;

use common::{Rng, assert_close, gpu, upload};
use webgpu_infer::kernels::quant::{self, MatmulKernel};
use webgpu_infer::kernels::sample;
use webgpu_infer::{DType, Gpu, Result, Tensor};
use webgpu_infer::{QTensor, QuantType};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Every format, each against the `gguf` package's dequantizer (scripts/goldens_quants.py).
const TYPES: [QuantType; 11] = QuantType::ALL;

/// (rows, columns): rows not a multiple of the GEMV's 8, columns of 1, 3, 18 (a model's 576) and 33
/// 32-element blocks (more blocks than the 32 threads of a row); for the K-quants (256-element
/// super-blocks) 1, 2, 3, 6 (an MLP's 1536) and 9 super-blocks (72 blocks a row).
fn shapes(qtype: QuantType) -> [(usize, usize); 5] {
    if qtype.block_elems() == 256 {
        [(1, 256), (7, 512), (9, 768), (11, 1536), (3, 2304)]
    } else {
        [(1, 32), (7, 96), (9, 576), (17, 1056), (3, 64)]
    }
}

/// The golden blocks of `qtype` and their values as `gguf.quants.dequantize` gives them.
fn golden(qtype: QuantType) -> (&'static [u8], Vec<f32>) {
    macro_rules! files {
        ($name:literal) => {
            (
                include_bytes!(concat!("goldens/quants/", $name, ".blocks")).as_slice(),
                include_bytes!(concat!("goldens/quants/", $name, ".f32")).as_slice(),
            )
        };
    }
    let (blocks, values) = match qtype {
        QuantType::Q4_0 => files!("q4_0"),
        QuantType::Q4_1 => files!("q4_1"),
        QuantType::Q5_0 => files!("q5_0"),
        QuantType::Q5_1 => files!("q5_1"),
        QuantType::Q8_0 => files!("q8_0"),
        QuantType::Q4_K => files!("q4_k"),
        QuantType::Q5_K => files!("q5_k"),
        QuantType::Q6_K => files!("q6_k"),
        QuantType::IQ4_NL => files!("iq4_nl"),
        QuantType::Q2_K => files!("q2_k"),
        QuantType::Q3_K => files!("q3_k"),
    };
    let values = values
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (blocks, values)
}

/// A `[rows, cols]` matrix of `qtype` cut from the goldens (a run of consecutive blocks; `pick` chooses
/// which, so two matrices of one test differ), and its values.
fn golden_blocks(qtype: QuantType, rows: usize, cols: usize, pick: usize) -> (Vec<u8>, Vec<f32>) {
    let (blocks, values) = golden(qtype);
    let (elems, bytes) = (qtype.block_elems() as usize, qtype.block_bytes() as usize);
    let (total, need) = (values.len() / elems, rows * cols / elems);
    assert!(
        need <= total,
        "{qtype:?} [{rows}, {cols}]: the goldens hold {total} blocks"
    );
    let first = (pick * 37) % (total - need + 1);
    (
        blocks[first * bytes..(first + need) * bytes].to_vec(),
        values[first * elems..(first + need) * elems].to_vec(),
    )
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
        for (rows, cols) in shapes(qtype) {
            let (bytes, values) = golden_blocks(qtype, rows, cols, rows);
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
            for (n, k) in shapes(qtype) {
                for m in [1, 3] {
                    let case = Product {
                        dtype,
                        qtype,
                        m,
                        n,
                        k,
                        seed: (n * 31 + k + m) as u64,
                    };
                    product_matches(&gpu, "gemv", case, quant::gemv).await?;
                }
            }
        }
    }
    Ok(())
}

/// One quantized product's case: `m` rows of x (`k` wide) by `n` weight rows of `qtype`.
#[derive(Clone, Copy)]
struct Product {
    dtype: DType,
    qtype: QuantType,
    m: usize,
    n: usize,
    k: usize,
    seed: u64,
}

/// `run(x, W, residual)` (a GPU quantized product) against the f64 reference, without and with a
/// residual. Bounds: f32, accumulation over k ≤ 2304 terms of size ≤ 1 (1e-4 absolute); f16, one
/// rounding of an output of size ≤ ~10 (2^-11 relative, plus 1e-2 absolute).
async fn product_matches(
    gpu: &webgpu_infer::Gpu,
    name: &str,
    c: Product,
    run: fn(&mut webgpu_infer::Recorder, &Tensor, &QTensor, Option<&Tensor>) -> Result<Tensor>,
) -> Result<()> {
    product_matches_within(gpu, name, c, run, false).await
}

/// [`product_matches`]; with `halves`, x and the weights were rounded to f16 before their products
/// (tensor cores): each product is then off by at most 2·2⁻¹¹ of |x|·|w|, so every output's bound
/// grows by 2⁻¹⁰·Σ|x|·|w| (computed from the same values).
async fn product_matches_within(
    gpu: &webgpu_infer::Gpu,
    name: &str,
    c: Product,
    run: fn(&mut webgpu_infer::Recorder, &Tensor, &QTensor, Option<&Tensor>) -> Result<Tensor>,
    halves: bool,
) -> Result<()> {
    let Product {
        dtype,
        qtype,
        m,
        n,
        k,
        seed,
    } = c;
    let mut rng = Rng::new(seed);
    let (bytes, values) = golden_blocks(qtype, n, k, m);
    let w = QTensor::from_blocks(gpu, &bytes, &[n, k], qtype)?;
    let mut x = rng.vec(m * k);
    let mut res = rng.vec(m * n);
    let tx = upload(gpu, dtype, &mut x, &[m, k])?;
    let tres = upload(gpu, dtype, &mut res, &[m, n])?;
    let mut rec = gpu.recorder();
    let y = run(&mut rec, &tx, &w, None)?;
    let yr = run(&mut rec, &tx, &w, Some(&tres))?;
    rec.submit();
    let want = gemv_ref(&x, &values, m, n, k);
    let plain: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    let with_res: Vec<f32> = want
        .iter()
        .zip(&res)
        .map(|(&v, &r)| (v + f64::from(r)) as f32)
        .collect();
    let (atol, rtol) = if dtype == DType::F32 {
        (1e-4, 1e-5)
    } else {
        (1e-2, 1e-3)
    };
    let what = format!("{dtype:?} {qtype:?} m {m} [{n}, {k}]");
    let got = y.to_f32_vec().await?;
    let got_res = yr.to_f32_vec().await?;
    if halves {
        let abs_x: Vec<f32> = x.iter().map(|v| v.abs()).collect();
        let abs_w: Vec<f32> = values.iter().map(|v| v.abs()).collect();
        let scale = gemv_ref(&abs_x, &abs_w, m, n, k);
        for (label, got, want) in [("", &got, &plain), ("+residual", &got_res, &with_res)] {
            for (i, (&g, &w)) in got.iter().zip(want.iter()).enumerate() {
                let tol = atol + rtol * w.abs() + (scale[i] / 1024.0) as f32;
                assert!(
                    (g - w).abs() <= tol,
                    "{name}{label} {what}: element {i}: got {g}, want {w} (tolerance {tol})"
                );
            }
        }
        return Ok(());
    }
    assert_close(&format!("{name} {what}"), &got, &plain, atol, rtol);
    assert_close(
        &format!("{name}+residual {what}"),
        &got_res,
        &with_res,
        atol,
        rtol,
    );
    Ok(())
}
gpu_test!(gemv_matches_cpu, gemv_matches_cpu_body);

/// The prompts' quantized matmul (`quant::matmul`: 64×64 tiles, blocks decoded into workgroup
/// memory) against the same f64 reference, every format and shape (and 100 outputs: two column
/// tiles), with 70 rows of x (a full tile and a partial one) and with a residual; same bounds as the
/// GEMV's.
async fn matmul_matches_cpu_body() -> Result<()> {
    let gpu = gpu().await?;
    for dtype in dtypes(&gpu) {
        for qtype in TYPES {
            // Plus 100 weight rows: two column tiles, the second partial.
            for (n, k) in shapes(qtype).into_iter().chain([(100, shapes(qtype)[0].1)]) {
                let m = 70;
                let case = Product {
                    dtype,
                    qtype,
                    m,
                    n,
                    k,
                    seed: (n * 17 + k + m) as u64,
                };
                if gpu.capabilities().cooperative_matrix {
                    // Each kernel by name (Auto takes one of them, with the looser bound).
                    let cores: ProductFn =
                        |r, x, w, res| quant::matmul_with(r, x, w, res, MatmulKernel::TensorCores);
                    product_matches_within(&gpu, "matmul (tensor cores)", case, cores, true)
                        .await?;
                    product_matches_within(&gpu, "matmul (auto)", case, quant::matmul, true)
                        .await?;
                    let tiled: ProductFn =
                        |r, x, w, res| quant::matmul_with(r, x, w, res, MatmulKernel::Tiled);
                    product_matches(&gpu, "matmul (tiled)", case, tiled).await?;
                } else {
                    product_matches(&gpu, "matmul", case, quant::matmul).await?;
                }
            }
        }
    }
    if !gpu.capabilities().cooperative_matrix {
        let (bytes, _) = golden_blocks(QuantType::Q4_0, 8, 32, 1);
        let w = QTensor::from_blocks(&gpu, &bytes, &[8, 32], QuantType::Q4_0)?;
        let x = Tensor::from_f32(&gpu, &[0.5; 64], &[2, 32])?;
        let mut rec = gpu.recorder();
        let got = quant::matmul_with(&mut rec, &x, &w, None, MatmulKernel::TensorCores);
        assert!(
            matches!(got, Err(webgpu_infer::Error::MissingFeature { .. })),
            "tensor cores where there are none gave {:?}",
            got.err()
        );
    }
    Ok(())
}

type ProductFn =
    fn(&mut webgpu_infer::Recorder, &Tensor, &QTensor, Option<&Tensor>) -> Result<Tensor>;
gpu_test!(matmul_matches_cpu, matmul_matches_cpu_body);

/// The CPU backend's quantized products (`cpu::quant::qlinear`: SIMD128 in the browser, AVX2
/// natively where the CPU has it, else portable; each kernel alone: `cpu::quant::tests`) against
/// the same f64 reference, every format and shape, 1 token (decoding), 3, and 11 (more than one
/// pass of its 8-token register block), with a residual. x is carried as 16-bit
/// integers a 32-element group, each off by at most half a step (the group's largest |x| / 32767,
/// here ≤ 1/32767): so an output may be off by Σ|w|·2⁻¹⁶ (worst case; typically √k times less),
/// plus the f32 GPU kernels' 1e-4 for the sums.
async fn cpu_qlinear_matches_f64_body() -> Result<()> {
    use webgpu_infer::cpu::{HostQTensor, HostTensor, quant::qlinear};
    for qtype in TYPES {
        // The CPU's decoding of every format: the `gguf` package's values, to f32 rounding (the
        // golden computes d·q + m in numpy's f32, in another order: ~1e-7 here).
        let (blocks, values) = golden(qtype);
        let n = values.len() / 256;
        let all = HostQTensor::from_blocks(blocks, &[n, 256], qtype)?.dequantize()?;
        assert_close(
            &format!("cpu dequantize {qtype:?}"),
            &all.to_vec()?,
            &values,
            1e-6,
            1e-6,
        );
        // Embedding rows (gather), and a bad id refused by name.
        let rows = HostQTensor::from_blocks(blocks, &[n, 256], qtype)?.gather(&[3, 0, 3])?;
        let want: Vec<f32> = [3usize, 0, 3]
            .iter()
            .flat_map(|&r| values[r * 256..(r + 1) * 256].to_vec())
            .collect();
        assert_close(
            &format!("cpu gather {qtype:?}"),
            &rows.to_vec()?,
            &want,
            1e-6,
            1e-6,
        );
        let table = HostQTensor::from_blocks(blocks, &[n, 256], qtype)?;
        let err = table.gather(&[n as i32]).unwrap_err().to_string();
        assert!(err.contains(&format!("token id {n}")), "{err}");
        // Misshapen: rows not whole blocks, or more bytes asked than given.
        let block = qtype.block_bytes() as usize;
        let elems = qtype.block_elems() as usize;
        assert!(HostQTensor::from_blocks(&blocks[..block], &[1, elems + 16], qtype).is_err());
        assert!(HostQTensor::from_blocks(&blocks[..block], &[2, elems], qtype).is_err());
        for (n, k) in shapes(qtype) {
            for m in [1, 3, 11] {
                let mut rng = Rng::new((n * 17 + k + m) as u64);
                let (bytes, values) = golden_blocks(qtype, n, k, m);
                let w = HostQTensor::from_blocks(&bytes, &[n, k], qtype)?;
                let (x, res) = (rng.vec(m * k), rng.vec(m * n));
                let y = qlinear(
                    &HostTensor::from_f32(x.clone(), &[m, k])?,
                    &w,
                    Some(&HostTensor::from_f32(res.clone(), &[m, n])?),
                )?;
                assert_eq!(y.shape(), [m, n]);
                let want = gemv_ref(&x, &values, m, n, k);
                let got = y.to_vec()?;
                for (i, (&g, &v)) in got.iter().zip(&want).enumerate() {
                    let row = &values[(i % n) * k..(i % n + 1) * k];
                    let bound = row.iter().map(|w| w.abs()).sum::<f32>() / 65536.0 + 1e-4;
                    let want = v + f64::from(res[i]);
                    assert!(
                        (f64::from(g) - want).abs() <= f64::from(bound),
                        "cpu qlinear {qtype:?} m {m} [{n}, {k}] element {i}: {g} vs {want} \
                         (bound {bound})"
                    );
                }
            }
        }
    }
    Ok(())
}
gpu_test!(cpu_qlinear_matches_f64, cpu_qlinear_matches_f64_body);

/// Several weights of one input in one parallel region (`qlinears`: q, k and v; gate and up) give
/// exactly what one `qlinear` each gives, for a decoding step and a prompt.
async fn cpu_qlinears_match_qlinear_body() -> Result<()> {
    use webgpu_infer::cpu::{HostQTensor, HostTensor, quant};
    let qtype = QuantType::Q4_1;
    let (k, rows) = (96, [7, 13, 5]);
    let ws: Vec<HostQTensor> = rows
        .iter()
        .enumerate()
        .map(|(i, &n)| HostQTensor::from_blocks(&golden_blocks(qtype, n, k, i).0, &[n, k], qtype))
        .collect::<Result<_>>()?;
    let refs: Vec<&HostQTensor> = ws.iter().collect();
    for m in [1, 5] {
        let x = HostTensor::from_f32(Rng::new(m as u64).vec(m * k), &[m, k])?;
        let together = quant::qlinears(&x, &refs)?;
        for (w, t) in ws.iter().zip(&together) {
            assert_eq!(t.to_vec()?, quant::qlinear(&x, w, None)?.to_vec()?, "m {m}");
        }
    }
    Ok(())
}
gpu_test!(cpu_qlinears_match_qlinear, cpu_qlinears_match_qlinear_body);

async fn swiglu_gemv_matches_cpu_body() -> Result<()> {
    let gpu = gpu().await?;
    for qtype in TYPES {
        for (n, k) in shapes(qtype) {
            let m = 2;
            let mut rng = Rng::new((n + 7 * k) as u64);
            let (gb, gv) = golden_blocks(qtype, n, k, 1);
            let (ub, uv) = golden_blocks(qtype, n, k, 2);
            let gate = QTensor::from_blocks(&gpu, &gb, &[n, k], qtype)?;
            let up = QTensor::from_blocks(&gpu, &ub, &[n, k], qtype)?;
            let mut x = rng.vec(m * k);
            let tx = upload(&gpu, DType::F32, &mut x, &[m, k])?;
            let mut rec = gpu.recorder();
            let y = quant::gemv_swiglu(&mut rec, &tx, &gate, &up)?;
            let yg = quant::gemv_geglu(&mut rec, &tx, &gate, &up)?;
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
            let want: Vec<f32> = g
                .iter()
                .zip(&u)
                .map(|(&g, &u)| (gelu_tanh_ref(g) * u) as f32)
                .collect();
            let what = format!("geglu {qtype:?} [{n}, {k}]");
            assert_close(&what, &yg.to_f32_vec().await?, &want, 1e-4, 1e-4);
        }
    }
    Ok(())
}
gpu_test!(swiglu_gemv_matches_cpu, swiglu_gemv_matches_cpu_body);

/// transformers' `gelu_pytorch_tanh`, in f64.
fn gelu_tanh_ref(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
}

async fn bad_shapes_are_refused_body() -> Result<()> {
    let gpu = gpu().await?;
    let (bytes, _) = golden_blocks(QuantType::Q8_0, 4, 64, 0);
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
    // m 1: decoding's kernel; 2, 7 and 70: on GPUs the 4-rows-a-workgroup kernel, 7 and 70 with a
    // partial group, 70 with many (prompts of up to 255 tokens run it).
    for (qtype, m) in TYPES
        .iter()
        .flat_map(|&q| [(q, 1), (q, 2), (q, 7), (q, 70)])
    {
        for (n, k) in shapes(qtype) {
            let mut rng = Rng::new((3 * n + k + 101 * m) as u64);
            let (wb, wv) = golden_blocks(qtype, n, k, 3);
            let (ub, uv) = golden_blocks(qtype, n, k, 4);
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
            let want_geglu: Vec<f32> = g
                .iter()
                .zip(&up)
                .map(|(&g, &u)| (gelu_tanh_ref(g) * u) as f32)
                .collect();
            for variant in [quant::Kernel::Cooperative, quant::Kernel::Rows] {
                let mut rec = gpu.recorder();
                let opts = quant::GemvOptions {
                    residual: Some(&tres),
                    variant,
                    ..Default::default()
                };
                let y = quant::gemv_with(&mut rec, &tx, &w, opts)?;
                let s = quant::gemv_swiglu_with(&mut rec, &tx, &w, &u, variant)?;
                let ge = quant::gemv_geglu_with(&mut rec, &tx, &w, &u, variant)?;
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
                assert_close(
                    &format!("geglu {what}"),
                    &ge.to_f32_vec().await?,
                    &want_geglu,
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

/// RMSNorm on the CPU (f64 sums): x / sqrt(mean(x²) + eps) · w, rounded to f32.
fn rms_norm_ref(x: &[f32], w: &[f32], eps: f64) -> Vec<f32> {
    let ms = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64;
    let inv = 1.0 / (ms + eps).sqrt();
    x.iter()
        .zip(w)
        .map(|(&v, &w)| (f64::from(v) * inv * f64::from(w)) as f32)
        .collect()
}

/// GGML's interleaved RoPE on the CPU (pairs 2i, 2i + 1 of each head), as transformers computes the
/// angle: inv_freq in f32, then position · inv_freq in f32, sin and cos in f64.
fn rope_interleaved_ref(
    v: &mut [f64],
    head_dim: usize,
    pos: usize,
    theta: f32,
    factors: Option<&[f32]>,
) {
    for head in v.chunks_mut(head_dim) {
        for i in 0..head_dim / 2 {
            let inv_freq =
                1.0 / theta.powf((2 * i) as f32 / head_dim as f32) / factors.map_or(1.0, |f| f[i]);
            let angle = f64::from(pos as f32 * inv_freq);
            let (s, c) = angle.sin_cos();
            let (x0, x1) = (head[2 * i], head[2 * i + 1]);
            head[2 * i] = x0 * c - x1 * s;
            head[2 * i + 1] = x1 * c + x0 * s;
        }
    }
}

/// Rotate-half RoPE on the CPU (pairs i, i + head_dim / 2 of each head), angles as above.
fn rope_half_ref(v: &mut [f64], head_dim: usize, pos: usize, theta: f32, factors: Option<&[f32]>) {
    let half = head_dim / 2;
    for head in v.chunks_mut(head_dim) {
        for i in 0..half {
            let inv_freq =
                1.0 / theta.powf((2 * i) as f32 / head_dim as f32) / factors.map_or(1.0, |f| f[i]);
            let angle = f64::from(pos as f32 * inv_freq);
            let (s, c) = angle.sin_cos();
            let (x0, x1) = (head[i], head[i + half]);
            head[i] = x0 * c - x1 * s;
            head[i + half] = x1 * c + x0 * s;
        }
    }
}

/// Decoding's fused attention input: q, k and v of one token and RoPE on q and k in one dispatch, k
/// and v written into a cache's row, against CPU GEMVs and RoPE; v of q's type and of another (as
/// Q4_K_M files mix them).
async fn gemv_qkv_matches_cpu_body() -> Result<()> {
    let gpu = gpu().await?;
    // q: 4 heads of 16, k and v: 2 heads of 16 (grouped-query attention), 96 inputs (3 blocks; one
    // 256-element super-block for the K-quants).
    let (nq, nkv, head_dim, pos, theta) = (64, 32, 16, 37, 10000.0f32);
    // Mixed: what llama.cpp's Q4_K_M writes (v Q6_K or its Q8_0 fallback) and one more.
    let mixed = [
        (QuantType::Q4_K, QuantType::Q6_K),
        (QuantType::Q5_0, QuantType::Q8_0),
        (QuantType::Q8_0, QuantType::Q5_1),
    ];
    for (qtype, vtype) in TYPES.iter().map(|&q| (q, q)).chain(mixed) {
        let k = if qtype.block_elems() == 256 { 256 } else { 96 };
        let mut rng = Rng::new(nq as u64 + 5);
        let (qb, qv) = golden_blocks(qtype, nq, k, 5);
        let (kb, kv) = golden_blocks(qtype, nkv, k, 6);
        let (vb, vv) = golden_blocks(vtype, nkv, k, 7);
        let wq = QTensor::from_blocks(&gpu, &qb, &[nq, k], qtype)?;
        let wk = QTensor::from_blocks(&gpu, &kb, &[nkv, k], qtype)?;
        let wv = QTensor::from_blocks(&gpu, &vb, &[nkv, k], vtype)?;
        let mut x = rng.vec(k);
        let tx = upload(&gpu, DType::F32, &mut x, &[1, k])?;
        // A cache of 3 rows; the token goes into row 1, rows 0 and 2 must stay as they were.
        let k_cache = Tensor::from_f32(&gpu, &vec![7.0; 3 * nkv], &[3, nkv])?;
        let v_cache = Tensor::from_f32(&gpu, &vec![9.0; 3 * nkv], &[3, nkv])?;
        let (k_row, v_row) = (k_cache.narrow(1, 1)?, v_cache.narrow(1, 1)?);
        // Llama 3's frequency factors in the Q4_K_M-style case (Llama 3.2 files are Q4_K_M).
        let factors: Vec<f32> = (0..head_dim / 2).map(|i| 1.0 + 0.9 * i as f32).collect();
        let tfactors = Tensor::from_f32(&gpu, &factors, &[head_dim / 2])?;
        let scaled = qtype == QuantType::Q4_K && vtype == QuantType::Q6_K;
        // Without and with the RMSNorm folded in (weight around 1, eps 1e-5), in GGUF's interleaved
        // RoPE layout and (below) rotate-half (Phi-3, Gemma 2, Hugging Face folders).
        let norm_w: Vec<f32> = rng.vec(k).iter().map(|v| 1.0 + 0.5 * v).collect();
        let tnorm = Tensor::from_f32(&gpu, &norm_w, &[k])?;
        // The rotate-half pairing does not depend on the block format: two types of each block size
        // (and the mixed Q4_K/Q6_K case, with factors) take it, to keep pipeline compiles down.
        let half_too = matches!(qtype, QuantType::Q4_K | QuantType::Q8_0);
        let layouts: &[(bool, bool)] = if half_too {
            &[(false, false), (true, false), (false, true), (true, true)]
        } else {
            &[(false, false), (true, false)]
        };
        for &(folded, rotate_half) in layouts {
            let rope = quant::Rope {
                pos,
                theta,
                head_dim,
                factors: scaled.then_some(&tfactors),
                rotate_half,
            };
            let norm = folded.then_some(quant::Norm {
                weight: &tnorm,
                eps: 1e-5,
            });
            let mut rec = gpu.recorder();
            let q = quant::gemv_qkv(
                &mut rec,
                &tx,
                &wq,
                &wk,
                &wv,
                &k_row,
                &v_row,
                Some(rope),
                norm,
            )?;
            rec.submit();
            let xn = if folded {
                rms_norm_ref(&x, &norm_w, 1e-5)
            } else {
                x.clone()
            };
            let mut want_q = gemv_ref(&xn, &qv, 1, nq, k);
            let mut want_k = gemv_ref(&xn, &kv, 1, nkv, k);
            let want_v = gemv_ref(&xn, &vv, 1, nkv, k);
            let largest = |v: &[f64]| v.iter().fold(0f64, |a, b| a.max(b.abs()));
            // RoPE's error bound: WGSL specifies sin/cos only to 2^-11 absolute on [-π, π]
            // (SwiftShader uses that room), and each output sums two products.
            let rope_tol = |v: &[f64]| (1e-4 + 2.0 * largest(v) * 2f64.powi(-11)) as f32;
            let (q_tol, k_tol) = (rope_tol(&want_q), rope_tol(&want_k));
            let fac = scaled.then_some(factors.as_slice());
            let rope_ref = if rotate_half {
                rope_half_ref
            } else {
                rope_interleaved_ref
            };
            rope_ref(&mut want_q, head_dim, pos, theta, fac);
            rope_ref(&mut want_k, head_dim, pos, theta, fac);
            let f = |v: &[f64]| -> Vec<f32> { v.iter().map(|&x| x as f32).collect() };
            let row = |fill: f32, mid: &[f64]| -> Vec<f32> {
                let mut r = vec![fill; nkv];
                r.extend(f(mid));
                r.extend(vec![fill; nkv]);
                r
            };
            // v: f32 accumulation over ≤ 256 terms (1e-4 absolute, as the GEMV tests); q and k: that
            // plus RoPE's bound (above). A wrong pairing, angle or position is off by O(values).
            let what = format!(
                "gemv_qkv {qtype:?} (v {vtype:?}) norm {folded} factors {scaled} half {rotate_half}"
            );
            let q_got = q.to_f32_vec().await?;
            assert_close(&format!("{what} q"), &q_got, &f(&want_q), q_tol, 1e-4);
            let k_got = k_cache.to_f32_vec().await?;
            assert_close(
                &format!("{what} k cache"),
                &k_got,
                &row(7.0, &want_k),
                k_tol,
                1e-4,
            );
            let v_got = v_cache.to_f32_vec().await?;
            assert_close(
                &format!("{what} v cache"),
                &v_got,
                &row(9.0, &want_v),
                1e-4,
                1e-4,
            );
        }
        // Refused: two rows of x; k and v in one buffer.
        let mut rec = gpu.recorder();
        let two = Tensor::from_f32(&gpu, &vec![0.0; 2 * k], &[2, k])?;
        let err =
            quant::gemv_qkv(&mut rec, &two, &wq, &wk, &wv, &k_row, &v_row, None, None).unwrap_err();
        assert!(err.to_string().contains("one row"), "{err}");
        let other_row = k_cache.narrow(2, 1)?;
        let err = quant::gemv_qkv(&mut rec, &tx, &wq, &wk, &wv, &k_row, &other_row, None, None)
            .unwrap_err();
        assert!(err.to_string().contains("three buffers"), "{err}");
    }
    gpu.check()
}
gpu_test!(gemv_qkv_matches_cpu, gemv_qkv_matches_cpu_body);

/// The SwiGLU GEMV with the MLP's RMSNorm folded in, against a CPU norm and GEMVs; refused for two rows.
async fn swiglu_norm_matches_cpu_body() -> Result<()> {
    let gpu = gpu().await?;
    for qtype in TYPES {
        for (n, k) in shapes(qtype) {
            let mut rng = Rng::new((5 * n + k) as u64);
            let (gb, gv) = golden_blocks(qtype, n, k, 1);
            let (ub, uv) = golden_blocks(qtype, n, k, 2);
            let gate = QTensor::from_blocks(&gpu, &gb, &[n, k], qtype)?;
            let up = QTensor::from_blocks(&gpu, &ub, &[n, k], qtype)?;
            let x = rng.vec(k);
            let norm_w: Vec<f32> = rng.vec(k).iter().map(|v| 1.0 + 0.5 * v).collect();
            let tx = Tensor::from_f32(&gpu, &x, &[1, k])?;
            let tnorm = Tensor::from_f32(&gpu, &norm_w, &[k])?;
            let norm = quant::Norm {
                weight: &tnorm,
                eps: 1e-6,
            };
            let mut rec = gpu.recorder();
            let y = quant::gemv_swiglu_norm(&mut rec, &tx, &gate, &up, norm)?;
            rec.submit();
            let xn = rms_norm_ref(&x, &norm_w, 1e-6);
            let g = gemv_ref(&xn, &gv, 1, n, k);
            let u = gemv_ref(&xn, &uv, 1, n, k);
            let want: Vec<f32> = g
                .iter()
                .zip(&u)
                .map(|(&g, &u)| (g / (1.0 + (-g).exp()) * u) as f32)
                .collect();
            // As the plain SwiGLU test; the norm's scale is ≤ ~2 here.
            let what = format!("swiglu+norm {qtype:?} [{n}, {k}]");
            assert_close(&what, &y.to_f32_vec().await?, &want, 1e-4, 1e-4);
        }
    }
    two_rows_refused(&gpu, |rec, x, w, norm| {
        quant::gemv_swiglu_norm(rec, x, w, w, norm)
    })?;
    gpu.check()
}
gpu_test!(swiglu_norm_matches_cpu, swiglu_norm_matches_cpu_body);

/// A GEMV with a folded norm (`f`: the recorder, x, a Q8_0 weight, the norm) refuses two rows of x
/// with an error that says it needs one.
fn two_rows_refused(
    gpu: &Gpu,
    f: impl FnOnce(&mut webgpu_infer::Recorder, &Tensor, &QTensor, quant::Norm<'_>) -> Result<Tensor>,
) -> Result<()> {
    let (bytes, _) = golden_blocks(QuantType::Q8_0, 8, 64, 0);
    let w = QTensor::from_blocks(gpu, &bytes, &[8, 64], QuantType::Q8_0)?;
    let two = Tensor::from_f32(gpu, &[0.5; 128], &[2, 64])?;
    let tnorm = Tensor::from_f32(gpu, &[1.0; 64], &[64])?;
    let norm = quant::Norm {
        weight: &tnorm,
        eps: 1e-6,
    };
    let mut rec = gpu.recorder();
    let err = f(&mut rec, &two, &w, norm).unwrap_err();
    assert!(err.to_string().contains("one row"), "{err}");
    Ok(())
}

/// A GEMV of RMSNorm(x) in one kernel (a decoder's final norm and LM head), against a CPU norm and
/// GEMV (row counts that are no multiple of a workgroup's 8 rows among the shapes); refused for two
/// rows.
async fn gemv_norm_matches_cpu_body() -> Result<()> {
    let gpu = gpu().await?;
    for qtype in TYPES {
        for (n, k) in shapes(qtype) {
            let mut rng = Rng::new((7 * n + k) as u64);
            let (wb, wv) = golden_blocks(qtype, n, k, 3);
            let w = QTensor::from_blocks(&gpu, &wb, &[n, k], qtype)?;
            let x: Vec<f32> = rng.vec(k).iter().map(|v| 3.0 * v).collect();
            let norm_w: Vec<f32> = rng.vec(k).iter().map(|v| 1.0 + 0.5 * v).collect();
            let tx = Tensor::from_f32(&gpu, &x, &[1, k])?;
            let tnorm = Tensor::from_f32(&gpu, &norm_w, &[k])?;
            let norm = quant::Norm {
                weight: &tnorm,
                eps: 1e-6,
            };
            let mut rec = gpu.recorder();
            let y = quant::gemv_norm(&mut rec, &tx, &w, norm)?;
            rec.submit();
            let want: Vec<f32> = gemv_ref(&rms_norm_ref(&x, &norm_w, 1e-6), &wv, 1, n, k)
                .iter()
                .map(|&v| v as f32)
                .collect();
            // As the SwiGLU test: f32 sums of ≤ 2 304 products of O(1) terms, in another order
            // than the f64 reference, the norm's scale applied once to the sum.
            let what = format!("gemv+norm {qtype:?} [{n}, {k}]");
            assert_close(&what, &y.to_f32_vec().await?, &want, 1e-4, 1e-4);
        }
    }
    two_rows_refused(&gpu, quant::gemv_norm)?;
    gpu.check()
}
gpu_test!(gemv_norm_matches_cpu, gemv_norm_matches_cpu_body);

/// The LM head's GEMV that also keeps each workgroup's maximum, then the argmax over those pairs:
/// the first index of the largest output, as a CPU argmax of the outputs finds it, over 20 005 rows
/// (2 501 pairs: the 8-loads-a-thread loop and its tail, and a last workgroup of 5 rows). The largest
/// output is a tie of identical all-127 rows broken by index: rows 9 001 and 9 003 (one workgroup),
/// then those and 5 000 (across workgroups); then all rows random.
async fn gemv_norm_argmax_matches_cpu_body() -> Result<()> {
    let gpu = gpu().await?;
    let (n, k) = (20_005, 64);
    let mut rng = Rng::new(11);
    let block = |rng: &mut Rng, top: bool| {
        let mut b = half::f16::from_f32(0.01).to_le_bytes().to_vec();
        b.extend((0..32).map(|_| {
            if top {
                127u8
            } else {
                (100.0 * rng.next_f32()) as i8 as u8
            }
        }));
        b
    };
    for tops in [&[9_001, 9_003][..], &[5_000, 9_001, 9_003], &[]] {
        let bytes: Vec<u8> = (0..n)
            .flat_map(|row| {
                let top = tops.contains(&row);
                (0..k / 32)
                    .flat_map(|_| block(&mut rng, top))
                    .collect::<Vec<u8>>()
            })
            .collect();
        let w = QTensor::from_blocks(&gpu, &bytes, &[n, k], QuantType::Q8_0)?;
        let x: Vec<f32> = (0..k).map(|_| 0.5 + 0.5 * rng.next_f32().abs()).collect();
        let tx = Tensor::from_f32(&gpu, &x, &[1, k])?;
        let tnorm = Tensor::from_f32(&gpu, &vec![1.0; k], &[k])?;
        let norm = quant::Norm {
            weight: &tnorm,
            eps: 1e-6,
        };
        let mut rec = gpu.recorder();
        let (logits, parts) = quant::gemv_norm_argmax(&mut rec, &tx, &w, norm)?;
        let id = sample::argmax_parts(&mut rec, &parts)?;
        let plain = quant::gemv_norm(&mut rec, &tx, &w, norm)?;
        rec.submit();
        assert_eq!(parts.shape(), [n.div_ceil(8), 2]);
        let got = logits.to_f32_vec().await?;
        assert_eq!(
            got,
            plain.to_f32_vec().await?,
            "the same outputs as gemv_norm"
        );
        let want = got
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
            .0;
        if let Some(&first) = tops.first() {
            assert_eq!(want, first, "the all-127 rows are the largest");
        }
        let id = id.to_i32_vec().await?;
        assert_eq!(id, [want as i32], "argmax over the pairs, ties {tops:?}");
    }
    gpu.check()
}
gpu_test!(
    gemv_norm_argmax_matches_cpu,
    gemv_norm_argmax_matches_cpu_body
);

/// The prompts' tensor-core shader (`quant_mm_coop.wgsl` after the rest of the quantized module)
/// compiles with naga's WGSL front end and validator, every capability on, for f32 and f16
/// activations, even where the adapter cannot run it (CI's lavapipe).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn quant_coop_shader_validates() {
    let body: String = [
        include_str!("../shaders/quant_blocks.wgsl"),
        include_str!("../shaders/quant_reduce_sg.wgsl"),
        include_str!("../shaders/quant.wgsl"),
        include_str!("../shaders/quant_merged.wgsl"),
        include_str!("../shaders/quant_norm.wgsl"),
        include_str!("../shaders/quant_mm.wgsl"),
        include_str!("../shaders/quant_mm_coop.wgsl"),
    ]
    .concat()
    .lines()
    .filter(|l| !l.starts_with("enable "))
    .collect::<Vec<_>>()
    .join("\n");
    for prelude in ["alias T = f32;", "alias T = f16;"] {
        let source = format!("enable wgpu_cooperative_matrix;\nenable f16;\n{prelude}\n{body}");
        common::naga_validates(prelude, &source);
    }
}
