//! Text generation from the command line, with a LLaMA-family model (a GGUF file or a Hugging Face
//! folder).
//!
//! ```sh
//! cargo run --release --example generate -- --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
//!     --prompt "What is the capital of France?" --chat --max-tokens 64
//! ```
//! Streams the text to stdout. With `--json` prints instead
//! `{"prompt_ids","ids","text","first_step_top_logits":[[id, logit], ...],"prefill_tok_s",
//! "decode_tok_s","stop_reason","adapter", ...}`. `--bench` prints one line
//! `{"op":"decode","model","dtype","prompt_tokens","new_tokens","prefill_tok_s","decode_tok_s",
//! "ttft_ms","decode_ms","record_ms","wait_ms","run_ahead","adapter"}` (the best of 3 runs after a
//! warm-up; generation does not stop at EOS there). `--prompt-tokens N` makes the prompt exactly N
//! tokens (the prompt's ids repeated), `--run-ahead N` sets how many steps run ahead of the read-back
//! (0: the adapter's default).

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    if let Err(e) = pollster::block_on(run()) {
        eprintln!("generate: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_arch = "wasm32"))]
const USAGE: &str = "generate --model PATH --prompt TEXT [--chat] [--max-tokens N] [--temperature T] \
[--top-k K] [--top-p P] [--seed S] [--repetition-penalty R] [--stop TEXT]... [--json] [--bench] [--long N] \
[--run-ahead N] [--steps-per-submit N (decoding steps a submit; 0: one)] [--backend cpu|gpu (cpu: the CPU backend, weights in host memory)] [--json-object | --json-schema FILE (the answer constrained to JSON / to the schema)] [--prompt-tokens N (with --bench: a synthetic prompt of N tokens; then --prompt is optional)] \
[--checked] [--no-subgroups] [--no-coop (no tensor cores)] [--web-like (= --checked --no-subgroups, no tensor cores: the kernels a page runs)] \
[--profile (with --bench: GPU time by kernel, prefill and a decoding step, JSON lines)] \
[--fold-norms | --no-fold-norms (decoding on GPUs: RMSNorms folded into the GEMVs that read them; on by default)] \
[--record-only (with --bench: the CPU cost of recording a decoding step, nothing submitted)] \
[--gpu-kernels (the GPU kernel flavours even on a software adapter: to profile recording here)]";

#[cfg(not(target_arch = "wasm32"))]
async fn run() -> webgpu_infer::Result<()> {
    use std::io::Write;
    use webgpu_infer::models::generate::{GenerateOptions, Generator};
    use webgpu_infer::{Error, Gpu};

    let mut args = std::env::args().skip(1);
    let (mut model, mut prompt, mut json, mut bench) = (None, None, false, false);
    let mut long: Option<usize> = None;
    let mut prompt_tokens: Option<usize> = None;
    let (mut gpu_kernels, mut record_only) = (false, false);
    let mut checked = false;
    let (mut subgroups, mut coop, mut profile) = (true, true, false);
    let mut fold_norms: Option<bool> = None;
    let mut cpu_backend = false;
    let mut opts = GenerateOptions {
        max_tokens: 128,
        ..Default::default()
    };
    let bad = |flag: &str| Error::Input(format!("{flag} needs a number\nusage: {USAGE}"));
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| Error::Input(format!("{a} needs a value")))
        };
        match a.as_str() {
            "--model" => model = Some(value()?),
            "--prompt" => prompt = Some(value()?),
            "--chat" => opts.chat = true,
            "--json" => json = true,
            "--bench" => bench = true,
            "--long" => {
                long = Some(
                    args.next()
                        .and_then(|v| v.parse::<usize>().ok())
                        .ok_or_else(|| {
                            Error::Input(format!("--long takes a token count\nusage: {USAGE}"))
                        })?,
                )
            }
            "--max-tokens" => opts.max_tokens = value()?.parse().map_err(|_| bad(&a))?,
            "--temperature" => opts.sampling.temperature = value()?.parse().map_err(|_| bad(&a))?,
            "--top-k" => opts.sampling.top_k = value()?.parse().map_err(|_| bad(&a))?,
            "--top-p" => opts.sampling.top_p = value()?.parse().map_err(|_| bad(&a))?,
            "--seed" => opts.sampling.seed = value()?.parse().map_err(|_| bad(&a))?,
            "--repetition-penalty" => {
                opts.repetition_penalty = value()?.parse().map_err(|_| bad(&a))?
            }
            "--stop" => opts.stop.push(value()?),
            "--checked" => checked = true,
            "--no-subgroups" => subgroups = false,
            "--no-coop" => coop = false,
            "--gpu-kernels" => gpu_kernels = true,
            "--record-only" => record_only = true,
            "--web-like" => (checked, subgroups, coop) = (true, false, false),
            "--profile" => profile = true,
            "--fold-norms" => fold_norms = Some(true),
            "--no-fold-norms" => fold_norms = Some(false),
            "--backend" => {
                cpu_backend = match value()?.as_str() {
                    "cpu" => true,
                    "gpu" => false,
                    other => {
                        return Err(Error::Input(format!(
                            "--backend is cpu or gpu, not {other:?}\nusage: {USAGE}"
                        )));
                    }
                }
            }
            "--run-ahead" => opts.run_ahead = value()?.parse().map_err(|_| bad(&a))?,
            "--steps-per-submit" => {
                opts.steps_per_submit = value()?.parse().map_err(|_| bad(&a))?
            }
            "--json-object" => {
                opts.response_format =
                    Some(webgpu_infer::models::constrain::ResponseFormat::JsonObject)
            }
            "--json-schema" => {
                let path = value()?;
                let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
                    source_name: path.clone(),
                    message: e.to_string(),
                })?;
                let schema = serde_json::from_str(&text)
                    .map_err(|e| Error::Input(format!("--json-schema {path}: not JSON: {e}")))?;
                opts.response_format = Some(
                    webgpu_infer::models::constrain::ResponseFormat::JsonSchema(schema),
                );
            }
            "--prompt-tokens" => {
                prompt_tokens = Some(value()?.parse::<usize>().map_err(|_| bad(&a))?)
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => {
                return Err(Error::Input(format!(
                    "unknown argument {other:?}\nusage: {USAGE}"
                )));
            }
        }
    }
    let model =
        model.ok_or_else(|| Error::Input(format!("--model is required\nusage: {USAGE}")))?;
    // With --bench --prompt-tokens the prompt only supplies the ids to repeat: a default will do.
    let prompt = match (prompt, bench.then_some(prompt_tokens).flatten()) {
        (Some(p), _) => p,
        (None, Some(_)) => "The history of the city begins in the early middle ages".to_string(),
        (None, None) => {
            return Err(Error::Input(format!(
                "--prompt is required\nusage: {USAGE}"
            )));
        }
    };
    // --checked: WebGPU's runtime shader checks on (as in every browser), to measure natively what
    // the web path's kernels cost.
    let gpu = Gpu::with_options(&webgpu_infer::GpuOptions {
        unchecked_shaders: !checked,
        allow_subgroups: subgroups,
        allow_cooperative_matrix: coop,
        cpu_kernels: gpu_kernels.then_some(false),
        ..Default::default()
    })
    .await?;
    if cpu_backend && (record_only || profile || long.is_some()) {
        return Err(Error::Input(
            "--record-only, --profile and --long measure the GPU path: not with --backend cpu"
                .into(),
        ));
    }
    let mut generator = if cpu_backend {
        let cpu = webgpu_infer::cpu::Cpu::new();
        Generator::from_path_host(&cpu, model.as_ref(), None)?
    } else {
        Generator::from_path(&gpu, model.as_ref(), &mut |_| {})?
    };
    // Where the model runs, for the JSON lines.
    let adapter = if cpu_backend {
        format!("CPU ({} threads)", rayon::current_num_threads())
    } else {
        gpu.adapter_name()
    };
    if let Some(on) = fold_norms {
        generator.set_fold_norms(on);
    }
    let fold_norms = generator.fold_norms();
    if record_only {
        let (record_ms, finish_ms) = generator.recording_cost(200, false)?;
        let (_, submit_ms) = generator.recording_cost(200, true)?;
        println!(
            "{}",
            serde_json::json!({"op": "record_step", "adapter": gpu.adapter_name(),
                "record_ms": record_ms, "finish_ms": finish_ms, "submit_ms": submit_ms, "steps": 200,
                "dispatches": gpu.stats().dispatches / 402, "fold_norms": fold_norms})
        );
        return Ok(());
    }
    if let Some(n) = long {
        return long_run(&gpu, &generator, &model, &prompt, n).await;
    }
    if bench {
        opts.stop_at_eos = false;
        let mut ids = generator.encode(&prompt, opts.chat)?;
        if let Some(n) = prompt_tokens {
            // A synthetic prompt of exactly n tokens: the prompt's ids, repeated.
            ids = ids.iter().copied().cycle().take(n).collect();
        }
        // Warm-up: pipelines compiled.
        generator
            .generate_ids(ids.clone(), &opts, &mut |_| true)
            .await?;
        let pipelines_after_warmup = gpu.pipeline_count();
        let mut best: Option<webgpu_infer::models::generate::Generation> = None;
        let mut ttft_runs = vec![];
        for _ in 0..3 {
            let g = generator
                .generate_ids(ids.clone(), &opts, &mut |_| true)
                .await?;
            ttft_runs.push(g.stats.prefill_ms);
            if best
                .as_ref()
                .is_none_or(|b| g.stats.decode_tok_s > b.stats.decode_tok_s)
            {
                best = Some(g);
            }
        }
        let s = best.map(|g| g.stats).unwrap_or_default();
        let line = serde_json::json!({
            "op": "decode",
            "model": model,
            "dtype": "f32 activations, weights as stored",
            "prompt_tokens": s.prompt_tokens,
            "new_tokens": s.new_tokens,
            "prefill_tok_s": s.prefill_tok_s,
            "decode_tok_s": s.decode_tok_s,
            "bytes_read_back_per_token": s.bytes_read_back_per_token,
            "ttft_ms": s.prefill_ms,
            "ttft_ms_runs": ttft_runs,
            // Pipelines compiled during the timed runs (0 when the warm-up saw every shape).
            "pipelines_compiled_in_runs": gpu.pipeline_count() - pipelines_after_warmup,
            "decode_ms": s.decode_ms,
            "record_ms": s.record_ms,
            "wait_ms": s.wait_ms,
            "grammar_ms": s.grammar_ms,
            "run_ahead": opts.run_ahead,
            "steps_per_submit": opts.steps_per_submit,
            "shader_checks": checked,
            "subgroups": gpu.capabilities().subgroups,
            // Prompts' quantized products on tensor cores.
            "tensor_cores": gpu.capabilities().cooperative_matrix,
            "fold_norms": fold_norms,
            "adapter": adapter,
        });
        println!("{line}");
        if profile {
            profile_generation(&gpu, &generator, &ids, &opts).await?;
        }
        return Ok(());
    }
    if json {
        opts.top_logits = 10;
    }
    let mut stdout = std::io::stdout();
    let g = generator
        .generate(&prompt, &opts, &mut |piece| {
            if !json {
                let _ = write!(stdout, "{piece}");
                let _ = stdout.flush();
            }
            true
        })
        .await?;
    if json {
        let value = serde_json::json!({
            "model": model,
            "prompt_ids": g.prompt_ids,
            "ids": g.ids,
            "text": g.text,
            "first_step_top_logits": g.first_step_top_logits,
            "stop_reason": g.stop_reason.name(),
            "prompt_tokens": g.stats.prompt_tokens,
            "new_tokens": g.stats.new_tokens,
            "prefill_tok_s": g.stats.prefill_tok_s,
            "decode_tok_s": g.stats.decode_tok_s,
            "bytes_read_back_per_token": g.stats.bytes_read_back_per_token,
            "grammar_ms": g.stats.grammar_ms,
            "adapter": adapter,
        });
        println!("{value}");
    } else {
        println!();
        eprintln!(
            "[{} prompt tokens at {:.0} tok/s, {} new at {:.1} tok/s, stop: {}; {}]",
            g.stats.prompt_tokens,
            g.stats.prefill_tok_s,
            g.stats.new_tokens,
            g.stats.decode_tok_s,
            g.stop_reason.name(),
            adapter
        );
    }
    Ok(())
}

