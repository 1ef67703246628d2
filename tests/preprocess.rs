//! Image preprocessing (`kernels::preprocess::image_to_tensor`: crop, resize, normalise, on the GPU)
//! against a CPU port of PyTorch's `F.interpolate(size=..., align_corners=False)` written here from
//! its C++ (upsample_bilinear2d, upsample_bicubic2d, upsample_nearest2d and the `_aa` antialiased
//! kernels, which follow Pillow), on random images, downscaling and upscaling, every crop. The port was
//! checked once against torch 2.15.0 itself on these very images (both it and the GPU within 1.1e-5 of
//! `F.interpolate` on every case, 2026-12-04).
mod common;

use common::{Rng, assert_close, gpu};
use webgpu_infer::kernels::preprocess::{
    Crop, GpuImage, Interpolation, Preprocess, image_to_tensor,
};
use webgpu_infer::{DType, Error, Result};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Keys' cubic convolution kernel.
fn cubic(x: f64, a: f64) -> f64 {
    let t = x.abs();
    if t < 1.0 {
        ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
    } else if t < 2.0 {
        ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
    } else {
        0.0
    }
}

/// For each output index along one axis: (source index, weight) pairs, as PyTorch computes them.
fn taps(
    mode: Interpolation,
    antialias: bool,
    input: usize,
    output: usize,
) -> Vec<Vec<(usize, f64)>> {
    let scale32 = input as f32 / output as f32;
    let clamp = |i: i64| i.clamp(0, input as i64 - 1) as usize;
    (0..output)
        .map(|o| {
            if antialias && mode != Interpolation::Nearest {
                // _compute_indices_min_size_weights_aa (Pillow's precompute_coeffs).
                let scale = f64::from(scale32);
                let half = if mode == Interpolation::Bicubic {
                    2.0
                } else {
                    1.0
                };
                let (support, inv) = if scale >= 1.0 {
                    (half * scale, 1.0 / scale)
                } else {
                    (half, 1.0)
                };
                let filter = |x: f64| {
                    if mode == Interpolation::Bicubic {
                        cubic(x, -0.5)
                    } else {
                        (1.0 - x.abs()).max(0.0)
                    }
                };
                let center = scale * (o as f64 + 0.5);
                let lo = ((center - support + 0.5) as i64).max(0);
                let hi = ((center + support + 0.5) as i64).min(input as i64);
                let w: Vec<(usize, f64)> = (lo..hi)
                    .map(|j| (j as usize, filter((j as f64 - center + 0.5) * inv)))
                    .collect();
                let total: f64 = w.iter().map(|t| t.1).sum();
                return w.into_iter().map(|(j, v)| (j, v / total)).collect();
            }
            match mode {
                Interpolation::Bilinear => {
                    let s = (scale32 * (o as f32 + 0.5) - 0.5).max(0.0);
                    let i0 = s as usize;
                    let i1 = (i0 + 1).min(input - 1);
                    let l1 = f64::from(s - i0 as f32);
                    vec![(i0, 1.0 - l1), (i1, l1)]
                }
                Interpolation::Bicubic => {
                    let s = scale32 * (o as f32 + 0.5) - 0.5;
                    let f = s.floor();
                    let t = f64::from(s - f);
                    let w = [
                        cubic(t + 1.0, -0.75),
                        cubic(t, -0.75),
                        cubic(1.0 - t, -0.75),
                        cubic(2.0 - t, -0.75),
                    ];
                    (0..4)
                        .map(|k| (clamp(f as i64 - 1 + k as i64), w[k]))
                        .collect()
                }
                Interpolation::Nearest => {
                    vec![(((o as f32 * scale32).floor() as usize).min(input - 1), 1.0)]
                }
            }
        })
        .collect()
}

