//! The image models end to end against their references: EfficientNet-Lite0 logits against the
//! PyTorch goldens (`scripts/goldens_efficientnet.py`: efficientnet-lite-pytorch after Pillow and
//! torchvision preprocess as the model was evaluated; six pictures, three of other sizes and aspects) and the RDN upscaler against @upscalerjs/esrgan-slim's own sample outputs (PSNR).
//! Natively the PNGs are decoded by the `png` crate and uploaded; in the browser they are decoded by
//! `createImageBitmap` and copied into the texture by `copyExternalImageToTexture`.
mod common;

use common::{gpu, log, read_asset};
use webgpu_infer::kernels::preprocess::GpuImage;
use webgpu_infer::models::efficientnet::Classifier;
use webgpu_infer::models::rdn::Upscaler;
use webgpu_infer::{Gpu, Result};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const EFFNET: &str = "models/efficientnet-lite0";
const RDN: &str = "models/esrgan-slim";

#[derive(serde::Deserialize)]
struct Goldens {
    images: Vec<GoldenImage>,
}

#[derive(serde::Deserialize)]
struct GoldenImage {
    image: String,
    logits: Vec<f32>,
    top5: Vec<Top>,
}

#[derive(serde::Deserialize)]
struct Top {
    index: usize,
    score: f32,
}

/// Decodes a PNG into RGBA8 (natively with the png crate).
#[cfg(not(target_arch = "wasm32"))]
fn decode_png(bytes: &[u8]) -> (Vec<u8>, u32, u32) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("png size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    buf.truncate(info.buffer_size());
    let rgba = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => panic!("test images are RGB or RGBA, got {other:?}"),
    };
    (rgba, info.width, info.height)
}

/// A model folder's `model.safetensors` through each target's loader: natively memory-mapped, in the
/// browser streamed from `fetch` of its URL (what a page does). Not `common::load_image`, whose
/// 7-byte chunks (for chunk-edge tests on small files) would keep the page's event loop busy for
/// tens of seconds on an 18 MB file, long enough for ChromeDriver to give up on the page.
async fn load_model(gpu: &Gpu, dir: &str) -> Result<webgpu_infer::bridge::Weights> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        webgpu_infer::bridge::native::load(gpu, dir.as_ref(), &mut |_| {})
    }
    #[cfg(target_arch = "wasm32")]
    {
        use webgpu_infer::bridge::web::{Source, load};
        let url = format!("/{dir}/model.safetensors");
        load(gpu, Source::Url(url), None, &mut |_| {}).await
    }
}

/// The image file as a texture, through each target's own path.
async fn image(gpu: &Gpu, path: &str) -> Result<GpuImage> {
    let bytes = read_asset(path).await;
    #[cfg(not(target_arch = "wasm32"))]
    {
        let (rgba, w, h) = decode_png(&bytes);
        GpuImage::from_rgba8(gpu, &rgba, w, h)
    }
    #[cfg(target_arch = "wasm32")]
    {
        let bitmap = common::web::image_bitmap(&bytes).await;
        webgpu_infer::web::image_from_bitmap(gpu, &bitmap)
    }
}

/// Pixels of a PNG as RGB bytes, for comparing outputs (decoded on the CPU on both targets: the png
/// crate natively, an OffscreenCanvas in the browser).
async fn rgb_pixels(path: &str) -> (Vec<u8>, u32, u32) {
    let bytes = read_asset(path).await;
    #[cfg(not(target_arch = "wasm32"))]
    let (rgba, w, h) = decode_png(&bytes);
    #[cfg(target_arch = "wasm32")]
    let (rgba, w, h) = common::web::decode_rgba(&bytes).await;
    (
        rgba.chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        w,
        h,
    )
}

