//! Image models from the command line: classify a picture, upscale one, or benchmark both.
//!
//! ```sh
//! cargo run --release --example images -- classify --model models/efficientnet-lite0 tests/fixtures/images/cat.png
//! cargo run --release --example images -- upscale --model models/esrgan-slim/x2 in.png --out out.png
//! cargo run --release --example images -- bench --classifier models/efficientnet-lite0 --upscaler models/esrgan-slim/x2
//! ```
//! `bench` prints JSON lines `{"op":"classify","model","image","ms","images_per_s","adapter"}` (the
//! whole call: preprocessing on the GPU, the network, reading the logits) and
//! `{"op":"upscale","model","input","output","ms","images_per_s","megapixels_per_s","adapter"}` (GPU
//! time to the RGBA8 result, not read back; on the CPU backend pixels in, pixels out), medians of
//! several runs after a warm-up; `--backend cpu` runs both models on the CPU backend. PNG input only.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    if let Err(e) = pollster::block_on(run()) {
        eprintln!("images: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn decode_png(path: &str) -> webgpu_infer::Result<(Vec<u8>, u32, u32)> {
    use webgpu_infer::Error;
    let bad = |m: String| Error::Input(format!("{path}: {m}"));
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| bad(format!("not a PNG: {e}")))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| bad("image too large".into()))?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(e.to_string()))?;
    buf.truncate(info.buffer_size());
    let rgba = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Indexed => return Err(bad("indexed PNG was not expanded".into())),
    };
    Ok((rgba, info.width, info.height))
}

