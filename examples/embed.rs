//! Sentence embeddings from the command line.
//!
//! ```sh
//! cargo run --release --example embed -- --model models/all-MiniLM-L6-v2 "A man is eating food." "Hello"
//! echo "one text per line" | cargo run --release --example embed -- --model models/all-MiniLM-L6-v2 --json
//! ```
//! Prints `{"model","adapter","dims","max_seq_length","tokens","truncated","embeddings":[[...], ...]}`
//! with `--json`; otherwise a line per text with its token count and first values.
//! `--bench [BATCH]x[SEQ]` (default 8x128) prints instead
//! `{"op":"embed","model","batch","seq","ms","texts_per_s","adapter"}`, the median of 10 runs after a
//! warm-up, for texts of exactly SEQ tokens. `--checked` turns WebGPU's runtime shader checks on, as
//! browsers always do; `--no-subgroups` leaves subgroups off, as browsers offer none today;
//! `--web-like` is both, and no tensor cores: the kernels a page runs. `--profile` (with `--bench`)
//! adds the GPU time of each kernel in one forward pass, a JSON line each, most first.
//! `--backend cpu` runs the encoder on the CPU backend instead (rayon's threads; `RAYON_NUM_THREADS`
//! sets how many), `"adapter": "cpu (N threads)"`.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    if let Err(e) = pollster::block_on(run()) {
        eprintln!("embed: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_arch = "wasm32"))]
async fn run() -> webgpu_infer::Result<()> {
    use std::io::BufRead;
    use webgpu_infer::{Error, Gpu, models::embedder::Embedder};

    let mut args = std::env::args().skip(1);
    let (mut model, mut json, mut texts, mut bench) = (None, false, Vec::new(), None);
    let mut checked = false;
    let (mut subgroups, mut coop, mut profile) = (true, true, false);
    let mut backend = String::from("gpu");
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = args.next(),
            "--json" => json = true,
            "--bench" => bench = Some(args.next().unwrap_or_else(|| "8x128".into())),
            "--checked" => checked = true,
            "--no-subgroups" => subgroups = false,
            "--no-coop" => coop = false,
            "--web-like" => (checked, subgroups, coop) = (true, false, false),
            "--profile" => profile = true,
            "--backend" => backend = args.next().unwrap_or_default(),
            "-h" | "--help" => {
                println!(
                    "embed --model DIR [--json] [TEXT ...]   (texts from stdin, one a line, when none given)\n\
                     \x20     [--bench BATCHxSEQ] [--backend gpu|cpu] [--profile] [--checked] [--no-subgroups]\n\
                     \x20     [--no-coop: no tensor cores, f32 linears] [--web-like]"
                );
                return Ok(());
            }
            _ => texts.push(a),
        }
    }
    let model = model.ok_or_else(|| {
        Error::Input("--model DIR is required (a sentence-transformers folder)".into())
    })?;
    if backend == "cpu" {
        let cpu = webgpu_infer::cpu::Cpu::new();
        let embedder = Embedder::from_dir_cpu(&cpu, model.as_ref())?;
        let shape = bench.ok_or_else(|| Error::Input("--backend cpu goes with --bench".into()))?;
        let adapter = format!("cpu ({} threads)", cpu.threads());
        return run_bench(None, &adapter, &embedder, &model, &shape, false).await;
    } else if backend != "gpu" {
        return Err(Error::Input(format!(
            "--backend takes cpu or gpu, not {backend:?}"
        )));
    }
    // --checked: WebGPU's runtime shader checks on, as in browsers.
    let gpu = Gpu::with_options(&webgpu_infer::GpuOptions {
        unchecked_shaders: !checked,
        allow_subgroups: subgroups,
        allow_cooperative_matrix: coop,
        ..Default::default()
    })
    .await?;
    let embedder = Embedder::from_dir(&gpu, model.as_ref())?;
    if let Some(shape) = bench {
        return run_bench(
            Some(&gpu),
            &gpu.adapter_name(),
            &embedder,
            &model,
            &shape,
            profile,
        )
        .await;
    }
    if texts.is_empty() {
        texts = std::io::stdin()
            .lock()
            .lines()
            .map_while(|l| l.ok())
            .collect();
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let out = embedder.embed(&refs).await?;
    if json {
        let value = serde_json::json!({
            "model": model,
            "adapter": gpu.adapter_name(),
            "dims": out.dims,
            "tensor_cores": embedder.uses_tensor_cores(),
            "max_seq_length": embedder.max_seq_length(),
            "tokens": out.tokens,
            "truncated": out.truncated,
            "embeddings": out.vectors,
        });
        println!("{value}");
    } else {
        for ((text, v), n) in texts.iter().zip(&out.vectors).zip(&out.tokens) {
            let head: Vec<String> = v.iter().take(4).map(|x| format!("{x:.4}")).collect();
            println!("{n:>4} tokens  [{}, ...]  {text}", head.join(", "));
        }
    }
    Ok(())
}