/// One picture's classification against its golden: logits within [`LOGIT_ATOL`], the same top-5
/// classes, their scores within 1e-4.
fn check_golden(
    backend: &str,
    result: &webgpu_infer::models::efficientnet::Classification,
    g: &GoldenImage,
) {
    let max_diff = result
        .logits
        .iter()
        .zip(&g.logits)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    log(&format!(
        "{backend}: {}: top-1 {} ({:.4}), max |logit diff| vs PyTorch {max_diff:.2e}",
        g.image, result.top[0].label, result.top[0].score
    ));
    assert_eq!(result.logits.len(), 1000);
    assert!(
        max_diff <= LOGIT_ATOL,
        "{backend}: {}: logits differ by {max_diff}",
        g.image
    );
    let got: Vec<usize> = result.top.iter().map(|p| p.index).collect();
    let want: Vec<usize> = g.top5.iter().map(|t| t.index).collect();
    assert_eq!(got, want, "{backend}: {}: top-5 classes", g.image);
    for (p, t) in result.top.iter().zip(&g.top5) {
        assert!(
            (p.score - t.score).abs() < 1e-4,
            "{backend}: {}: score {} vs {}",
            g.image,
            p.score,
            t.score
        );
    }
}

// Tolerance: logits within 2e-4 of PyTorch's. The goldens' preprocessing is Pillow + torchvision
// (scripts/goldens_efficientnet.py), ours the GPU kernel; both compute in f32, and the remaining
// differences are summation order in the resize (up to ~100 taps a pixel) and over up to 1152 terms
// per output across 65 layers: measured max 1.0e-5 on lavapipe (2026-12-04, the antialiased Hubble
// strip the largest), so 20× that. A wrong tap, crop offset or filter moves logits by ≥ 1e-2.
const LOGIT_ATOL: f32 = 2e-4;

async fn classifier_matches_pytorch() -> Result<()> {
    let gpu = gpu().await?;
    let goldens: Goldens =
        serde_json::from_slice(&read_asset("tests/goldens/efficientnet_lite0.json").await).unwrap();
    let config = read_asset(&format!("{EFFNET}/config.json")).await;
    let weights = load_model(&gpu, EFFNET).await?;
    let classifier = Classifier::new(&gpu, &weights, &config)?;
    drop(weights);
    for g in &goldens.images {
        let img = image(&gpu, &format!("tests/fixtures/images/{}", g.image)).await?;
        let result = classifier.classify(&img, 5).await?;
        check_golden("gpu", &result, g);
    }
    Ok(())
}
gpu_test!(
    efficientnet_lite0_matches_pytorch_goldens,
    classifier_matches_pytorch
);

/// The PNG's pixels as RGBA8 (the png crate natively, an OffscreenCanvas in the browser).
async fn rgba_pixels(path: &str) -> (Vec<u8>, u32, u32) {
    let bytes = read_asset(path).await;
    #[cfg(not(target_arch = "wasm32"))]
    return decode_png(&bytes);
    #[cfg(target_arch = "wasm32")]
    return common::web::decode_rgba(&bytes).await;
}

/// The same goldens and bounds on the CPU backend (the same network code over `VisionOps for Cpu`;
/// preprocessing by `cpu::image::preprocess`, the GPU kernel's computation on the host): its sums
/// run in another order again (the sgemm's blocks, im2col for the stem).
async fn cpu_classifier_matches_pytorch() -> Result<()> {
    use webgpu_infer::cpu::Cpu;
    let cpu = Cpu::new();
    let goldens: Goldens =
        serde_json::from_slice(&read_asset("tests/goldens/efficientnet_lite0.json").await).unwrap();
    #[cfg(not(target_arch = "wasm32"))]
    let classifier = Classifier::from_dir_cpu(&cpu, EFFNET.as_ref())?;
    #[cfg(target_arch = "wasm32")]
    let classifier = {
        let weights = webgpu_infer::bridge::web::load_host(
            &cpu,
            webgpu_infer::bridge::web::Source::Url(format!("/{EFFNET}/model.safetensors")),
            None,
            &mut |_| {},
        )
        .await?;
        let config = read_asset(&format!("{EFFNET}/config.json")).await;
        Classifier::new_cpu(&cpu, &weights, &config)?
    };
    assert_eq!(classifier.backend(), "cpu");
    // The weights stay in host memory, counted while the classifier lives.
    assert!(cpu.stats().host_weight_bytes > 0);
    for g in &goldens.images {
        let (rgba, w, h) = rgba_pixels(&format!("tests/fixtures/images/{}", g.image)).await;
        let result = classifier.classify_rgba(&rgba, w, h, 5).await?;
        check_golden("cpu", &result, g);
    }
    // Bad pixels: a typed error naming what was wrong.
    let err = classifier
        .classify_rgba(&[0; 10], 2, 2, 5)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("RGBA"), "{err}");
    Ok(())
}
gpu_test!(
    efficientnet_lite0_on_the_cpu_matches_pytorch_goldens,
    cpu_classifier_matches_pytorch
);

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-12)).log10()
}

