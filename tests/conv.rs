//! The image kernels against CPU references (f64) over odd shapes: conv2d (dense, strided, padded every
//! way, grouped, depthwise with multipliers, pointwise through the matmul path, fused bias/activation/
//! residual), average pooling, nearest upsampling, channel concatenation, batch-norm folding, RGBA8
//! packing, and the ReLU/ReLU6/sigmoid activations. f32 everywhere, f16 where the adapter has it.
mod common;

use common::{Rng, assert_close, gpu, upload};
use webgpu_infer::kernels::activation::{self, Activation};
use webgpu_infer::kernels::conv::{
    Conv2d, ConvEpilogue, Kernel as ConvKernel, Padding, conv2d, conv2d_with,
};
use webgpu_infer::kernels::image;
use webgpu_infer::{DType, Error, Gpu, Result, Tensor};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn dtypes(gpu: &Gpu) -> Vec<DType> {
    if gpu.capabilities().shader_f16 {
        vec![DType::F32, DType::F16]
    } else {
        vec![DType::F32]
    }
}

// Tolerances. f32: each output sums up to K = cin_g·kh·kw ≤ 3·3·24 = 216 products of values in [-1, 1)
// (error ~K·eps ≈ 3e-5 worst case); 1e-4 absolute + relative leaves a margin, while a wrong tap, padding
// or channel gives errors of order 0.1-1. f16: inputs are rounded to f16 before the reference sees
// them, sums are in f32, the output is rounded once (relative 4.9e-4) to values up to ~10: 1e-2 absolute.
fn tol(dtype: DType) -> (f32, f32) {
    match dtype {
        DType::F16 => (1e-2, 2e-3),
        _ => (1e-4, 1e-4),
    }
}

fn act_ref(f: Option<Activation>, v: f64) -> f64 {
    match f {
        None => v,
        Some(Activation::Relu) => v.max(0.0),
        Some(Activation::Relu6) => v.clamp(0.0, 6.0),
        Some(Activation::Sigmoid) => 1.0 / (1.0 + (-v).exp()),
        Some(Activation::Silu) => v / (1.0 + (-v).exp()),
        Some(Activation::Gelu) => 0.5 * v * (1.0 + libm::erf(v / std::f64::consts::SQRT_2)),
    }
}

struct Case {
    n: usize,
    h: usize,
    w: usize,
    cin: usize,
    cout: usize,
    k: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    groups: usize,
}

/// Output size and top/left padding, computed independently of the library (TF SAME, VALID, explicit).
fn geometry(
    input: usize,
    k: usize,
    s: usize,
    pad: Padding,
    explicit: (usize, usize),
) -> (usize, usize) {
    match pad {
        Padding::Same => {
            let out = input.div_ceil(s);
            let total = ((out - 1) * s + k).saturating_sub(input);
            (out, total / 2)
        }
        Padding::Valid => ((input - k) / s + 1, 0),
        Padding::Explicit(_) => ((input + explicit.0 + explicit.1 - k) / s + 1, explicit.0),
    }
}

#[allow(clippy::too_many_arguments)]
fn conv_ref(
    c: &Case,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    act: Option<Activation>,
    res: Option<&[f32]>,
) -> (Vec<f32>, [usize; 4]) {
    let (pv, ph) = match c.padding {
        Padding::Explicit([t, b, l, r]) => ((t, b), (l, r)),
        _ => ((0, 0), (0, 0)),
    };
    let (oh, top) = geometry(c.h, c.k[0], c.stride[0], c.padding, pv);
    let (ow, left) = geometry(c.w, c.k[1], c.stride[1], c.padding, ph);
    let (cin_g, cout_g) = (c.cin / c.groups, c.cout / c.groups);
    let mut out = vec![0f32; c.n * oh * ow * c.cout];
    for n in 0..c.n {
        for oy in 0..oh {
            for ox in 0..ow {
                for co in 0..c.cout {
                    let g = co / cout_g;
                    let mut acc = f64::from(bias[co]);
                    for ky in 0..c.k[0] {
                        let iy = (oy * c.stride[0] + ky) as isize - top as isize;
                        if iy < 0 || iy >= c.h as isize {
                            continue;
                        }
                        for kx in 0..c.k[1] {
                            let ix = (ox * c.stride[1] + kx) as isize - left as isize;
                            if ix < 0 || ix >= c.w as isize {
                                continue;
                            }
                            for ci in 0..cin_g {
                                let xv = x[((n * c.h + iy as usize) * c.w + ix as usize) * c.cin
                                    + g * cin_g
                                    + ci];
                                let wv = w[((co * cin_g + ci) * c.k[0] + ky) * c.k[1] + kx];
                                acc += f64::from(xv) * f64::from(wv);
                            }
                        }
                    }
                    let o = ((n * oh + oy) * ow + ox) * c.cout + co;
                    let mut v = act_ref(act, acc);
                    if let Some(r) = res {
                        v += f64::from(r[o]);
                    }
                    out[o] = v as f32;
                }
            }
        }
    }
    (out, [c.n, oh, ow, c.cout])
}