/// `--long N`: one generation of N tokens (greedy, not stopped at EOS), after a warm-up; prints one
/// `{"op":"decode_window",...}` line a 512-token window (tok/s in it, GPU memory in use after it) and a
/// summary: memory must stay flat (the KV cache is sized once) and speed steady, apart from the
/// attention's growth with the context.
/// `--profile`: GPU time by kernel of a prefill (a generation of one token) and of one decoding step
/// (a generation of 17 tokens less the prefill, over 16), one JSON line a kernel and phase, most first.
#[cfg(not(target_arch = "wasm32"))]
async fn profile_generation(
    gpu: &webgpu_infer::Gpu,
    generator: &webgpu_infer::models::generate::Generator,
    ids: &[u32],
    opts: &webgpu_infer::models::generate::GenerateOptions,
) -> webgpu_infer::Result<()> {
    let steps = 16;
    let run = async |max_tokens: usize| {
        let opts = webgpu_infer::models::generate::GenerateOptions {
            max_tokens,
            ..opts.clone()
        };
        gpu.set_profiling(true)?;
        let done = generator
            .generate_ids(ids.to_vec(), &opts, &mut |_| true)
            .await;
        gpu.set_profiling(false)?;
        done?;
        gpu.take_profile().await
    };
    let prefill = run(1).await?;
    let whole = run(1 + steps).await?;
    let emit = |phase: &str, kernel: &str, dispatches: f64, ms: f64, total: f64| {
        let line = serde_json::json!({
            "op": "profile", "phase": phase, "kernel": kernel, "dispatches": dispatches,
            "gpu_ms": ms, "share": ms / total.max(1e-12), "shader_checks": !gpu.unchecked_shaders(),
            "subgroups": gpu.capabilities().subgroups, "adapter": gpu.adapter_name(),
        });
        println!("{line}");
    };
    let total: f64 = prefill.iter().map(|k| k.ms).sum();
    for k in &prefill {
        emit("prefill", &k.kernel, k.dispatches.into(), k.ms, total);
    }
    let mut step: Vec<(String, f64, f64)> = whole
        .iter()
        .map(|k| {
            let before = prefill.iter().find(|p| p.kernel == k.kernel);
            let (d, ms) = before.map_or((0.0, 0.0), |p| (p.dispatches.into(), p.ms));
            let n = steps as f64;
            (
                k.kernel.clone(),
                (f64::from(k.dispatches) - d) / n,
                (k.ms - ms) / n,
            )
        })
        .filter(|(_, d, _)| *d > 0.0)
        .collect();
    step.sort_by(|a, b| b.2.total_cmp(&a.2));
    let total: f64 = step.iter().map(|k| k.2).sum();
    for (kernel, d, ms) in &step {
        emit("decode_step", kernel, *d, *ms, total);
    }
    step_times(gpu, generator, ids, opts).await
}

