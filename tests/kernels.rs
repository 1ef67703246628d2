//! Each kernel against a CPU reference over odd shapes, f32 everywhere and f16 where the adapter has
//! `shader-f16` (where it lacks it, the f16 call must fail with `MissingFeature`).
mod common;

use common::{Rng, assert_close, gpu, matmul_ref, softmax_ref, upload};
use half::f16;
use webgpu_infer::kernels::{
    activation::Activation,
    elementwise,
    matmul::{self, BLayout, Epilogue, Kernel},
    softmax,
};
use webgpu_infer::{DType, Error, Gpu, Result, Tensor};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

// Tolerances. f32 matmul: each output sums K products of values in [-1, 1) in f32 with fma; the error
// bound grows like K·eps·Σ|a·b|, about 1e-5 for K = 257 against an f64 reference: atol 1e-4 has a
// margin of 10x yet catches any wrong index (errors of order 0.1-1). f16 storage: inputs and outputs
// are rounded to f16 (relative 2^-11 ≈ 4.9e-4 each), sums accumulate in f32; the reference is computed
// from the same f16-rounded inputs, so what remains is the output rounding plus f32 accumulation:
// rtol 2e-3, atol 2e-3.
const F32_ATOL: f32 = 1e-4;
const F32_RTOL: f32 = 1e-4;
const F16_TOL: f32 = 2e-3;

/// Shapes with every edge case of a 64×64 tile and a K step of 16: 1, below, at and past a tile.
const MATMUL_SHAPES: &[(usize, usize, usize, usize)] = &[
    // (batch, m, n, k)
    (1, 1, 1, 1),
    (1, 3, 17, 63),
    (1, 17, 3, 65),
    (1, 63, 65, 129),
    (2, 65, 63, 17),
    (3, 129, 1, 3),
    (1, 1, 257, 64),
    (1, 64, 64, 64),
    (2, 7, 130, 257),
    // K and N multiples of 4 (Kernel::Tiled128's vec4 reads), past a 128×128 tile's edges.
    (1, 132, 136, 20),
    (2, 130, 12, 48),
    // 6 × 6 tiles of 128: Tiled128's vec4 walk in bands of 4 row tiles, the last band partial.
    (1, 763, 644, 8),
];

/// Every matmul kernel that runs on any adapter (the tensor-core ones are tested where the device has
/// them).
const EVERY_KERNEL: [Kernel; 6] = [
    Kernel::Auto,
    Kernel::Tiled16,
    Kernel::Tiled64,
    Kernel::Tiled128,
    Kernel::Gemv,
    Kernel::Direct,
];

async fn run_matmul(
    gpu: &Gpu,
    dtype: DType,
    (batch, m, n, k): (usize, usize, usize, usize),
    layout: BLayout,
    b_batched: bool,
) -> Result<()> {
    let mut rng = Rng::new((batch * 1_000_003 + m * 1009 + n * 31 + k) as u64);
    let b_count = if b_batched { batch } else { 1 };
    let mut a = rng.vec(batch * m * k);
    let mut b = rng.vec(b_count * k * n);
    let b_shape = match (layout, b_batched) {
        (BLayout::KN, true) => vec![batch, k, n],
        (BLayout::NK, true) => vec![batch, n, k],
        (BLayout::KN, false) => vec![k, n],
        (BLayout::NK, false) => vec![n, k],
    };
    let (ta, tb) = upload_pair(gpu, dtype, &mut a, &[batch, m, k], &mut b, &b_shape)?;
    let want = matmul_ref(&a, &b, batch, m, n, k, layout == BLayout::NK, b_batched);
    // Every kernel on every shape: the tiles' edges and the GEMV's lanes must all be right.
    for kernel in EVERY_KERNEL {
        // A fresh (zeroed) output: a pooled one could hold the last kernel's answer, hiding tiles
        // this kernel never wrote.
        gpu.trim_pool();
        let mut rec = gpu.recorder();
        let c = matmul::matmul_with(&mut rec, &ta, &tb, layout, Epilogue::default(), kernel)?;
        rec.submit();
        assert_eq!(c.shape(), &[batch, m, n]);
        assert_eq!(c.dtype(), dtype);
        let got = c.to_f32_vec().await?;
        let what = format!(
            "matmul {kernel:?} {dtype:?} {layout:?} b_batched={b_batched} {batch}x{m}x{n}x{k}"
        );
        match dtype {
            DType::F32 => assert_close(&what, &got, &want, F32_ATOL, F32_RTOL),
            DType::F16 => assert_close(&what, &got, &want, F16_TOL, F16_TOL),
            DType::I32 => unreachable!("matmul takes float tensors"),
        }
    }
    Ok(())
}