fn cases() -> Vec<Case> {
    let c = |n, h, w, cin, cout, k, stride, padding, groups| Case {
        n,
        h,
        w,
        cin,
        cout,
        k,
        stride,
        padding,
        groups,
    };
    vec![
        // Dense 3x3, TF SAME, odd sizes, out channels not a multiple of 4.
        c(1, 7, 9, 3, 5, [3, 3], [1, 1], Padding::Same, 1),
        // The EfficientNet stem: stride 2 SAME on odd and even sizes (asymmetric padding).
        c(2, 9, 8, 3, 8, [3, 3], [2, 2], Padding::Same, 1),
        // 5x5 with explicit asymmetric padding and unequal strides.
        c(
            1,
            11,
            6,
            6,
            7,
            [5, 3],
            [2, 1],
            Padding::Explicit([2, 1, 0, 1]),
            1,
        ),
        // VALID, rectangular kernel, wide row (several pixel blocks, a ragged last one).
        c(1, 5, 23, 4, 9, [2, 3], [1, 1], Padding::Valid, 1),
        // Grouped: 3 groups of 4 in / 5 out channels (a masked channel block inside every group).
        c(1, 6, 7, 12, 15, [3, 3], [1, 1], Padding::Same, 3),
        // Depthwise 3x3 and 5x5 at stride 2, channels not a multiple of 4.
        c(1, 8, 9, 6, 6, [3, 3], [2, 2], Padding::Same, 6),
        c(2, 9, 7, 13, 13, [5, 5], [1, 1], Padding::Same, 13),
        // Depthwise with a channel multiplier of 2.
        c(
            1,
            5,
            5,
            3,
            6,
            [3, 3],
            [1, 1],
            Padding::Explicit([1, 1, 1, 1]),
            3,
        ),
        // Pointwise (the matmul path) and a strided 1x1 (the conv path).
        c(1, 6, 5, 24, 10, [1, 1], [1, 1], Padding::Valid, 1),
        c(1, 7, 7, 8, 4, [1, 1], [2, 2], Padding::Same, 1),
    ]
}