/// `--profile`, second part: a generation of 129 tokens with each submitted pass timed whole
/// (`Gpu::set_pass_timing`): the decoding steps' GPU time as they run (all dispatches in one pass),
/// the interval from one step's start to the next, and the GPU's idle gap between them (the
/// interval less the step: submits, the read-back copies, the timestamps' own resolve), against the
/// wall clock's time a token. One `{"op":"step_times",...}` line.
#[cfg(not(target_arch = "wasm32"))]
async fn step_times(
    gpu: &webgpu_infer::Gpu,
    generator: &webgpu_infer::models::generate::Generator,
    ids: &[u32],
    opts: &webgpu_infer::models::generate::GenerateOptions,
) -> webgpu_infer::Result<()> {
    let opts = webgpu_infer::models::generate::GenerateOptions {
        max_tokens: 129,
        stop_at_eos: false,
        ..opts.clone()
    };
    gpu.set_pass_timing(true)?;
    let done = generator
        .generate_ids(ids.to_vec(), &opts, &mut |_| true)
        .await;
    gpu.set_pass_timing(false)?;
    let g = done?;
    let passes = gpu.take_pass_times().await?;
    // The first pass is the prompt's; the rest are decoding steps.
    let steps = passes.get(1..).unwrap_or_default();
    let busy: Vec<f64> = steps.iter().map(|p| p.end_ms - p.start_ms).collect();
    let interval: Vec<f64> = steps
        .windows(2)
        .map(|w| w[1].start_ms - w[0].start_ms)
        .collect();
    let gap: Vec<f64> = steps
        .windows(2)
        .map(|w| w[1].start_ms - w[0].end_ms)
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let median = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s.get(s.len() / 2).copied().unwrap_or(0.0)
    };
    let line = serde_json::json!({
        "op": "step_times", "passes": passes.len(), "new_tokens": g.stats.new_tokens,
        "wall_ms_per_token": 1e3 / g.stats.decode_tok_s.max(1e-12),
        "step_gpu_ms_mean": mean(&busy), "step_gpu_ms_median": median(&busy),
        "interval_ms_mean": mean(&interval), "interval_ms_median": median(&interval),
        "gap_ms_mean": mean(&gap), "gap_ms_median": median(&gap),
        "shader_checks": !gpu.unchecked_shaders(), "subgroups": gpu.capabilities().subgroups,
        "adapter": gpu.adapter_name(),
    });
    println!("{line}");
    Ok(())
}