/// The model input on the CPU: crop `[x, y, w, h]` of an RGBA8 image, resize to `[oh, ow]` along x
/// then y (as PyTorch's separable kernels do), normalise.
fn reference(rgba: &[u8], width: usize, pre: &Preprocess, crop: [usize; 4]) -> Vec<f32> {
    let [cx, cy, cw, ch] = crop;
    let [oh, ow] = pre.size.map(|v| v as usize);
    // Channel c of the model's input reads this channel of the picture.
    let order = if pre.bgr { [2, 1, 0] } else { [0, 1, 2] };
    let tx = taps(pre.interpolation, pre.antialias, cw, ow);
    let ty = taps(pre.interpolation, pre.antialias, ch, oh);
    let px =
        |x: usize, y: usize, c: usize| f64::from(rgba[((cy + y) * width + cx + x) * 4 + c]) / 255.0;
    let mut out = Vec::with_capacity(oh * ow * 3);
    for row in &ty {
        for col in &tx {
            for ((src, mean), std) in order.iter().zip(pre.mean).zip(pre.std) {
                let v: f64 = row
                    .iter()
                    .map(|&(y, wy)| {
                        wy * col.iter().map(|&(x, wx)| wx * px(x, y, *src)).sum::<f64>()
                    })
                    .sum();
                out.push(((v - f64::from(mean)) / f64::from(std)) as f32);
            }
        }
    }
    out
}

async fn preprocessing_matches_pytorch_body() -> Result<()> {
    let gpu = gpu().await?;
    let (w, h) = (41usize, 29usize);
    let mut rng = Rng::new(19);
    let rgba: Vec<u8> = (0..w * h * 4)
        .map(|_| ((rng.next_f32() + 1.0) * 127.9) as u8)
        .collect();
    let image = GpuImage::from_rgba8(&gpu, &rgba, w as u32, h as u32)?;
    let modes = [
        (Interpolation::Bilinear, false),
        (Interpolation::Bicubic, false),
        (Interpolation::Nearest, false),
        (Interpolation::Bilinear, true),
        (Interpolation::Bicubic, true),
    ];
    // (crop, its rectangle computed here: TensorFlow's central crop for the fraction), output sizes
    // that downscale by ~3.5× (antialiasing matters), by < 2×, and upscale.
    let s = (0.875f64 * 29.0).floor() as usize; // 25
    let crops = [
        (Crop::Full, [0, 0, w, h]),
        (Crop::CenterSquare, [(w - h) / 2, 0, h, h]),
        (
            Crop::CenterFraction(0.875),
            [(w - s).div_ceil(2), (h - s).div_ceil(2), s, s], // TF: (d + 1) // 2
        ),
        (Crop::Rect([3, 5, 17, 11]), [3, 5, 17, 11]),
    ];
    for (i, (interpolation, antialias)) in modes.into_iter().enumerate() {
        for (j, (crop, rect)) in crops.into_iter().enumerate() {
            for size in [[8u32, 7u32], [19, 23], [37, 53]] {
                let pre = Preprocess {
                    size,
                    crop,
                    mean: [0.485, 0.456, 0.406],
                    std: [0.229, 0.224, 0.225],
                    interpolation,
                    antialias,
                    // Half the cases take the channels blue, green, red.
                    bgr: (i + j) % 2 == 1,
                };
                let mut rec = gpu.recorder();
                let t = image_to_tensor(&mut rec, &image, &pre, DType::F32)?;
                rec.submit();
                assert_eq!(t.shape(), [1, size[0] as usize, size[1] as usize, 3]);
                let want = reference(&rgba, w, &pre, rect);
                // f32 sums of up to ~100 weighted texels of 0..1, divided by std ≈ 0.22: ≤ ~1e-5; the
                // bound is 1e-4 absolute.
                let what = format!(
                    "{interpolation:?} antialias {antialias} bgr {} {crop:?} -> {size:?}",
                    pre.bgr
                );
                assert_close(&what, &t.to_f32_vec().await?, &want, 1e-4, 1e-5);
            }
        }
    }
    // Refused: a fraction outside (0, 1], a crop outside the image.
    for crop in [
        Crop::CenterFraction(0.0),
        Crop::CenterFraction(1.5),
        Crop::Rect([30, 0, 20, 5]),
    ] {
        let pre = Preprocess {
            size: [4, 4],
            crop,
            mean: [0.0; 3],
            std: [1.0; 3],
            interpolation: Interpolation::Bicubic,
            antialias: true,
            bgr: false,
        };
        let mut rec = gpu.recorder();
        let err = image_to_tensor(&mut rec, &image, &pre, DType::F32).unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{crop:?}: {err}");
    }
    gpu.check()
}
gpu_test!(
    preprocessing_matches_pytorch,
    preprocessing_matches_pytorch_body
);