/// Uploads two operands as `dtype`; for f16 the host values are rounded to f16 in place first, so
/// that the CPU reference sees exactly what the GPU sees.
fn upload_pair(
    gpu: &Gpu,
    dtype: DType,
    a: &mut [f32],
    a_shape: &[usize],
    b: &mut [f32],
    b_shape: &[usize],
) -> Result<(Tensor, Tensor)> {
    Ok((
        upload(gpu, dtype, a, a_shape)?,
        upload(gpu, dtype, b, b_shape)?,
    ))
}

async fn matmul_f32_all_layouts() -> Result<()> {
    let gpu = gpu().await?;
    for &shape in MATMUL_SHAPES {
        for layout in [BLayout::KN, BLayout::NK] {
            for b_batched in [false, true] {
                run_matmul(&gpu, DType::F32, shape, layout, b_batched).await?;
            }
        }
    }
    Ok(())
}
gpu_test!(
    matmul_f32_odd_shapes_both_layouts_batched,
    matmul_f32_all_layouts
);

async fn matmul_f16_storage() -> Result<()> {
    let gpu = gpu().await?;
    if !gpu.capabilities().shader_f16 {
        return expect_missing_f16(&gpu).await;
    }
    for &shape in MATMUL_SHAPES {
        for layout in [BLayout::KN, BLayout::NK] {
            run_matmul(&gpu, DType::F16, shape, layout, true).await?;
        }
    }
    Ok(())
}
gpu_test!(matmul_f16_odd_shapes, matmul_f16_storage);

/// `activation(x · wᵀ + bias) (+ residual)` in one kernel, for each kernel and activation; the
/// residual a view that starts one row into its buffer. 20 × 132 × 400 is few tiles and a long K:
/// Tiled16 and Tiled64 split K there (a partial product and the reduction, which applies the
/// epilogue; the last part shorter than the others).
async fn linear_epilogue() -> Result<()> {
    let gpu = gpu().await?;
    for &(m, n, k) in &[
        (1, 37, 65),
        (5, 130, 17),
        (129, 65, 33),
        (130, 132, 36),
        (20, 132, 400),
    ] {
        let mut rng = Rng::new((m * n * k) as u64);
        let (x, w, bias) = (rng.vec(m * k), rng.vec(n * k), rng.vec(n));
        let res = rng.vec((m + 1) * n);
        let tx = Tensor::from_f32(&gpu, &x, &[m, k])?;
        let tw = Tensor::from_f32(&gpu, &w, &[n, k])?;
        let tb = Tensor::from_f32(&gpu, &bias, &[n])?;
        let tres = Tensor::from_f32(&gpu, &res, &[m + 1, n])?.narrow(1, m)?;
        let pre: Vec<f64> = matmul_ref(&x, &w, 1, m, n, k, true, false)
            .iter()
            .enumerate()
            .map(|(i, &v)| f64::from(v) + f64::from(bias[i % n]))
            .collect();
        for act in [
            None,
            Some(Activation::Gelu),
            Some(Activation::Silu),
            Some(Activation::Relu),
            Some(Activation::Relu6),
            Some(Activation::Sigmoid),
        ] {
            let want: Vec<f32> = pre
                .iter()
                .map(|&v| match act {
                    None => v,
                    Some(Activation::Gelu) => {
                        0.5 * v * (1.0 + libm::erf(v / std::f64::consts::SQRT_2))
                    }
                    Some(Activation::Silu) => v / (1.0 + (-v).exp()),
                    Some(Activation::Relu) => v.max(0.0),
                    Some(Activation::Relu6) => v.clamp(0.0, 6.0),
                    Some(Activation::Sigmoid) => 1.0 / (1.0 + (-v).exp()),
                } as f32)
                .collect();
            let want_res: Vec<f32> = want.iter().zip(&res[n..]).map(|(w, r)| w + r).collect();
            for kernel in [
                Kernel::Tiled16,
                Kernel::Tiled64,
                Kernel::Tiled128,
                Kernel::Gemv,
                Kernel::Direct,
            ] {
                for (residual, want) in [(None, &want), (Some(&tres), &want_res)] {
                    gpu.trim_pool(); // a fresh output: no earlier answer left in it
                    let mut rec = gpu.recorder();
                    let epilogue = Epilogue {
                        bias: Some(&tb),
                        activation: act,
                        residual,
                    };
                    let y = matmul::matmul_with(&mut rec, &tx, &tw, BLayout::NK, epilogue, kernel)?;
                    let split = k == 400 && matches!(kernel, Kernel::Tiled16 | Kernel::Tiled64);
                    assert_eq!(
                        rec.dispatches(),
                        1 + u32::from(split),
                        "{kernel:?} {m}x{n}x{k}"
                    );
                    rec.submit();
                    let what = format!(
                        "linear {kernel:?} {act:?} residual={} {m}x{n}x{k}",
                        residual.is_some()
                    );
                    assert_close(&what, &y.to_f32_vec().await?, want, F32_ATOL, F32_RTOL);
                }
            }
        }
    }
    Ok(())
}
gpu_test!(linear_with_bias_and_activation_epilogue, linear_epilogue);