#[cfg(not(target_arch = "wasm32"))]
async fn long_run(
    gpu: &webgpu_infer::Gpu,
    generator: &webgpu_infer::models::generate::Generator,
    model: &str,
    prompt: &str,
    n: usize,
) -> webgpu_infer::Result<()> {
    use webgpu_infer::models::generate::GenerateOptions;
    let warm = GenerateOptions {
        max_tokens: 8,
        stop_at_eos: false,
        ..Default::default()
    };
    generator.generate(prompt, &warm, &mut |_| true).await?;
    let before = gpu.stats();
    let opts = GenerateOptions {
        max_tokens: n,
        stop_at_eos: false,
        ..Default::default()
    };
    let mut at_windows = Vec::new();
    let mut count = 0usize;
    let g = generator
        .generate(prompt, &opts, &mut |_| {
            count += 1;
            if count.is_multiple_of(64) {
                at_windows.push(gpu.stats().live_buffer_bytes);
            }
            true
        })
        .await?;
    let after = gpu.stats();
    const WINDOW: usize = 512;
    for (w, chunk) in g.token_ms.chunks(WINDOW).enumerate() {
        let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
            continue;
        };
        let prev = if w == 0 {
            *first
        } else {
            g.token_ms[w * WINDOW - 1]
        };
        let tokens = if w == 0 { chunk.len() - 1 } else { chunk.len() };
        let line = serde_json::json!({
            "op": "decode_window", "model": model, "from_token": w * WINDOW,
            "tokens": chunk.len(), "tok_s": tokens as f64 / ((last - prev) / 1e3),
            "context": g.prompt_ids.len() + (w + 1) * WINDOW, "adapter": gpu.adapter_name(),
        });
        println!("{line}");
    }
    let line = serde_json::json!({
        "op": "decode_long", "model": model, "new_tokens": g.ids.len(),
        "decode_tok_s": g.stats.decode_tok_s,
        "live_buffer_bytes_before": before.live_buffer_bytes,
        "live_buffer_bytes_after": after.live_buffer_bytes,
        "live_buffer_bytes_min_during": at_windows.iter().min(),
        "live_buffer_bytes_max_during": at_windows.iter().max(),
        "live_buffers_before": before.live_buffers, "live_buffers_after": after.live_buffers,
        "stop_reason": g.stop_reason.name(), "adapter": gpu.adapter_name(),
    });
    println!("{line}");
    Ok(())
}