async fn upscaler_matches_package_samples() -> Result<()> {
    let gpu = gpu().await?;
    let input = image(&gpu, &format!("{RDN}/samples/fixture.png")).await?;
    for scale in [2, 4] {
        let dir = format!("{RDN}/x{scale}");
        let config = read_asset(&format!("{dir}/config.json")).await;
        let weights = load_model(&gpu, &dir).await?;
        // A small tile size, so the tiled path (with its overlapping context) is what is checked.
        let upscaler = Upscaler::new(&gpu, &weights, &config)?.with_tile(48);
        let out = upscaler.upscale(&input).await?;
        let (want, w, h) = rgb_pixels(&format!("{RDN}/samples/{scale}x.png")).await;
        assert_eq!((out.width, out.height), (w, h), "x{scale} output size");
        let got: Vec<u8> = out
            .rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        let db = psnr(&got, &want);
        log(&format!(
            "x{scale}: {w}x{h}, PSNR vs the package's sample {db:.1} dB"
        ));
        // Measured 98.1 / 98.6 dB (lavapipe and SwiftShader alike): 88 dB is ten times that error's
        // power; a wrong tap, weight or tile seam costs tens of dB.
        assert!(db >= 88.0, "x{scale}: PSNR {db:.1} dB below 88");
    }
    Ok(())
}
gpu_test!(
    rdn_upscaler_matches_esrgan_slim_samples,
    upscaler_matches_package_samples
);