/// Three linear layers of one input in one product (`matmul::linear_stacked`: BERT's Q, K and V),
/// each part against the reference, in every kernel; f16 where the adapter has it; f32 activations
/// times f16 weights on tensor cores where it has those.
async fn stacked_linears() -> Result<()> {
    let gpu = gpu().await?;
    let caps = gpu.capabilities();
    // 20 × 130 × 392: K split (Tiled16, Tiled64 and the tensor-core kernels), a bias a part.
    for &(rows, n, k) in &[(1, 37, 65), (17, 130, 36), (130, 132, 64), (20, 130, 392)] {
        let mut rng = Rng::new((rows * 7 + n * k) as u64);
        let (mut x, mut w, mut bias) = (rng.vec(rows * k), rng.vec(3 * n * k), rng.vec(3 * n));
        let mut runs = vec![(DType::F32, DType::F32)];
        if caps.shader_f16 {
            runs.push((DType::F16, DType::F16));
        }
        if caps.cooperative_matrix && k.is_multiple_of(8) {
            runs.push((DType::F32, DType::F16));
        }
        for (x_type, w_type) in runs {
            // Rounded in place to what the GPU holds, so that the reference sees the same inputs.
            let tx = upload(&gpu, x_type, &mut x, &[1, rows, k])?;
            let tw = upload(&gpu, w_type, &mut w, &[3, n, k])?;
            let tb = upload(&gpu, x_type, &mut bias, &[3, n])?;
            let want: Vec<f32> = (0..3)
                .flat_map(|p| {
                    let part = &w[p * n * k..(p + 1) * n * k];
                    let b = &bias[p * n..(p + 1) * n];
                    matmul_ref(&x, part, 1, rows, n, k, true, false)
                        .into_iter()
                        .enumerate()
                        .map(move |(i, v)| v + b[i % n])
                })
                .collect();
            let kernels: &[Kernel] = if x_type != w_type {
                &[Kernel::Auto, Kernel::Coop, Kernel::Coop64]
            } else {
                &EVERY_KERNEL
            };
            for &kernel in kernels {
                gpu.trim_pool();
                let mut rec = gpu.recorder();
                let y = matmul::linear_stacked(&mut rec, &tx, &tw, Some(&tb), kernel)?;
                rec.submit();
                assert_eq!(y.shape(), &[3, 1, rows, n]);
                let what = format!("stacked {kernel:?} {x_type:?}x{w_type:?} {rows}x{n}x{k}");
                let got = y.to_f32_vec().await?;
                match (x_type, w_type) {
                    (DType::F32, DType::F32) => {
                        assert_close(&what, &got, &want, F32_ATOL, F32_RTOL)
                    }
                    _ => assert_close(&what, &got, &want, F16_TOL, F16_TOL),
                }
            }
        }
    }
    // The weights must be [P, N, K] and the bias [P, N].
    let x = Tensor::from_f32(&gpu, &[1.0; 8], &[2, 4])?;
    let w = Tensor::from_f32(&gpu, &[1.0; 24], &[3, 2, 4])?;
    let bad_bias = Tensor::from_f32(&gpu, &[1.0; 2], &[2])?;
    let flat = w.reshape(&[6, 4])?;
    for (w, bias) in [(&flat, None), (&w, Some(&bad_bias))] {
        let got = matmul::linear_stacked(&mut gpu.recorder(), &x, w, bias, Kernel::Auto);
        assert!(
            matches!(got, Err(Error::Shape { .. })),
            "weights {:?}, bias {:?} gave {:?}",
            w.shape(),
            bias.map(Tensor::shape),
            got.map(|t| t.shape().to_vec())
        );
    }
    Ok(())
}
gpu_test!(linear_stacked_matches_each_layer, stacked_linears);