/// Median latency of embedding `batch` texts of exactly `seq` tokens (special tokens included).
#[cfg(not(target_arch = "wasm32"))]
async fn run_bench(
    gpu: Option<&webgpu_infer::Gpu>,
    adapter: &str,
    embedder: &webgpu_infer::models::embedder::Embedder,
    model: &str,
    shape: &str,
    profile: bool,
) -> webgpu_infer::Result<()> {
    use webgpu_infer::Error;
    let parse = |s: Option<&str>| s.and_then(|v| v.parse::<usize>().ok());
    let mut it = shape.split('x');
    let (Some(batch), Some(seq)) = (parse(it.next()), parse(it.next())) else {
        return Err(Error::Input(format!(
            "--bench takes BATCHxSEQ, e.g. 8x128, not {shape:?}"
        )));
    };
    // "word " is one token in MiniLM's vocabulary: seq - 2 of them, plus [CLS] and [SEP].
    let text = "word ".repeat(seq.saturating_sub(2));
    let (ids, _) = embedder.tokenize(&text)?;
    if ids.len() != seq {
        return Err(Error::Input(format!(
            "the probe text is {} tokens, not {seq}",
            ids.len()
        )));
    }
    let texts: Vec<&str> = vec![text.as_str(); batch];
    embedder.embed(&texts).await?;
    let mut times = Vec::new();
    for _ in 0..10 {
        let start = std::time::Instant::now();
        embedder.embed(&texts).await?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let ms = times[times.len() / 2];
    let mut line = serde_json::json!({
        "op": "embed", "model": model, "batch": batch, "seq": seq, "ms": ms,
        "texts_per_s": batch as f64 / (ms / 1e3), "adapter": adapter,
        "backend": embedder.backend(),
    });
    if let Some(gpu) = gpu {
        line["shader_checks"] = (!gpu.unchecked_shaders()).into();
        line["subgroups"] = gpu.capabilities().subgroups.into();
        line["tensor_cores"] = embedder.uses_tensor_cores().into();
    }
    println!("{line}");
    if let (Some(gpu), true) = (gpu, profile) {
        gpu.set_profiling(true)?;
        let done = embedder.embed(&texts).await;
        gpu.set_profiling(false)?;
        done?;
        let kernels = gpu.take_profile().await?;
        let total: f64 = kernels.iter().map(|k| k.ms).sum();
        for k in kernels {
            let line = serde_json::json!({
                "op": "profile", "phase": "embed", "batch": batch, "seq": seq, "kernel": k.kernel,
                "dispatches": k.dispatches, "gpu_ms": k.ms, "share": k.ms / total.max(1e-12),
                "shader_checks": !gpu.unchecked_shaders(), "subgroups": gpu.capabilities().subgroups,
                "adapter": gpu.adapter_name(),
            });
            println!("{line}");
        }
    }
    Ok(())
}