async fn conv_cases() -> Result<()> {
    let gpu = gpu().await?;
    let acts = [
        None,
        Some(Activation::Relu6),
        Some(Activation::Relu),
        Some(Activation::Sigmoid),
    ];
    for dtype in dtypes(&gpu) {
        for (i, case) in cases().iter().enumerate() {
            let mut rng = Rng::new(i as u64 + 11);
            let mut x = rng.vec(case.n * case.h * case.w * case.cin);
            let cin_g = case.cin / case.groups;
            let mut w = rng.vec(case.cout * cin_g * case.k[0] * case.k[1]);
            let mut b = rng.vec(case.cout);
            let tx = upload(&gpu, dtype, &mut x, &[case.n, case.h, case.w, case.cin])?;
            let tw = upload(
                &gpu,
                dtype,
                &mut w,
                &[case.cout, cin_g, case.k[0], case.k[1]],
            )?;
            let tb = upload(&gpu, dtype, &mut b, &[case.cout])?;
            let conv = Conv2d {
                stride: case.stride,
                padding: case.padding,
                groups: case.groups,
            };
            // Plain, then bias + activation, then bias + activation + residual.
            let act = acts[i % acts.len()];
            let zero = vec![0f32; case.cout];
            let (want_plain, shape) = conv_ref(case, &x, &w, &zero, None, None);
            let mut r = rng.vec(want_plain.len());
            let tr = upload(&gpu, dtype, &mut r, &shape)?;
            let (want_act, _) = conv_ref(case, &x, &w, &b, act, None);
            let (want_res, _) = conv_ref(case, &x, &w, &b, act, Some(&r));
            // Both implementations where they apply (im2col: one group).
            let kernels: &[ConvKernel] = if case.groups == 1 {
                &[ConvKernel::Direct, ConvKernel::Im2col]
            } else {
                &[ConvKernel::Direct]
            };
            for &kernel in kernels {
                // A fresh output: a pooled one could hold the last kernel's answer.
                gpu.trim_pool();
                let mut rec = gpu.recorder();
                let epi = |bias, residual| ConvEpilogue {
                    bias,
                    activation: if bias.is_some() { act } else { None },
                    residual,
                };
                let plain = conv2d_with(&mut rec, &tx, &tw, &conv, epi(None, None), kernel)?;
                let with_act =
                    conv2d_with(&mut rec, &tx, &tw, &conv, epi(Some(&tb), None), kernel)?;
                let with_res =
                    conv2d_with(&mut rec, &tx, &tw, &conv, epi(Some(&tb), Some(&tr)), kernel)?;
                rec.submit();
                let (atol, rtol) = tol(dtype);
                for (name, t, want) in [
                    ("plain", &plain, &want_plain),
                    ("bias+act", &with_act, &want_act),
                    ("bias+act+residual", &with_res, &want_res),
                ] {
                    assert_eq!(t.shape(), shape, "case {i} {name}");
                    let what = format!("conv case {i} {name} {kernel:?} {dtype:?} act={act:?}");
                    assert_close(&what, &t.to_f32_vec().await?, want, atol, rtol);
                }
            }
        }
    }
    Ok(())
}
gpu_test!(conv2d_matches_reference, conv_cases);

async fn conv_errors() -> Result<()> {
    let gpu = gpu().await?;
    let x = Tensor::from_f32(&gpu, &[0.0; 2 * 4 * 4 * 6], &[2, 4, 4, 6])?;
    let w = Tensor::from_f32(&gpu, &[0.0; 4 * 3 * 3 * 3], &[4, 3, 3, 3])?;
    let mut rec = gpu.recorder();
    let same = Conv2d {
        stride: [1, 1],
        padding: Padding::Same,
        groups: 2,
    };
    // 6 channels in 2 groups is 3 per group: this weight fits; 4 groups does not divide 6.
    assert!(conv2d(&mut rec, &x, &w, &same, ConvEpilogue::default()).is_ok());
    for (conv, x_shape) in [
        (Conv2d { groups: 4, ..same }, vec![2, 4, 4, 6]),
        (Conv2d { groups: 1, ..same }, vec![2, 4, 4, 6]),
        (
            Conv2d {
                stride: [0, 1],
                ..same
            },
            vec![2, 4, 4, 6],
        ),
        (
            Conv2d {
                padding: Padding::Valid,
                ..same
            },
            vec![2, 2, 2, 6],
        ),
        (same, vec![4, 4, 6]),
    ] {
        let xx = x.reshape(&x_shape).unwrap_or_else(|_| {
            Tensor::from_f32(&gpu, &vec![0.0; x_shape.iter().product()], &x_shape).unwrap()
        });
        match conv2d(&mut rec, &xx, &w, &conv, ConvEpilogue::default()) {
            Err(Error::Shape {
                op: "conv2d",
                message,
            }) => assert!(!message.is_empty()),
            other => panic!("{conv:?} on {x_shape:?}: expected a shape error, got {other:?}"),
        }
    }
    Ok(())
}
gpu_test!(conv2d_refuses_bad_shapes, conv_errors);