/// Without shader-f16, an f16 kernel must be refused with a typed error, not fail in the driver.
async fn expect_missing_f16(gpu: &Gpu) -> Result<()> {
    let x = Tensor::from_f16(gpu, &[f16::ONE; 4], &[2, 2])?;
    let mut rec = gpu.recorder();
    match matmul::matmul(&mut rec, &x, &x, BLayout::KN) {
        Err(Error::MissingFeature { feature, .. }) => {
            assert_eq!(feature, "shader-f16");
            Ok(())
        }
        other => panic!("f16 matmul without shader-f16 gave {other:?}"),
    }
}

/// Shapes for the tensor-core kernel (K and N multiples of 8, as it requires): edges of its 128×128
/// tiles, of a subgroup's 64×32 part and of the K step of 32; the last two with M, N and K multiples
/// of 16 (whole fragments, tiles and subgroups' parts past M and N, a single K step).
const COOP_SHAPES: &[(usize, usize, usize, usize)] = &[
    // (batch, m, n, k)
    (1, 33, 8, 8),
    (1, 130, 72, 40),
    (2, 65, 136, 264),
    (1, 128, 128, 32),
    (3, 257, 200, 16),
    (2, 144, 176, 48),
    (1, 16, 400, 16),
];

/// [`Kernel::Coop`] (f16 on tensor cores, native only) against the CPU reference with a bias and an
/// activation; where the device lacks it, asking for it must fail with `MissingFeature`.
async fn matmul_coop() -> Result<()> {
    let gpu = gpu().await?;
    if !gpu.capabilities().cooperative_matrix {
        let x = Tensor::from_f32(&gpu, &[1.0; 64], &[8, 8])?;
        let mut rec = gpu.recorder();
        let got = matmul::matmul_with(
            &mut rec,
            &x,
            &x,
            BLayout::NK,
            Epilogue::default(),
            Kernel::Coop,
        );
        assert!(
            matches!(got, Err(Error::MissingFeature { .. })),
            "Kernel::Coop without tensor cores gave {:?}",
            got.err()
        );
        // f32 activations times f16 weights need them too: a type error that says so.
        if gpu.capabilities().shader_f16 {
            let w = Tensor::from_f16(&gpu, &[f16::ONE; 64], &[8, 8])?;
            let got = matmul::matmul(&mut rec, &x, &w, BLayout::NK);
            assert!(
                matches!(&got, Err(Error::DType { message, .. }) if message.contains("tensor cores")),
                "f32 x f16 without tensor cores gave {:?}",
                got.err()
            );
        }
        eprintln!("matmul_coop: this adapter has no f16 cooperative matrices: refusal checked");
        return Ok(());
    }
    for &(batch, m, n, k) in COOP_SHAPES {
        for layout in [BLayout::KN, BLayout::NK] {
            for b_batched in [false, true] {
                let mut rng = Rng::new((batch * 7919 + m * 131 + n * 17 + k) as u64);
                let b_count = if b_batched { batch } else { 1 };
                let (mut a, mut b, mut bias) =
                    (rng.vec(batch * m * k), rng.vec(b_count * k * n), rng.vec(n));
                let mut b_shape = if b_batched { vec![batch] } else { vec![] };
                b_shape.extend(if layout == BLayout::NK {
                    [n, k]
                } else {
                    [k, n]
                });
                let (ta, tb) =
                    upload_pair(&gpu, DType::F16, &mut a, &[batch, m, k], &mut b, &b_shape)?;
                let tbias = upload(&gpu, DType::F16, &mut bias, &[n])?;
                let want: Vec<f32> =
                    matmul_ref(&a, &b, batch, m, n, k, layout == BLayout::NK, b_batched)
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| (v + bias[i % n]).max(0.0))
                        .collect();
                let epilogue = Epilogue {
                    bias: Some(&tbias),
                    activation: Some(Activation::Relu),
                    residual: None,
                };
                for kernel in [Kernel::Coop, Kernel::Coop64, Kernel::Auto] {
                    let mut rec = gpu.recorder();
                    let c = matmul::matmul_with(&mut rec, &ta, &tb, layout, epilogue, kernel)?;
                    rec.submit();
                    let what = format!(
                        "matmul {kernel:?} f16 {layout:?} b_batched={b_batched} {batch}x{m}x{n}x{k}"
                    );
                    assert_close(&what, &c.to_f32_vec().await?, &want, F16_TOL, F16_TOL);
                }
                // The mixed product: f32 activations (here already f16 values, as the kernel rounds
                // them when staging), f16 weights, f32 bias and output. Only the accumulation order
                // differs from the reference: 1e-4 over sums of up to 264 products of |v| ≤ 1. With a
                // residual (f32, as the output), added after the activation.
                let ta32 = Tensor::from_f32(&gpu, &a, &[batch, m, k])?;
                let bias32 = Tensor::from_f32(&gpu, &bias, &[n])?;
                let res = rng.vec(batch * m * n);
                let res32 = Tensor::from_f32(&gpu, &res, &[batch, m, n])?;
                let want: Vec<f32> = want.iter().zip(&res).map(|(w, r)| w + r).collect();
                let epilogue = Epilogue {
                    bias: Some(&bias32),
                    activation: Some(Activation::Relu),
                    residual: Some(&res32),
                };
                for kernel in [Kernel::Coop, Kernel::Coop64, Kernel::Auto] {
                    let mut rec = gpu.recorder();
                    let c = matmul::matmul_with(&mut rec, &ta32, &tb, layout, epilogue, kernel)?;
                    rec.submit();
                    assert_eq!(c.dtype(), DType::F32);
                    let what = format!(
                        "matmul {kernel:?} f32 x f16 {layout:?} b_batched={b_batched} \
                         {batch}x{m}x{n}x{k}"
                    );
                    assert_close(&what, &c.to_f32_vec().await?, &want, 1e-4, 1e-4);
                }
            }
        }
    }
    // f32 times f16 runs only on tensor cores: another kernel is refused by name.
    let a32 = Tensor::from_f32(&gpu, &[0.5; 64 * 16], &[64, 16])?;
    let w16 = Tensor::from_f16(&gpu, &[f16::ONE; 8 * 16], &[8, 16])?;
    let mut rec = gpu.recorder();
    let err = matmul::matmul_with(
        &mut rec,
        &a32,
        &w16,
        BLayout::NK,
        Epilogue::default(),
        Kernel::Tiled64,
    )
    .unwrap_err();
    assert!(err.to_string().contains("tensor cores"), "{err}");
    // K not a multiple of 8: refused by name when asked for, and Auto falls back.
    let x = Tensor::from_f16(&gpu, &[f16::ONE; 12 * 40], &[40, 12])?;
    let mut rec = gpu.recorder();
    let err = matmul::matmul_with(
        &mut rec,
        &x,
        &x,
        BLayout::NK,
        Epilogue::default(),
        Kernel::Coop,
    )
    .unwrap_err();
    assert!(err.to_string().contains("multiples of 8"), "{err}");
    let y = matmul::matmul(&mut rec, &x, &x, BLayout::NK)?;
    rec.submit();
    assert!(y.to_f32_vec().await?.iter().all(|&v| v == 12.0));
    Ok(())
}
gpu_test!(matmul_f16_tensor_cores, matmul_coop);