#[cfg(not(target_arch = "wasm32"))]
async fn run() -> webgpu_infer::Result<()> {
    use std::path::Path;
    use webgpu_infer::kernels::preprocess::GpuImage;
    use webgpu_infer::models::{efficientnet::Classifier, rdn::Upscaler};
    use webgpu_infer::{Error, Gpu};

    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let positional: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|&(i, a)| !a.starts_with("--") && (i == 0 || !args[i - 1].starts_with("--")))
        .map(|(_, a)| a)
        .collect();
    let usage = "images classify --model DIR IMAGE.png [--top K] [--backend gpu|cpu] | upscale --model DIR IMAGE.png --out OUT.png [--backend gpu|cpu] | \
                 bench [--classifier DIR] [--upscaler DIR] [--sizes 64,128,256] [--backend gpu|cpu]";
    // The models' backend (the CPU backend: weights in host memory, rayon's threads).
    let backend = flag("--backend").unwrap_or_else(|| "gpu".into());
    if !matches!(backend.as_str(), "gpu" | "cpu") {
        return Err(Error::Input(format!(
            "--backend takes gpu or cpu, not {backend:?}"
        )));
    }
    let cpu = webgpu_infer::cpu::Cpu::new();
    let load_classifier = |gpu: &Gpu, dir: &str| {
        if backend == "cpu" {
            Classifier::from_dir_cpu(&cpu, Path::new(dir))
        } else {
            Classifier::from_dir(gpu, Path::new(dir))
        }
    };
    let load_upscaler = |gpu: &Gpu, dir: &str| {
        if backend == "cpu" {
            Upscaler::from_dir_cpu(&cpu, Path::new(dir))
        } else {
            Upscaler::from_dir(gpu, Path::new(dir))
        }
    };
    let Some(command) = positional.first() else {
        println!("{usage}");
        return Ok(());
    };
    let gpu = Gpu::new().await?;
    match command.as_str() {
        "classify" => {
            let model =
                flag("--model").ok_or_else(|| Error::Input("--model DIR is required".into()))?;
            let top: usize = flag("--top").and_then(|v| v.parse().ok()).unwrap_or(5);
            let classifier = load_classifier(&gpu, &model)?;
            for path in &positional[1..] {
                let (rgba, w, h) = decode_png(path)?;
                let result = classifier.classify_rgba(&rgba, w, h, top).await?;
                let top: Vec<_> = result
                    .top
                    .iter()
                    .map(|p| serde_json::json!({"index": p.index, "label": p.label, "score": p.score}))
                    .collect();
                println!("{}", serde_json::json!({"image": path, "top": top}));
            }
        }
        "upscale" => {
            let model =
                flag("--model").ok_or_else(|| Error::Input("--model DIR is required".into()))?;
            let out =
                flag("--out").ok_or_else(|| Error::Input("--out OUT.png is required".into()))?;
            let path = positional
                .get(1)
                .ok_or_else(|| Error::Input(usage.into()))?;
            let upscaler = load_upscaler(&gpu, &model)?;
            let (rgba, w, h) = decode_png(path)?;
            let result = upscaler.upscale_rgba(&rgba, w, h).await?;
            let file =
                std::fs::File::create(&out).map_err(|e| Error::Input(format!("{out}: {e}")))?;
            let mut encoder =
                png::Encoder::new(std::io::BufWriter::new(file), result.width, result.height);
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder
                .write_header()
                .map_err(|e| Error::Input(e.to_string()))?;
            writer
                .write_image_data(&result.rgba)
                .map_err(|e| Error::Input(e.to_string()))?;
            eprintln!(
                "{path} ({w}x{h}) -> {out} ({}x{})",
                result.width, result.height
            );
        }
        "bench" => {
            let adapter = gpu.adapter_name();
            let median = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            if let Some(dir) = flag("--classifier") {
                let classifier = load_classifier(&gpu, &dir)?;
                let (rgba, w, h) = decode_png("tests/fixtures/images/cat.png")?;
                // GPU: the texture uploaded once; CPU: from the pixels each time (as a page does).
                let image = GpuImage::from_rgba8(&gpu, &rgba, w, h)?;
                let once = async || -> webgpu_infer::Result<f64> {
                    let t0 = std::time::Instant::now();
                    if backend == "cpu" {
                        classifier.classify_rgba(&rgba, w, h, 5).await?;
                    } else {
                        classifier.classify(&image, 5).await?;
                    }
                    Ok(t0.elapsed().as_secs_f64() * 1e3)
                };
                once().await?;
                let mut runs = Vec::new();
                for _ in 0..10 {
                    runs.push(once().await?);
                }
                let ms = median(runs);
                let adapter = if backend == "cpu" {
                    format!("cpu ({} threads)", cpu.threads())
                } else {
                    adapter.clone()
                };
                println!(
                    "{}",
                    serde_json::json!({"op": "classify", "model": dir, "image": format!("{w}x{h}"),
                        "ms": ms, "images_per_s": 1e3 / ms, "backend": backend, "adapter": adapter})
                );
            }
            if let Some(dir) = flag("--upscaler") {
                let upscaler = load_upscaler(&gpu, &dir)?;
                let sizes: Vec<u32> = flag("--sizes")
                    .unwrap_or_else(|| "64,128,256".into())
                    .split(',')
                    .filter_map(|s| s.parse().ok())
                    .collect();
                for size in sizes {
                    let rgba: Vec<u8> =
                        (0..size * size * 4).map(|i| (i * 37 % 251) as u8).collect();
                    let image = GpuImage::from_rgba8(&gpu, &rgba, size, size)?;
                    // GPU: to the RGBA8 result on the GPU; CPU: pixels in, pixels out.
                    let once = async || -> webgpu_infer::Result<f64> {
                        let t0 = std::time::Instant::now();
                        if backend == "cpu" {
                            upscaler.upscale_rgba(&rgba, size, size).await?;
                        } else {
                            let _out = upscaler.upscale_to_gpu(&image)?;
                            gpu.sync().await?;
                        }
                        Ok(t0.elapsed().as_secs_f64() * 1e3)
                    };
                    once().await?;
                    let mut runs = Vec::new();
                    for _ in 0..5 {
                        runs.push(once().await?);
                    }
                    let ms = median(runs);
                    let s = upscaler.scale() as u32;
                    println!(
                        "{}",
                        serde_json::json!({"op": "upscale", "model": dir, "input": format!("{size}x{size}"),
                        "output": format!("{}x{}", size * s, size * s), "ms": ms,
                        "images_per_s": 1e3 / ms,
                        "megapixels_per_s": f64::from(size * s * size * s) / (ms * 1e3),
                        "backend": backend, "adapter": if backend == "cpu" {
                            format!("cpu ({} threads)", cpu.threads())
                        } else {
                            adapter.clone()
                        }})
                    );
                }
            }
        }
        other => return Err(Error::Input(format!("unknown command {other:?}: {usage}"))),
    }
    Ok(())
}