async fn pooling_upsampling_concat() -> Result<()> {
    let gpu = gpu().await?;
    for dtype in dtypes(&gpu) {
        let (atol, rtol) = tol(dtype);
        let (n, h, w, c) = (2, 7, 5, 6);
        let mut rng = Rng::new(99);
        let mut x = rng.vec(n * h * w * c);
        let tx = upload(&gpu, dtype, &mut x, &[n, h, w, c])?;
        let mut y = rng.vec(n * h * w * 3);
        let ty = upload(&gpu, dtype, &mut y, &[n, h, w, 3])?;
        let mut rec = gpu.recorder();
        let gap = image::global_avg_pool(&mut rec, &tx)?;
        let ap = image::avg_pool2d(&mut rec, &tx, [3, 2], [2, 2], [1, 1])?;
        let up = image::upsample_nearest(&mut rec, &tx, [2, 3])?;
        let cat = image::concat_channels(&mut rec, &[&tx, &ty, &tx])?;
        rec.submit();
        let at = |b: usize, yy: usize, xx: usize, ch: usize| x[((b * h + yy) * w + xx) * c + ch];

        let mut want = Vec::new();
        for b in 0..n {
            for ch in 0..c {
                let s: f64 = (0..h * w).map(|i| f64::from(at(b, i / w, i % w, ch))).sum();
                want.push((s / (h * w) as f64) as f32);
            }
        }
        assert_eq!(gap.shape(), [n, c]);
        assert_close(
            "global_avg_pool",
            &gap.to_f32_vec().await?,
            &want,
            atol,
            rtol,
        );

        let (oh, ow) = ((h + 2 - 3) / 2 + 1, (w + 2 - 2) / 2 + 1);
        let mut want = Vec::new();
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ch in 0..c {
                        let (mut s, mut k) = (0f64, 0);
                        for ky in 0..3 {
                            for kx in 0..2 {
                                let (iy, ix) =
                                    ((oy * 2 + ky) as isize - 1, (ox * 2 + kx) as isize - 1);
                                if iy >= 0 && iy < h as isize && ix >= 0 && ix < w as isize {
                                    s += f64::from(at(b, iy as usize, ix as usize, ch));
                                    k += 1;
                                }
                            }
                        }
                        want.push((s / f64::from(k)) as f32);
                    }
                }
            }
        }
        assert_eq!(ap.shape(), [n, oh, ow, c]);
        assert_close("avg_pool2d", &ap.to_f32_vec().await?, &want, atol, rtol);

        let mut want = Vec::new();
        for b in 0..n {
            for oy in 0..h * 2 {
                for ox in 0..w * 3 {
                    for ch in 0..c {
                        want.push(at(b, oy / 2, ox / 3, ch));
                    }
                }
            }
        }
        assert_eq!(up.shape(), [n, h * 2, w * 3, c]);
        assert_close("upsample_nearest", &up.to_f32_vec().await?, &want, 0.0, 0.0);

        let mut want = Vec::new();
        for p in 0..n * h * w {
            want.extend_from_slice(&x[p * c..(p + 1) * c]);
            want.extend_from_slice(&y[p * 3..(p + 1) * 3]);
            want.extend_from_slice(&x[p * c..(p + 1) * c]);
        }
        assert_eq!(cat.shape(), [n, h, w, 2 * c + 3]);
        assert_close("concat_channels", &cat.to_f32_vec().await?, &want, 0.0, 0.0);
    }
    Ok(())
}
gpu_test!(
    pool_upsample_concat_match_reference,
    pooling_upsampling_concat
);