async fn matmul_rejects_bad_operands() -> Result<()> {
    let gpu = gpu().await?;
    let a = Tensor::from_f32(&gpu, &[0.0; 6], &[2, 3])?;
    let b = Tensor::from_f32(&gpu, &[0.0; 8], &[4, 2])?;
    let mut rec = gpu.recorder();
    let err = matmul::matmul(&mut rec, &a, &b, BLayout::KN).unwrap_err();
    assert!(matches!(err, Error::Shape { op: "matmul", .. }), "{err}");
    assert!(err.to_string().contains("K = 3"), "{err}");
    // A residual must have the output's shape ([2, 2] here, not [2, 3]).
    let b = Tensor::from_f32(&gpu, &[0.0; 6], &[3, 2])?;
    let epilogue = Epilogue {
        residual: Some(&a),
        ..Default::default()
    };
    let err =
        matmul::matmul_with(&mut rec, &a, &b, BLayout::KN, epilogue, Kernel::Auto).unwrap_err();
    assert!(matches!(err, Error::Shape { op: "matmul", .. }), "{err}");
    assert!(err.to_string().contains("residual [2, 3]"), "{err}");
    if gpu.capabilities().shader_f16 {
        let h = Tensor::from_f16(&gpu, &[f16::ONE; 6], &[3, 2])?;
        let err = matmul::matmul(&mut rec, &a, &h, BLayout::KN).unwrap_err();
        if gpu.capabilities().cooperative_matrix {
            // f32 × f16 runs on tensor cores, whose tiles K = 3 does not fit.
            assert!(matches!(err, Error::Shape { .. }), "{err}");
            assert!(err.to_string().contains("multiples of 8"), "{err}");
        } else {
            assert!(matches!(err, Error::DType { .. }), "{err}");
        }
    }
    Ok(())
}
gpu_test!(matmul_shape_and_dtype_errors, matmul_rejects_bad_operands);