/// The same samples and bound on the CPU backend (the same network code over `VisionOps for Cpu`;
/// tiles cropped from the pixels on the host, packed into RGBA8 on the host), tiled at 48 as above
/// and also whole (one tile): the tiles' context must make the seams vanish.
async fn cpu_upscaler_matches_package_samples() -> Result<()> {
    use webgpu_infer::cpu::Cpu;
    let cpu = Cpu::new();
    let (rgba, iw, ih) = rgba_pixels(&format!("{RDN}/samples/fixture.png")).await;
    for scale in [2, 4] {
        let dir = format!("{RDN}/x{scale}");
        let config = read_asset(&format!("{dir}/config.json")).await;
        #[cfg(not(target_arch = "wasm32"))]
        let weights = cpu.load(std::path::Path::new(&format!("{dir}/model.safetensors")))?;
        #[cfg(target_arch = "wasm32")]
        let weights = webgpu_infer::bridge::web::load_host(
            &cpu,
            webgpu_infer::bridge::web::Source::Url(format!("/{dir}/model.safetensors")),
            None,
            &mut |_| {},
        )
        .await?;
        let upscaler = Upscaler::new_cpu(&cpu, &weights, &config)?.with_tile(48);
        assert_eq!(upscaler.backend(), "cpu");
        let (want, w, h) = rgb_pixels(&format!("{RDN}/samples/{scale}x.png")).await;
        let rgb = |out: &webgpu_infer::models::rdn::UpscaledImage| -> Vec<u8> {
            assert_eq!((out.width, out.height), (w, h), "x{scale} output size");
            out.rgba
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect()
        };
        let tiled = rgb(&upscaler.upscale_rgba(&rgba, iw, ih).await?);
        let db = psnr(&tiled, &want);
        let whole = upscaler.with_tile(iw.max(ih) as usize);
        let untiled = rgb(&whole.upscale_rgba(&rgba, iw, ih).await?);
        let seams = tiled
            .iter()
            .zip(&untiled)
            .map(|(&a, &b)| a.abs_diff(b))
            .max();
        log(&format!(
            "cpu x{scale}: {w}x{h}, PSNR vs the package's sample {db:.1} dB; tiled vs whole: max \
             difference {seams:?}"
        ));
        // The GPU's bound (its sums run in the sgemm's order here); the tiled and untiled outputs
        // may differ by one step of rounding where a sum lands near a half.
        assert!(db >= 88.0, "cpu x{scale}: PSNR {db:.1} dB below 88");
        assert!(
            seams <= Some(1),
            "cpu x{scale}: tiles differ from the whole by {seams:?}"
        );
        if scale == 2 {
            // Bad pixels and GPU-only calls: typed errors naming what was wrong.
            let err = whole.upscale_rgba(&[0; 10], 2, 2).await.unwrap_err();
            assert!(err.to_string().contains("RGBA"), "{err}");
        }
    }
    Ok(())
}
gpu_test!(
    rdn_upscaler_on_the_cpu_matches_esrgan_slim_samples,
    cpu_upscaler_matches_package_samples
);

/// The preprocessing fields of EfficientNet's `config.json`: defaults as the model was evaluated, the
/// size of the antialiasing switch, and clear errors for values the kernel cannot honour.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn classifier_config_sets_preprocessing() {
    use webgpu_infer::kernels::preprocess::{Crop, Interpolation};
    use webgpu_infer::models::efficientnet::Config;
    let base = std::fs::read_to_string(format!("{EFFNET}/config.json")).expect("config.json");
    let mut json: serde_json::Value = serde_json::from_str(&base).unwrap();
    let obj = json.as_object_mut().unwrap();
    for key in ["crop_pct", "interpolation", "antialias", "channel_order"] {
        obj.remove(key);
    }
    let with = |extra: serde_json::Value| -> webgpu_infer::Result<Config> {
        let mut j = json.clone();
        for (k, v) in extra.as_object().unwrap() {
            j[k] = v.clone();
        }
        Config::from_json("config.json", j.to_string().as_bytes())
    };
    let c = with(serde_json::json!({})).expect("defaults");
    assert_eq!((c.crop_pct, c.interpolation.as_str()), (0.875, "bicubic"));
    assert_eq!(c.interpolation_mode(), Ok(Interpolation::Bicubic));
    assert_eq!(c.channel_order, "rgb");
    assert!(with(serde_json::json!({"interpolation": "nearest", "antialias": false})).is_ok());
    for bad in [
        serde_json::json!({"crop_pct": 0.0}),
        serde_json::json!({"crop_pct": 1.5}),
        serde_json::json!({"interpolation": "lanczos"}),
        serde_json::json!({"antialias": "sometimes"}),
        serde_json::json!({"channel_order": "grb"}),
    ] {
        let err = with(bad.clone()).expect_err("refused");
        let msg = err.to_string();
        let key = bad.as_object().unwrap().keys().next().unwrap().clone();
        assert!(msg.contains(&key), "{bad}: {msg}");
    }
    // The crop and the antialiasing switch as a Classifier computes them (TF's central crop; on when
    // the square exceeds 2 × 224 = 448); the goldens record the same rectangles.
    assert_eq!(
        Crop::CenterFraction(0.875).rect(741, 500),
        [152, 32, 437, 437]
    );
    assert_eq!(
        Crop::CenterFraction(0.875).rect(520, 872),
        [33, 209, 455, 455]
    );
}