async fn batchnorm_folding() -> Result<()> {
    let gpu = gpu().await?;
    // conv then batch norm, against the folded conv: the same outputs.
    let case = Case {
        n: 1,
        h: 6,
        w: 5,
        cin: 4,
        cout: 7,
        k: [3, 3],
        stride: [1, 1],
        padding: Padding::Same,
        groups: 1,
    };
    let mut rng = Rng::new(5);
    let x = rng.vec(6 * 5 * 4);
    let w = rng.vec(7 * 4 * 9);
    let conv_bias = rng.vec(7);
    let gamma = rng.vec(7);
    let beta = rng.vec(7);
    let mean = rng.vec(7);
    let var: Vec<f32> = rng.vec(7).iter().map(|v| v.abs() + 0.1).collect();
    let eps = 1e-3f32;
    for with_bias in [false, true] {
        let bias0 = if with_bias {
            conv_bias.clone()
        } else {
            vec![0.0; 7]
        };
        let (raw, shape) = conv_ref(&case, &x, &w, &bias0, None, None);
        let want: Vec<f32> = raw
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let co = i % 7;
                let norm = (f64::from(v) - f64::from(mean[co]))
                    / (f64::from(var[co]) + f64::from(eps)).sqrt();
                (norm * f64::from(gamma[co]) + f64::from(beta[co])) as f32
            })
            .collect();
        let t = |v: &[f32], s: &[usize]| Tensor::from_f32(&gpu, v, s);
        let (tg, tb, tm, tv) = (
            t(&gamma, &[7])?,
            t(&beta, &[7])?,
            t(&mean, &[7])?,
            t(&var, &[7])?,
        );
        let tw = t(&w, &[7, 4, 3, 3])?;
        let tcb = t(&conv_bias, &[7])?;
        let mut rec = gpu.recorder();
        let bn = image::BatchNorm {
            gamma: &tg,
            beta: &tb,
            mean: &tm,
            var: &tv,
            eps,
        };
        let (fw, fb) = image::fold_batchnorm(&mut rec, &tw, with_bias.then_some(&tcb), &bn)?;
        let conv = Conv2d {
            stride: [1, 1],
            padding: Padding::Same,
            groups: 1,
        };
        let y = conv2d(
            &mut rec,
            &t(&x, &[1, 6, 5, 4])?,
            &fw,
            &conv,
            ConvEpilogue {
                bias: Some(&fb),
                ..Default::default()
            },
        )?;
        rec.submit();
        assert_eq!(y.shape(), shape);
        // The folded weights change the rounding order: a few f32 ulps of values up to ~30.
        assert_close(
            "folded batch norm",
            &y.to_f32_vec().await?,
            &want,
            1e-4,
            1e-4,
        );
    }
    Ok(())
}
gpu_test!(batchnorm_folds_into_conv, batchnorm_folding);

async fn rgba_packing_and_activations() -> Result<()> {
    let gpu = gpu().await?;
    let vals = [
        -3.0f32, 0.4, 0.5, 1.5, 254.6, 255.4, 300.0, 128.49, 17.0, 64.5, 2.5, 99.0,
    ];
    let x = Tensor::from_f32(&gpu, &vals, &[1, 2, 2, 3])?;
    let x4 = Tensor::from_f32(&gpu, &vals, &[1, 1, 3, 4])?;
    let mut rng = Rng::new(3);
    let a: Vec<f32> = rng.vec(1000).iter().map(|v| v * 9.0).collect();
    let ta = Tensor::from_f32(&gpu, &a, &[1000])?;
    let mut rec = gpu.recorder();
    let rgba = image::to_rgba8(&mut rec, &x)?;
    let rgba4 = image::to_rgba8(&mut rec, &x4)?;
    let outs = [Activation::Relu, Activation::Relu6, Activation::Sigmoid]
        .map(|f| (f, activation::activation(&mut rec, &ta, f)));
    rec.submit();
    // Round half to even (WGSL round), clamp to 0..255.
    let byte = |v: f32| v.round_ties_even().clamp(0.0, 255.0) as u32;
    let pack =
        |px: &[f32], alpha: u32| byte(px[0]) | byte(px[1]) << 8 | byte(px[2]) << 16 | alpha << 24;
    let want: Vec<i32> = vals.chunks(3).map(|p| pack(p, 255) as i32).collect();
    assert_eq!(rgba.to_i32_vec().await?, want);
    let want4: Vec<i32> = vals.chunks(4).map(|p| pack(p, byte(p[3])) as i32).collect();
    assert_eq!(rgba4.to_i32_vec().await?, want4);
    for (f, t) in outs {
        let want: Vec<f32> = a
            .iter()
            .map(|&v| act_ref(Some(f), v.into()) as f32)
            .collect();
        assert_close(
            &format!("{f:?}"),
            &t?.to_f32_vec().await?,
            &want,
            1e-6,
            1e-5,
        );
    }
    Ok(())
}
gpu_test!(rgba8_packing_and_relu_sigmoid, rgba_packing_and_activations);