/// Element-wise shapes: (a shape, b shape) with full, suffix and scalar broadcasting.
const ELEMENTWISE_SHAPES: &[(&[usize], &[usize])] = &[
    (&[1], &[1]),
    (&[3], &[3]),
    (&[17, 63], &[17, 63]),
    (&[65, 129], &[129]),
    (&[3, 7, 257], &[1, 257]),
    (&[4, 63], &[1]),
    (&[1000, 65], &[65]),
];

fn elementwise_ref(a: &[f32], b: &[f32], mul: bool) -> Vec<f32> {
    a.iter()
        .enumerate()
        .map(|(i, &x)| {
            let y = b[i % b.len()];
            if mul { x * y } else { x + y }
        })
        .collect()
}

async fn run_elementwise(gpu: &Gpu, dtype: DType) -> Result<()> {
    for (seed, &(a_shape, b_shape)) in ELEMENTWISE_SHAPES.iter().enumerate() {
        let mut rng = Rng::new(seed as u64 + 100);
        let mut a = rng.vec(a_shape.iter().product());
        let mut b = rng.vec(b_shape.iter().product());
        let (ta, tb) = upload_pair(gpu, dtype, &mut a, a_shape, &mut b, b_shape)?;
        let mut rec = gpu.recorder();
        let sum = elementwise::add(&mut rec, &ta, &tb)?;
        let prod = elementwise::mul(&mut rec, &ta, &tb)?;
        rec.submit();
        // f32: one rounding of an exact operation. f16: the result rounded to f16 (2^-11 relative).
        let tol = if dtype == DType::F32 { 1e-6 } else { 1e-3 };
        let what = format!("{dtype:?} {a_shape:?} with {b_shape:?}");
        let want_sum = elementwise_ref(&a, &b, false);
        let want_prod = elementwise_ref(&a, &b, true);
        assert_close(
            &format!("add {what}"),
            &sum.to_f32_vec().await?,
            &want_sum,
            tol,
            tol,
        );
        assert_close(
            &format!("mul {what}"),
            &prod.to_f32_vec().await?,
            &want_prod,
            tol,
            tol,
        );
    }
    Ok(())
}

async fn elementwise_f32() -> Result<()> {
    run_elementwise(&gpu().await?, DType::F32).await
}
gpu_test!(add_mul_f32_broadcasting, elementwise_f32);

async fn elementwise_f16() -> Result<()> {
    let gpu = gpu().await?;
    if !gpu.capabilities().shader_f16 {
        return expect_missing_f16(&gpu).await;
    }
    run_elementwise(&gpu, DType::F16).await
}
gpu_test!(add_mul_f16_broadcasting, elementwise_f16);

async fn elementwise_rejects_bad_broadcast() -> Result<()> {
    let gpu = gpu().await?;
    let a = Tensor::from_f32(&gpu, &[0.0; 6], &[2, 3])?;
    let b = Tensor::from_f32(&gpu, &[0.0; 2], &[2])?;
    let mut rec = gpu.recorder();
    let err = elementwise::add(&mut rec, &a, &b).unwrap_err();
    assert!(matches!(err, Error::Shape { op: "add", .. }), "{err}");
    Ok(())
}
gpu_test!(add_shape_errors, elementwise_rejects_bad_broadcast);

/// Row lengths below, at and past the 256-thread workgroup, and rows of very different scales.
const SOFTMAX_SHAPES: &[(usize, usize)] = &[
    (1, 1),
    (3, 17),
    (7, 63),
    (5, 256),
    (2, 257),
    (65, 129),
    (1, 4099),
];

async fn run_softmax(gpu: &Gpu, dtype: DType) -> Result<()> {
    for (seed, &(rows, cols)) in SOFTMAX_SHAPES.iter().enumerate() {
        let mut rng = Rng::new(seed as u64 + 7);
        // Scaled to ±20 so that exp() spans many orders of magnitude and the max subtraction matters.
        let mut x: Vec<f32> = rng.vec(rows * cols).iter().map(|v| v * 20.0).collect();
        let tx = upload(gpu, dtype, &mut x, &[rows, cols])?;
        let mut rec = gpu.recorder();
        let y = softmax::softmax(&mut rec, &tx)?;
        rec.submit();
        // f32: exp and the sum in f32, ~1e-6 relative; f16 output rounding 2^-11 relative.
        let (atol, rtol) = if dtype == DType::F32 {
            (1e-6, 1e-4)
        } else {
            (1e-4, 2e-3)
        };
        assert_close(
            &format!("softmax {dtype:?} {rows}x{cols}"),
            &y.to_f32_vec().await?,
            &softmax_ref(&x, cols),
            atol,
            rtol,
        );
    }
    Ok(())
}

async fn softmax_f32() -> Result<()> {
    run_softmax(&gpu().await?, DType::F32).await
}
gpu_test!(softmax_f32_odd_rows, softmax_f32);

async fn softmax_f16() -> Result<()> {
    let gpu = gpu().await?;
    if !gpu.capabilities().shader_f16 {
        return expect_missing_f16(&gpu).await;
    }
    run_softmax(&gpu, DType::F16).await
}
gpu_test!(softmax_f16_odd_rows, softmax_f16);

/// Masked positions (-inf) get probability 0 and the rest still sum to 1.
async fn softmax_with_mask() -> Result<()> {
    let gpu = gpu().await?;
    let x = [1.0, f32::NEG_INFINITY, 2.0, f32::NEG_INFINITY, 0.5];
    let t = Tensor::from_f32(&gpu, &x, &[1, 5])?;
    let mut rec = gpu.recorder();
    let y = softmax::softmax(&mut rec, &t)?;
    rec.submit();
    let want = softmax_ref(&x, 5);
    assert_close("masked softmax", &y.to_f32_vec().await?, &want, 1e-6, 1e-5);
    Ok(())
}
gpu_test!(softmax_masked_positions, softmax_with_mask);

/// Several kernels chained in one recorder: one submit, intermediates stay on the GPU.
async fn chained_kernels_one_submit() -> Result<()> {
    let gpu = gpu().await?;
    let (m, n, k) = (5, 33, 19);
    let mut rng = Rng::new(42);
    let (a, w, bias) = (rng.vec(m * k), rng.vec(n * k), rng.vec(n));
    let ta = Tensor::from_f32(&gpu, &a, &[m, k])?;
    let tw = Tensor::from_f32(&gpu, &w, &[n, k])?;
    let tbias = Tensor::from_f32(&gpu, &bias, &[n])?;
    let mut rec = gpu.recorder();
    let h = matmul::matmul(&mut rec, &ta, &tw, BLayout::NK)?;
    let h = elementwise::add(&mut rec, &h, &tbias)?;
    let y = softmax::softmax(&mut rec, &h)?;
    assert_eq!(rec.dispatches(), 3);
    rec.submit();
    let logits = elementwise_ref(&matmul_ref(&a, &w, 1, m, n, k, true, false), &bias, false);
    assert_close(
        "linear+softmax",
        &y.to_f32_vec().await?,
        &softmax_ref(&logits, n),
        1e-6,
        1e-4,
    );
    Ok(())
}
gpu_test!(linear_bias_softmax_chain, chained_kernels_one_submit);

/// The tensor-core shader compiles (naga's WGSL front end and validator, every capability on, and its
/// SPIR-V writer for both entry points, with and without TRANS_B, K steps of 32 and 64) even where the adapter cannot run
/// it, as on CI's lavapipe: a WGSL slip shows here, not only on a GPU.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn matmul_coop_shader_validates() {
    // Both modules: f16 throughout, and f32 activations and output (T = f32) with f16 weights.
    for prelude in ["alias T = f16;", "alias T = f32;"] {
        let source = format!(
            "enable wgpu_cooperative_matrix;\nenable f16;\n{prelude}\n{}{}{}",
            include_str!("../shaders/activation_fns.wgsl"),
            include_str!("../shaders/matmul_common.wgsl"),
            include_str!("../shaders/matmul_coop.wgsl")
                .replace("enable wgpu_cooperative_matrix;", "")
        );
        let a_f32 = f64::from(u8::from(prelude.contains("f32")));
        for entry in ["coop", "coop64"] {
            for (trans_b, bk) in [(0.0, 32.0), (1.0, 32.0), (0.0, 64.0), (1.0, 64.0)] {
                let constants = [("A_F32", a_f32), ("TRANS_B", trans_b), ("BK", bk)];
                common::naga_writes_spirv(prelude, &source, entry, &constants);
            }
        }
    }
}

/// The tensor-core attention kernel compiles (naga, every capability on, and its SPIR-V writer) where
/// the adapter cannot run it: f16 and f32 inputs and output (T = f32, IN_F32), head_dim 64 and 32
/// (HD).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn attention_coop_shader_validates() {
    let source = |prelude: &str| {
        format!(
            "enable wgpu_cooperative_matrix;\nenable f16;\n{prelude}\n{}{}{}",
            include_str!("../shaders/attention_common.wgsl"),
            include_str!("../shaders/attention_coop_lanes.wgsl"),
            include_str!("../shaders/attention_coop.wgsl")
                .replace("enable wgpu_cooperative_matrix;", "")
                .replace("enable f16;", "")
        )
    };
    for prelude in ["alias T = f16;", "alias T = f32;"] {
        let in_f32 = f64::from(u8::from(prelude.contains("f32")));
        for hd in [64.0, 32.0] {
            let constants = [("IN_F32", in_f32), ("HD", hd)];
            common::naga_writes_spirv(prelude, &source(prelude), "prefill_coop", &constants);
        }
    }
}

/// The kernel choices' old names still compile (deprecated aliases of each module's `Kernel`), so
/// code written against them keeps building; removing an alias fails this build.
#[cfg(not(target_arch = "wasm32"))]
#[test]
#[allow(deprecated)]
fn old_kernel_choice_names_still_compile() {
    use webgpu_infer::kernels::{attention, conv, quant};
    let a: attention::Variant = attention::Kernel::Decode;
    let c: conv::ConvKernel = conv::Kernel::Im2col;
    let q: quant::Variant = quant::Kernel::Rows;
    assert_eq!(
        (a, c, q),
        (
            attention::Kernel::Decode,
            conv::Kernel::Im2col,
            quant::Kernel::Rows
        )
    );
}

/// The subgroup builds of the quantized kernels and of the decode attention compile (naga, every
/// capability on): they run only where subgroups are exactly 32 lanes, never on CI's lavapipe.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn subgroup_shaders_validate() {
    let sources = [
        (
            "quant_sg",
            format!(
                "alias T = f32;\n{}{}{}{}{}",
                include_str!("../shaders/quant_blocks.wgsl"),
                include_str!("../shaders/quant_reduce_sg.wgsl"),
                include_str!("../shaders/quant.wgsl"),
                include_str!("../shaders/quant_merged.wgsl"),
                include_str!("../shaders/quant_norm.wgsl")
            ),
        ),
        (
            "attention_sg",
            format!(
                "alias T = f32;\nconst MAX_HEAD_DIM: u32 = 128u;\n{}{}{}{}",
                include_str!("../shaders/attention_common.wgsl"),
                include_str!("../shaders/attention_bindings.wgsl"),
                include_str!("../shaders/attention.wgsl"),
                include_str!("../shaders/attention_reduce_sg.wgsl")
            ),
        ),
    ];
    for (name, source) in sources {
        common::naga_validates(name, &source);
    }
}
