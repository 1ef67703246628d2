//! SmolLM2-135M-Instruct (GGUF, Q4_1 + Q8_0) end to end against transformers loading the same file
//! (tests/goldens/SmolLM2-135M-Instruct.Q4_1.json, made by scripts/goldens_smollm2.py): identical
//! prompt token ids (raw and through the chat template), the ten highest first-step logits within
//! 3e-4 natively and 1e-2 in the browser (both sides compute in f32 from the same dequantized weights,
//! the sums in another order: measured ≤ 3.4e-5 on lavapipe; ≤ 2.4e-3 in Chromium on SwiftShader,
//! whose sin/cos use WGSL's 2^-11 room in every layer's RoPE), and the same greedy continuation: natively
//! 32 tokens for the first prompt and 16 for the other two, in the browser 8 tokens for two prompts.
//! Plus the repetition penalty against a CPU reference, and bad input.
mod common;

use common::{gpu, log, read_asset};
use webgpu_infer::models::generate::{GenerateOptions, Generator, StopReason};
use webgpu_infer::{Error, Result};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The model, loaded once a test binary in the browser (tests there run one after another on one
/// page, and SwiftShader makes every second count); natively each test loads its own.
async fn smollm2() -> Result<std::rc::Rc<Generator>> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let gpu = gpu().await?;
        Ok(std::rc::Rc::new(Generator::from_path(
            &gpu,
            MODEL.as_ref(),
            &mut |_| {},
        )?))
    }
    #[cfg(target_arch = "wasm32")]
    {
        use webgpu_infer::bridge::web::{Source, load_gguf};
        thread_local! {
            static LOADED: std::cell::RefCell<Option<std::rc::Rc<Generator>>> = const { std::cell::RefCell::new(None) };
        }
        if let Some(g) = LOADED.with(|l| l.borrow().clone()) {
            return Ok(g);
        }
        let gpu = gpu().await?;
        let (header, weights) =
            load_gguf(&gpu, Source::Url(format!("/{MODEL}")), None, &mut |_| {}).await?;
        let g = std::rc::Rc::new(Generator::from_gguf(&gpu, MODEL, &header, &weights)?);
        LOADED.with(|l| *l.borrow_mut() = Some(g.clone()));
        Ok(g)
    }
}

struct Case {
    name: String,
    chat: bool,
    prompt: String,
    prompt_ids: Vec<u32>,
    top_logits: Vec<(u32, f32)>,
    greedy_ids: Vec<u32>,
}

async fn goldens() -> Vec<Case> {
    let json: serde_json::Value =
        serde_json::from_slice(&read_asset("tests/goldens/SmolLM2-135M-Instruct.Q4_1.json").await)
            .unwrap();
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().into(),
            chat: c["chat"].as_bool().unwrap(),
            prompt: c["prompt"].as_str().unwrap().into(),
            prompt_ids: serde_json::from_value(c["prompt_ids"].clone()).unwrap(),
            top_logits: serde_json::from_value(c["top_logits"].clone()).unwrap(),
            greedy_ids: serde_json::from_value(c["greedy_ids"].clone()).unwrap(),
        })
        .collect()
}

async fn matches_transformers() -> Result<()> {
    let g = smollm2().await?;
    for (i, case) in goldens().await.iter().enumerate() {
        // In the browser (SwiftShader, a CPU emulation) a short and a chat prompt, 8 tokens each.
        let browser = cfg!(target_arch = "wasm32");
        if browser && case.name == "raw_long" {
            continue;
        }
        assert_eq!(
            g.encode(&case.prompt, case.chat)?,
            case.prompt_ids,
            "{}: prompt token ids",
            case.name
        );
        let tokens = match (browser, i) {
            (true, _) => 8,
            (false, 0) => 32,
            (false, _) => 16,
        };
        let opts = GenerateOptions {
            max_tokens: tokens,
            chat: case.chat,
            stop_at_eos: false, // transformers' goldens ran past EOS
            top_logits: 20,
            ..Default::default()
        };
        let out = g.generate(&case.prompt, &opts, &mut |_| true).await?;
        let (top_id, _) = case.top_logits[0];
        assert_eq!(
            out.first_step_top_logits[0].0, top_id,
            "{}: top-1",
            case.name
        );
        // ~10× the measured error natively, ~4× on SwiftShader (see the top of this file).
        let bound = if browser { 1e-2 } else { 3e-4 };
        let worst = top_logits_within(
            &case.name,
            &out.first_step_top_logits,
            &case.top_logits,
            bound,
        );
        log(&format!(
            "{}: {} prompt tokens, top-10 logits within {worst:.2e}, {:.1} tok/s decode, text {:?}",
            case.name,
            out.prompt_ids.len(),
            out.stats.decode_tok_s,
            out.text
        ));
        assert!(
            worst <= bound,
            "{}: a top-10 logit is {worst} off",
            case.name
        );
        assert_eq!(
            out.ids,
            case.greedy_ids[..tokens],
            "{}: greedy ids",
            case.name
        );
        assert_eq!(out.stop_reason, StopReason::MaxTokens);
        assert_eq!(
            out.stats.bytes_read_back_per_token, 4.0,
            "only the token id comes back"
        );
    }
    Ok(())
}
gpu_test!(smollm2_matches_transformers, matches_transformers);

/// The first token under a repetition penalty is the argmax of the first-step logits penalized on the
/// CPU (transformers' rule: prompt tokens' logits divided by the penalty when positive, multiplied
/// when negative).
async fn repetition_penalty() -> Result<()> {
    let g = smollm2().await?;
    let prompt = "one two one two one two one";
    let vocab = g.config().vocab_size;
    let plain = GenerateOptions {
        max_tokens: 1,
        top_logits: vocab,
        ..Default::default()
    };
    let out = g.generate(prompt, &plain, &mut |_| true).await?;
    let penalty = 3.0;
    let mut logits = vec![0f32; vocab];
    for &(id, v) in &out.first_step_top_logits {
        logits[id as usize] = v;
    }
    for &id in &out.prompt_ids {
        let v = &mut logits[id as usize];
        *v = if *v < 0.0 { *v * penalty } else { *v / penalty };
    }
    let want = (0..vocab).max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)));
    let opts = GenerateOptions {
        max_tokens: 3,
        repetition_penalty: penalty,
        ..Default::default()
    };
    let penalized = g.generate(prompt, &opts, &mut |_| true).await?;
    assert_eq!(Some(penalized.ids[0] as usize), want);
    assert_ne!(
        penalized.ids[0], out.ids[0],
        "the penalty should change this prompt's choice"
    );
    Ok(())
}
gpu_test!(repetition_penalty_matches_cpu, repetition_penalty);

async fn stops_and_bad_input() -> Result<()> {
    let g = smollm2().await?;
    // A stop string ends the text before it; pieces streamed never include it.
    let mut streamed = String::new();
    let opts = GenerateOptions {
        max_tokens: 16,
        stop: vec!["answer".into()],
        ..Default::default()
    };
    let out = g
        .generate("The capital of France is", &opts, &mut |p| {
            streamed.push_str(p);
            true
        })
        .await?;
    assert_eq!(out.stop_reason, StopReason::StopString);
    assert_eq!(out.text, " Paris.\n\nThe ");
    assert_eq!(streamed, out.text);
    // The callback can stop generation.
    let mut calls = 0;
    let out = g
        .generate("Hello", &GenerateOptions::default(), &mut |_| {
            calls += 1;
            calls < 2
        })
        .await?;
    assert_eq!(out.stop_reason, StopReason::Cancelled);
    // Bad input: typed errors before any GPU work.
    let bad = |o: GenerateOptions| o;
    let cases = [
        ("", bad(GenerateOptions::default()), "empty"),
        (
            "x",
            bad(GenerateOptions {
                max_tokens: 0,
                ..Default::default()
            }),
            "max_tokens",
        ),
        (
            "x",
            {
                let mut o = GenerateOptions::default();
                o.sampling.temperature = -1.0;
                o
            },
            "temperature",
        ),
        (
            "x",
            {
                let mut o = GenerateOptions::default();
                o.sampling.top_p = 0.0;
                o
            },
            "top_p",
        ),
        (
            "x",
            bad(GenerateOptions {
                repetition_penalty: 0.0,
                ..Default::default()
            }),
            "repetition_penalty",
        ),
    ];
    for (prompt, opts, needle) in cases {
        let Err(e) = g.generate(prompt, &opts, &mut |_| true).await else {
            panic!("{needle}: accepted");
        };
        assert!(
            matches!(e, Error::Input(_)) && e.to_string().contains(needle),
            "{needle}: {e}"
        );
    }
    let too_long = vec![1u32; g.context_length()];
    let Err(e) = g
        .generate_ids(too_long, &GenerateOptions::default(), &mut |_| true)
        .await
    else {
        panic!("a prompt as long as the context was accepted");
    };
    let want = format!("this generator's context is {}", g.context_length());
    assert!(e.to_string().contains(&want), "{e}");
    Ok(())
}
gpu_test!(generation_stops_and_refuses_bad_input, stops_and_bad_input);

/// A tiny random LLaMA in Hugging Face's layout (tests/fixtures/tiny-llama, made by
/// scripts/make_tiny_llama.py): BF16 safetensors converted on the GPU, an untied LM head, rotate-half
/// RoPE with θ from transformers 5's `rope_parameters`, a tokenizer.json and a ChatML template. Same
/// checks as the GGUF checkpoints below (`tiny_cases_match`). The reference reads the saved bf16
/// weights back in f32 (the first goldens came from the bf16 model converted in memory, whose RoPE
/// frequencies bf16 had rounded: 3.8e-4 / 5.1e-4 off; now 4.8e-7 on lavapipe, 6.8e-5 on SwiftShader).
async fn tiny_hf_llama() -> Result<()> {
    const DIR: &str = "tests/fixtures/tiny-llama";
    let gpu = gpu().await?;
    let asset = |name: &str| read_asset_owned(format!("{DIR}/{name}"));
    #[cfg(not(target_arch = "wasm32"))]
    let weights = webgpu_infer::bridge::native::load(&gpu, DIR.as_ref(), &mut |_| {})?;
    #[cfg(target_arch = "wasm32")]
    let weights = {
        use webgpu_infer::bridge::web::{Source, load};
        load(
            &gpu,
            Source::Url(format!("/{DIR}/model.safetensors")),
            None,
            &mut |_| {},
        )
        .await?
    };
    let g = Generator::from_hf(
        &gpu,
        &weights,
        &asset("config.json").await,
        &asset("tokenizer.json").await,
        Some(&asset("tokenizer_config.json").await),
    )?;
    assert_eq!(g.config().rope_theta, 1000.0);
    tiny_cases_match(&g, "tiny-llama", &asset("golden.json").await).await
}
gpu_test!(tiny_hf_llama_matches_transformers, tiny_hf_llama);

/// A tiny random LLaMA written as GGUF with every quantized format the library reads
/// (tests/fixtures/tiny-gguf, made by scripts/make_tiny_gguf.py): a Q4_K_M-style layer (Q4_K q/k and
/// gate/up, Q6_K v and down, Q5_K out-projection: q, k and v of two types), a layer of Q5_0 q/k/v,
/// Q5_1, IQ4_NL gate/up and Q8_0, a Q4_K token embedding and a Q6_K LM head, against transformers
/// loading the same file (the gguf package dequantizes it), checked by `tiny_cases_match`.
async fn tiny_gguf_kquants() -> Result<()> {
    tiny_gguf_matches("tiny-kquants.gguf", "golden.json").await
}
gpu_test!(tiny_gguf_kquants_matches_transformers, tiny_gguf_kquants);

/// The same for a tiny Qwen2 (biases on q, k and v) and a tiny Qwen3 (RMSNorm over each head of q and
/// k; head_dim 128, past hidden / heads), both with rotate-half RoPE, as llama.cpp writes them.
async fn tiny_gguf_qwen() -> Result<()> {
    tiny_gguf_matches("tiny-qwen2.gguf", "golden-qwen2.json").await?;
    tiny_gguf_matches("tiny-qwen3.gguf", "golden-qwen3.json").await
}
gpu_test!(tiny_gguf_qwen_matches_transformers, tiny_gguf_qwen);

/// The same for a tiny LLaMA with Llama 3.1/3.2's RoPE scaling (`rope_type: llama3`, factor 8, an
/// original context of 64 so that its frequencies fall in all three bands), stored as llama.cpp does:
/// `rope_freqs.weight`. The reference is transformers' model with that scaling and the file's weights.
async fn tiny_gguf_llama3() -> Result<()> {
    tiny_gguf_matches("tiny-llama3.gguf", "golden-llama3.json").await
}
gpu_test!(tiny_gguf_llama3_rope_matches_transformers, tiny_gguf_llama3);

/// Phi-3 (scripts/make_tiny_gguf.py phi3): q, k and v in one `attn_qkv` matrix and gate and up in one
/// `ffn_up`, split on the GPU at load, rotate-half RoPE, a sliding window of 8 keys on every layer; and
/// Phi-3.5's LongRoPE (`rope_factors_{short,long}.weight`, the attention factor): short factors within
/// the original context (64), long ones for a prompt past it.
async fn tiny_gguf_phi3() -> Result<()> {
    tiny_gguf_matches("tiny-phi3.gguf", "golden-phi3.json").await?;
    tiny_gguf_matches("tiny-phi3long.gguf", "golden-phi3long.json").await
}
gpu_test!(tiny_gguf_phi3_matches_transformers, tiny_gguf_phi3);

/// Gemma 2 and Gemma 3 (scripts/make_tiny_gguf.py gemma2 / gemma3): GELU-tanh MLPs, norms after
/// attention and after the MLP (stored as 1 + w), √hidden embedding scale, the tied head, a window of
/// 8 on layer 0; Gemma 2's soft-capped scores (5) and logits (2), Gemma 3's per-head q/k norms, head_dim
/// 128, RoPE base 10 000 on the sliding layer and linear scaling (4) on the global one.
async fn tiny_gguf_gemma() -> Result<()> {
    tiny_gguf_matches("tiny-gemma2.gguf", "golden-gemma2.json").await?;
    tiny_gguf_matches("tiny-gemma3.gguf", "golden-gemma3.json").await
}
gpu_test!(tiny_gguf_gemma_matches_transformers, tiny_gguf_gemma);

/// Files the generator must refuse rather than run wrong (scripts/make_tiny_gguf.py refused): an
/// architecture it lacks, and YaRN RoPE scaling.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn unsupported_gguf_models_are_refused() {
    let gpu = pollster::block_on(gpu()).unwrap();
    for (file, needle) in [
        (
            "refused-arch.gguf",
            "\"mamba\"; the GGUF architectures supported are llama, qwen2, qwen3, phi3, gemma2, gemma3",
        ),
        ("refused-rope-scaling.gguf", "rope.scaling.type is \"yarn\""),
    ] {
        let path = format!("tests/fixtures/tiny-gguf/{file}");
        let Err(err) = Generator::from_path(&gpu, path.as_ref(), &mut |_| {}) else {
            panic!("{file} was accepted");
        };
        assert!(matches!(err, Error::Model { .. }), "{file}: {err:?}");
        assert!(err.to_string().contains(needle), "{file}: {err}");
    }
}

/// The context is checked from the header before any weight loads (scripts/make_tiny_gguf.py
/// refused: huge-context.gguf, a 2^30-position model with only an embedding): a context whose KV cache
/// is past the adapter's buffer limits is refused naming the limit, one past the model's own context
/// too, both with no GPU buffer made; the default (the model's, up to 4096) passes the check, so the
/// load goes on and fails only on the missing tensors.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn context_is_checked_before_weights_load() {
    let gpu = pollster::block_on(gpu()).unwrap();
    let path = std::path::Path::new("tests/fixtures/tiny-gguf/huge-context.gguf");
    let load = |context| {
        let before = gpu.stats().live_buffers;
        let result = Generator::from_path_with_context(&gpu, path, context, &mut |_| {});
        (
            result.err().expect("refused"),
            gpu.stats().live_buffers - before,
        )
    };
    let (err, buffers) = load(Some(1 << 28));
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("KV cache for a context of 268435456"),
        "{err}"
    );
    assert_eq!(buffers, 0, "buffers made before the refusal");
    let (err, buffers) = load(Some((1 << 30) + 1));
    assert!(matches!(err, Error::Input(_)), "{err:?}");
    assert!(
        err.to_string().contains("this model's is 1 to 1073741824"),
        "{err}"
    );
    assert_eq!(buffers, 0);
    let (err, _) = load(None);
    assert!(matches!(err, Error::MissingTensor { .. }), "{err:?}");
}

/// A generator's context: 4096 by default (SmolLM2-sized models' files say more), what was asked for
/// otherwise; a prompt at or past it is refused.
async fn generator_context() -> Result<()> {
    let gpu = gpu().await?;
    let path = "tests/fixtures/tiny-gguf/tiny-kquants.gguf";
    #[cfg(not(target_arch = "wasm32"))]
    let (header, weights) =
        webgpu_infer::bridge::native::load_gguf(&gpu, path.as_ref(), &mut |_| {})?;
    #[cfg(target_arch = "wasm32")]
    let (header, weights) = webgpu_infer::bridge::web::load_gguf(
        &gpu,
        webgpu_infer::bridge::web::Source::Url(format!("/{path}")),
        None,
        &mut |_| {},
    )
    .await?;
    let g = Generator::from_gguf(&gpu, path, &header, &weights)?;
    assert_eq!(g.context_length(), 256); // the file's context_length, under 4096
    let g = Generator::from_gguf_with_context(&gpu, path, &header, &weights, Some(12))?;
    assert_eq!(g.context_length(), 12);
    let opts = GenerateOptions {
        max_tokens: 4,
        ..Default::default()
    };
    let Err(err) = g
        .generate("Hello, tiny model, hello", &opts, &mut |_| true)
        .await
    else {
        panic!("a prompt past the context was accepted");
    };
    assert!(
        err.to_string().contains("this generator's context is 12"),
        "{err}"
    );
    let out = g.generate("Hello", &opts, &mut |_| true).await?;
    assert_eq!(out.ids.len(), 4);
    let Err(err) = g.with_context(257) else {
        panic!("a context past the model's was accepted");
    };
    assert!(
        err.to_string().contains("this model's is 1 to 256"),
        "{err}"
    );
    Ok(())
}
gpu_test!(generator_context_is_what_was_asked, generator_context);

/// A chat session keeps its KV cache between turns: the second turn, which sends the first back with
/// the answer, prefills only what the cache lacks (`reused_tokens` > the first prompt's length less
/// the template's few re-tokenized ids), and every turn gives what a fresh generation of the same
/// prompt gives (same greedy ids, first-step logits within the tiny models' bound: the reused keys
/// were computed in other batches, the sums in another order). An edited history reuses only the
/// common prefix; `reset` none; bad messages are refused.
async fn chat_session() -> Result<()> {
    use webgpu_infer::models::chat::ChatSession;
    use webgpu_infer::models::text::Message;
    let gpu = gpu().await?;
    let g = tiny_gguf(&gpu, "tests/fixtures/tiny-gguf/tiny-kquants.gguf").await?;
    let opts = GenerateOptions {
        max_tokens: 8,
        stop_at_eos: false,
        top_logits: 10,
        ..Default::default()
    };
    let bound = if cfg!(target_arch = "wasm32") {
        3e-3
    } else {
        5e-5
    };
    let mut session = ChatSession::new();
    let fresh = |messages: Vec<Message>| {
        let ids = g.encode_messages(&messages);
        let g = &g;
        let opts = &opts;
        async move { g.generate_ids(ids?, opts, &mut |_| true).await }
    };
    let same = |what: &str,
                a: &webgpu_infer::models::generate::Generation,
                b: &webgpu_infer::models::generate::Generation| {
        assert_eq!(a.prompt_ids, b.prompt_ids, "{what}: prompt");
        assert_eq!(a.ids, b.ids, "{what}: ids");
        top_logits_within(
            what,
            &a.first_step_top_logits,
            &b.first_step_top_logits,
            bound,
        );
    };
    let turn1 = vec![Message::new("user", "Hi there")];
    let a = g.chat(&mut session, &turn1, &opts, &mut |_| true).await?;
    assert_eq!(a.stats.reused_tokens, 0);
    same("turn 1", &a, &fresh(turn1.clone()).await?);
    let mut turn2 = turn1.clone();
    turn2.push(Message::new("assistant", &a.text));
    turn2.push(Message::new("user", "Tell me more"));
    let b = g.chat(&mut session, &turn2, &opts, &mut |_| true).await?;
    assert!(
        b.stats.reused_tokens >= a.prompt_ids.len(),
        "turn 2 reused {} of {} (turn 1's prompt: {})",
        b.stats.reused_tokens,
        b.prompt_ids.len(),
        a.prompt_ids.len()
    );
    same("turn 2", &b, &fresh(turn2.clone()).await?);
    let mut edited = turn2.clone();
    edited[0] = Message::new("user", "Hello there");
    let c = g.chat(&mut session, &edited, &opts, &mut |_| true).await?;
    assert!(
        c.stats.reused_tokens < 8,
        "edited: reused {}",
        c.stats.reused_tokens
    );
    same("edited history", &c, &fresh(edited).await?);
    session.reset();
    let d = g.chat(&mut session, &turn1, &opts, &mut |_| true).await?;
    assert_eq!(d.stats.reused_tokens, 0);
    assert_eq!(d.ids, a.ids);
    for (messages, needle) in [
        (vec![], "no messages"),
        (vec![Message::new("robot", "hi")], "role \"robot\""),
    ] {
        let Err(err) = g.chat(&mut session, &messages, &opts, &mut |_| true).await else {
            panic!("{needle}: accepted");
        };
        assert!(err.to_string().contains(needle), "{err}");
    }
    Ok(())
}
gpu_test!(chat_session_reuses_its_cache, chat_session);

/// A generator for a GGUF file of the repository: from the file natively, fetched in the browser.
async fn tiny_gguf(gpu: &webgpu_infer::Gpu, path: &str) -> Result<Generator> {
    #[cfg(not(target_arch = "wasm32"))]
    return Generator::from_path(gpu, path.as_ref(), &mut |_| {});
    #[cfg(target_arch = "wasm32")]
    {
        use webgpu_infer::bridge::web::{Source, load_gguf};
        let (header, weights) =
            load_gguf(gpu, Source::Url(format!("/{path}")), None, &mut |_| {}).await?;
        Generator::from_gguf(gpu, path, &header, &weights)
    }
}

async fn tiny_gguf_matches(file: &str, golden: &str) -> Result<()> {
    let path = format!("tests/fixtures/tiny-gguf/{file}");
    let gpu = gpu().await?;
    let g = tiny_gguf(&gpu, &path).await?;
    let golden = read_asset_owned(format!("tests/fixtures/tiny-gguf/{golden}")).await;
    tiny_cases_match(&g, file, &golden).await
}

/// A tiny model's golden cases (scripts/make_tiny_llama.py, make_tiny_gguf.py): the prompt ids, the
/// first step's top-10 logits, 16 greedy tokens. Both sides compute in f32 from the same (dequantized)
/// weights, the sums in another order. Measured (2026-12-04), the largest over the five checkpoints:
/// 6.4e-6 on lavapipe, 7.8e-4 in Chromium on SwiftShader (its sin/cos use WGSL's 2^-11 room, in RoPE).
/// Bounds: 5e-5 natively, 3e-3 in the browser (~8× and ~4×); a wrong scale or bit in a block, a
/// missing bias or norm moves logits by 1e-2 or more.
async fn tiny_cases_match(g: &Generator, what: &str, golden: &[u8]) -> Result<()> {
    let golden: serde_json::Value = serde_json::from_slice(golden).unwrap();
    for case in golden["cases"].as_array().unwrap() {
        let name = format!("{what} {}", case["name"].as_str().unwrap());
        let chat = case["chat"].as_bool().unwrap();
        let prompt = case["prompt"].as_str().unwrap();
        let want_ids: Vec<u32> = serde_json::from_value(case["prompt_ids"].clone()).unwrap();
        assert_eq!(g.encode(prompt, chat)?, want_ids, "{name}: prompt ids");
        let opts = GenerateOptions {
            max_tokens: 16,
            chat,
            stop_at_eos: false,
            top_logits: g.config().vocab_size,
            ..Default::default()
        };
        let out = g.generate(prompt, &opts, &mut |_| true).await?;
        let top: Vec<(u32, f32)> = serde_json::from_value(case["top_logits"].clone()).unwrap();
        let bound = if cfg!(target_arch = "wasm32") {
            3e-3
        } else {
            5e-5
        };
        let diff = top_logits_within(&name, &out.first_step_top_logits, &top, bound);
        log(&format!("{name}: top-10 logits within {diff:.2e}"));
        let greedy: Vec<u32> = serde_json::from_value(case["greedy_ids"].clone()).unwrap();
        assert_eq!(out.ids, greedy, "{name}: greedy ids");
    }
    Ok(())
}

/// Asserts that every `(id, logit)` of `want` is among `got` with a logit within `bound`; returns the
/// largest difference.
fn top_logits_within(name: &str, got: &[(u32, f32)], want: &[(u32, f32)], bound: f32) -> f32 {
    let mut worst = 0f32;
    for &(id, w) in want {
        let g = got
            .iter()
            .find(|(i, _)| *i == id)
            .map(|&(_, v)| v)
            .unwrap_or_else(|| panic!("{name}: token {id} of the reference's top is not in ours"));
        assert!((g - w).abs() <= bound, "{name}: logit of {id}: {g} vs {w}");
        worst = worst.max((g - w).abs());
    }
    worst
}

async fn read_asset_owned(path: String) -> Vec<u8> {
    read_asset(&path).await
}

/// The GPU-flavoured kernels (cooperative GEMVs, the 4-row GEMV of short prompts, decoding's fused
/// QKV + RoPE GEMV, with and without the RMSNorms folded in: what a real GPU runs) on this machine's
/// adapter, whatever it is: the same logits and greedy tokens as transformers. Natively only
/// (on SwiftShader these kernels take minutes).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn gpu_kernels_match_transformers() {
    pollster::block_on(async {
        let options = webgpu_infer::GpuOptions {
            cpu_kernels: Some(false),
            ..Default::default()
        };
        let gpu = webgpu_infer::Gpu::with_options(&options).await?;
        let mut g = Generator::from_path(&gpu, MODEL.as_ref(), &mut |_| {})?;
        // Decoding's RMSNorms apart, then folded into the GEMVs that read them (the default).
        for fold in [false, true] {
            g.set_fold_norms(fold);
            for case in goldens().await.iter().filter(|c| c.name != "raw_long") {
                let opts = GenerateOptions {
                    max_tokens: 8,
                    chat: case.chat,
                    stop_at_eos: false,
                    top_logits: 20,
                    ..Default::default()
                };
                let out = g.generate(&case.prompt, &opts, &mut |_| true).await?;
                top_logits_within(
                    &case.name,
                    &out.first_step_top_logits,
                    &case.top_logits,
                    1e-2,
                );
                assert_eq!(
                    out.ids,
                    case.greedy_ids[..8],
                    "{}: greedy ids, fold_norms {fold}",
                    case.name
                );
            }
        }
        // Every architecture's tiny checkpoint through the same kernels: Qwen's biases and norms,
        // Phi-3's and Gemma 2's rotate-half RoPE in the fused QKV GEMV, Gemma's GeGLU GEMV.
        for (file, golden) in TINY_GGUF {
            let path = format!("tests/fixtures/tiny-gguf/{file}");
            let g = Generator::from_path(&gpu, path.as_ref(), &mut |_| {})?;
            let golden = read_asset_owned(format!("tests/fixtures/tiny-gguf/{golden}")).await;
            tiny_cases_match(&g, &format!("{file} (GPU kernels)"), &golden).await?;
        }
        Ok::<(), Error>(())
    })
    .expect("gpu kernels");
}

/// Decoding past 128 cached keys (where the attention splits its keys into ranges) with the ranges
/// merged in the out-projection (`GpuOptions::decode_merge`, NVIDIA's default) and by the attention's
/// own pass (every other adapter's): the merged kernel does the same operations in the same order,
/// so the two generations choose the same 24 tokens, from a 126-token prompt to 150 positions, on
/// the GPU kernels. Natively only (as `gpu_kernels_match_transformers`).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn decode_merge_changes_nothing() {
    pollster::block_on(async {
        let prompt = "The river runs past the old mill and under the stone bridge. ".repeat(9);
        let mut ids = Vec::new();
        for merge in [false, true] {
            let options = webgpu_infer::GpuOptions {
                cpu_kernels: Some(false),
                decode_merge: Some(merge),
                ..Default::default()
            };
            let gpu = webgpu_infer::Gpu::with_options(&options).await?;
            let g = Generator::from_path(&gpu, MODEL.as_ref(), &mut |_| {})?;
            let prompt_ids = g.encode(&prompt, false)?;
            assert!(
                (110..=127).contains(&prompt_ids.len()),
                "{}",
                prompt_ids.len()
            );
            let opts = GenerateOptions {
                max_tokens: 24,
                stop_at_eos: false,
                ..Default::default()
            };
            ids.push(g.generate(&prompt, &opts, &mut |_| true).await?.ids);
        }
        assert_eq!(ids[0], ids[1], "greedy ids, merged against not");
        Ok::<(), Error>(())
    })
    .expect("decode merge");
}

/// The tiny checkpoints on the CPU backend, with the GPU's goldens and bounds (`tiny_cases_match`):
/// the Hugging Face folder (bf16 safetensors widened to f32 in host memory) and, natively, every tiny
/// GGUF (each quantized format through the CPU's integer products, Qwen's biases and q/k norms, Llama
/// 3's and Phi-3's RoPE scaling, Gemma's soft caps and sliding windows); in the browser the folder
/// and the k-quants file, streamed into WASM memory. Nothing goes to a GPU.
async fn tiny_cpu_body() -> Result<()> {
    use webgpu_infer::cpu::Cpu;
    const DIR: &str = "tests/fixtures/tiny-llama";
    let cpu = Cpu::new();
    let asset = |name: &str| read_asset_owned(format!("{DIR}/{name}"));
    #[cfg(not(target_arch = "wasm32"))]
    let g = Generator::from_path_host(&cpu, DIR.as_ref(), None)?;
    #[cfg(target_arch = "wasm32")]
    let g = {
        use webgpu_infer::bridge::web::{Source, load_host};
        let url = Source::Url(format!("/{DIR}/model.safetensors"));
        let weights = load_host(&cpu, url, None, &mut |_| {}).await?;
        let (config, tokenizer) = (asset("config.json").await, asset("tokenizer.json").await);
        let tc = asset("tokenizer_config.json").await;
        Generator::from_hf_host(&cpu, &weights, (&config, &tokenizer, Some(&tc)), None)?
    };
    assert_eq!(g.backend(), "cpu");
    tiny_cases_match(&g, "tiny-llama (cpu)", &asset("golden.json").await).await?;
    #[cfg(not(target_arch = "wasm32"))]
    let files = TINY_GGUF.to_vec();
    #[cfg(target_arch = "wasm32")]
    let files = vec![("tiny-kquants.gguf", "golden.json")];
    for (file, golden) in files {
        let path = format!("tests/fixtures/tiny-gguf/{file}");
        #[cfg(not(target_arch = "wasm32"))]
        let g = Generator::from_path_host(&cpu, path.as_ref(), None)?;
        #[cfg(target_arch = "wasm32")]
        let g = {
            use webgpu_infer::bridge::web::{Source, load_host_gguf};
            let url = Source::Url(format!("/{path}"));
            let (header, weights) = load_host_gguf(&cpu, url, None, &mut |_| {}).await?;
            Generator::from_gguf_host(&cpu, &path, &header, &weights, None)?
        };
        let golden = read_asset_owned(format!("tests/fixtures/tiny-gguf/{golden}")).await;
        tiny_cases_match(&g, &format!("{file} (cpu)"), &golden).await?;
    }
    assert_eq!(cpu.stats().host_to_gpu_bytes, 0);
    Ok(())
}
gpu_test!(tiny_checkpoints_on_the_cpu_backend, tiny_cpu_body);

/// The tiny GGUF checkpoints and their goldens (scripts/make_tiny_gguf.py).
#[cfg(not(target_arch = "wasm32"))]
const TINY_GGUF: [(&str, &str); 8] = [
    ("tiny-kquants.gguf", "golden.json"),
    ("tiny-llama3.gguf", "golden-llama3.json"),
    ("tiny-qwen2.gguf", "golden-qwen2.json"),
    ("tiny-qwen3.gguf", "golden-qwen3.json"),
    ("tiny-phi3.gguf", "golden-phi3.json"),
    ("tiny-phi3long.gguf", "golden-phi3long.json"),
    ("tiny-gemma2.gguf", "golden-gemma2.json"),
    ("tiny-gemma3.gguf", "golden-gemma3.json"),
];

/// Two generations on one model at once (as two JS calls without awaiting the first would run): each
/// keeps its own KV cache, so both give exactly what they give alone (transformers' greedy ids).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn concurrent_generations_do_not_interfere() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::Poll;
    pollster::block_on(async {
        let g = smollm2().await?;
        let cases = goldens().await;
        let (a, b) = (&cases[0], &cases[1]);
        let opts = |chat| GenerateOptions {
            max_tokens: 8,
            chat,
            stop_at_eos: false,
            ..Default::default()
        };
        let (oa, ob) = (opts(a.chat), opts(b.chat));
        let (mut ca, mut cb) = (|_: &str| true, |_: &str| true);
        let mut fa = pin!(g.generate(&a.prompt, &oa, &mut ca));
        let mut fb = pin!(g.generate(&b.prompt, &ob, &mut cb));
        let (mut ra, mut rb) = (None, None);
        // Polls both in turn until both are done (they interleave at their await points).
        std::future::poll_fn(|cx| {
            if ra.is_none()
                && let Poll::Ready(r) = fa.as_mut().poll(cx)
            {
                ra = Some(r);
            }
            if rb.is_none()
                && let Poll::Ready(r) = fb.as_mut().poll(cx)
            {
                rb = Some(r);
            }
            if ra.is_some() && rb.is_some() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        let (Some(ra), Some(rb)) = (ra, rb) else {
            unreachable!()
        };
        assert_eq!(ra?.ids, a.greedy_ids[..8], "{}", a.name);
        assert_eq!(rb?.ids, b.greedy_ids[..8], "{}", b.name);
        Ok::<(), Error>(())
    })
    .unwrap();
}

/// Loading a model, generating and dropping it, 20 times: GPU buffers (the copy counters' live count
/// and bytes) come back to where they were after the second round, and WASM memory (in the browser)
/// does not grow after it either. Uses the tiny HF fixture so that 20 loads take seconds.
async fn load_dispose_20_times() -> Result<()> {
    const DIR: &str = "tests/fixtures/tiny-llama";
    let gpu = gpu().await?;
    let asset = |name: &str| read_asset_owned(format!("{DIR}/{name}"));
    let (config, tokenizer, tokenizer_config) = (
        asset("config.json").await,
        asset("tokenizer.json").await,
        asset("tokenizer_config.json").await,
    );
    let opts = GenerateOptions {
        max_tokens: 4,
        stop_at_eos: false,
        ..Default::default()
    };
    let mut after_first = None;
    for round in 0..20 {
        #[cfg(not(target_arch = "wasm32"))]
        let weights = webgpu_infer::bridge::native::load(&gpu, DIR.as_ref(), &mut |_| {})?;
        #[cfg(target_arch = "wasm32")]
        let weights = webgpu_infer::bridge::web::load(
            &gpu,
            webgpu_infer::bridge::web::Source::Url(format!("/{DIR}/model.safetensors")),
            None,
            &mut |_| {},
        )
        .await?;
        let g = Generator::from_hf(&gpu, &weights, &config, &tokenizer, Some(&tokenizer_config))?;
        drop(weights);
        let out = g.generate("Hello", &opts, &mut |_| true).await?;
        assert_eq!(out.ids.len(), 4);
        drop(g);
        let s = gpu.stats();
        #[cfg(target_arch = "wasm32")]
        let wasm_pages = core::arch::wasm32::memory_size(0);
        #[cfg(not(target_arch = "wasm32"))]
        let wasm_pages = 0usize;
        let now = (s.live_buffers, s.live_buffer_bytes, wasm_pages);
        // Two warm-up rounds (pools and the allocator settle), then nothing may grow.
        match after_first {
            None if round == 1 => after_first = Some(now),
            None => {}
            Some(first) => assert_eq!(
                now, first,
                "round {round}: (buffers, bytes, wasm pages) grew"
            ),
        }
    }
    gpu.check()
}
gpu_test!(
    load_and_dispose_20_times_grows_nothing,
    load_dispose_20_times
);

/// Bind groups are made once and reused: a second generation of the same prompt (same shapes, same
/// weights, pooled activations handed out in the same order) creates almost none, yet gives the same
/// tokens. On the web path each bind group is a dear JS call, ~330 of them a token before the cache.
async fn bind_groups_are_reused() -> Result<()> {
    let g = smollm2().await?;
    let case = &goldens().await[0];
    let opts = GenerateOptions {
        max_tokens: 8,
        chat: case.chat,
        stop_at_eos: false,
        ..Default::default()
    };
    let gpu = g.gpu().expect("a GPU generator").clone();
    let first = g.generate(&case.prompt, &opts, &mut |_| true).await?;
    gpu.reset_stats();
    let second = g.generate(&case.prompt, &opts, &mut |_| true).await?;
    let stats = gpu.stats();
    assert_eq!(first.ids, second.ids);
    assert_eq!(second.ids, case.greedy_ids[..8], "{}", case.name);
    log(&format!(
        "second generation: {} dispatches, {} bind groups created",
        stats.dispatches, stats.bind_groups_created
    ));
    // Every step has ~330 dispatches; allow a handful of new groups (a buffer the pool had to make).
    assert!(stats.dispatches > 8 * 300, "{stats:?}");
    assert!(
        stats.bind_groups_created * 50 < stats.dispatches,
        "{} of {} dispatches made a bind group",
        stats.bind_groups_created,
        stats.dispatches
    );
    Ok(())
}
gpu_test!(
    bind_groups_are_reused_across_generations,
    bind_groups_are_reused
);

/// Steps run ahead of the read-back (GenerateOptions::run_ahead) change nothing a caller sees: the
/// same ids, text and stop reason with 1 and with 16 steps in flight, when generation runs to
/// max_tokens, when a stop string ends it early (steps in flight are thrown away) and at the
/// context's end.
async fn run_ahead_changes_nothing() -> Result<()> {
    let g = smollm2().await?;
    #[cfg(not(target_arch = "wasm32"))]
    let cases = [
        (20, vec![]),
        (16, vec!["answer".to_string()]), // stops at token ~5 (see stops_and_bad_input)
    ];
    // SwiftShader takes ~a second a token: the stop-string case only.
    #[cfg(target_arch = "wasm32")]
    let cases = [(16, vec!["answer".to_string()])];
    for (max_tokens, stop) in cases {
        let run = |run_ahead| {
            let stop = stop.clone();
            let g = g.clone();
            async move {
                let opts = GenerateOptions {
                    max_tokens,
                    stop,
                    stop_at_eos: false,
                    run_ahead,
                    ..Default::default()
                };
                g.generate("The capital of France is", &opts, &mut |_| true)
                    .await
            }
        };
        let (one, many) = (run(1).await?, run(16).await?);
        assert_eq!(one.ids, many.ids);
        assert_eq!(one.text, many.text);
        assert_eq!(one.stop_reason, many.stop_reason);
        assert_eq!(many.stats.bytes_read_back_per_token, 4.0);
    }
    Ok(())
}
gpu_test!(
    run_ahead_changes_nothing_callers_see,
    run_ahead_changes_nothing
);

/// SmolLM2 on the CPU backend: natively read from the file, in the browser streamed into WASM
/// memory (`load_host_gguf`); weights in their GGUF blocks, `Llama<Cpu>`, sampling on the CPU.
async fn cpu_generator(cpu: &webgpu_infer::cpu::Cpu) -> Result<Generator> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        Generator::from_path_host(cpu, MODEL.as_ref(), None)
    }
    #[cfg(target_arch = "wasm32")]
    {
        use webgpu_infer::bridge::web::{Source, load_host_gguf};
        let url = Source::Url(format!("/{MODEL}"));
        let (header, weights) = load_host_gguf(cpu, url, None, &mut |_| {}).await?;
        Generator::from_gguf_host(cpu, MODEL, &header, &weights, None)
    }
}

/// The same decoder on the CPU backend: the golden prompts' ids, their first-step top-10 logits
/// within the GPU test's native bound (3e-4; measured ≤ 2.5e-5 natively) and the same greedy
/// continuation (natively 16 tokens of each prompt; in the browser, whose test build is unoptimized,
/// 8 tokens of the short and the chat prompt); then a chat session's second turn reuses the first's
/// cache and gives the ids a fresh generation gives; nothing goes to a GPU.
async fn cpu_backend_body() -> Result<()> {
    use webgpu_infer::cpu::Cpu;
    use webgpu_infer::models::chat::ChatSession;
    use webgpu_infer::models::text::Message;
    let browser = cfg!(target_arch = "wasm32");
    let cpu = Cpu::new();
    let g = cpu_generator(&cpu).await?;
    assert_eq!((g.backend(), g.gpu().is_none()), ("cpu", true));
    for case in goldens().await {
        if browser && case.name == "raw_long" {
            continue;
        }
        assert_eq!(
            g.encode(&case.prompt, case.chat)?,
            case.prompt_ids,
            "{}",
            case.name
        );
        let tokens = if browser { 8 } else { 16 };
        let opts = GenerateOptions {
            max_tokens: tokens,
            chat: case.chat,
            stop_at_eos: false,
            top_logits: 20,
            ..Default::default()
        };
        let out = g.generate(&case.prompt, &opts, &mut |_| true).await?;
        let worst = top_logits_within(
            &case.name,
            &out.first_step_top_logits,
            &case.top_logits,
            3e-4,
        );
        log(&format!(
            "cpu {}: top logits within {worst:.2e}; prefill {:.1} ms, decode {:.1} tok/s, text {:?}",
            case.name, out.stats.prefill_ms, out.stats.decode_tok_s, out.text
        ));
        assert_eq!(
            out.ids,
            case.greedy_ids[..tokens],
            "{}: greedy ids",
            case.name
        );
        assert_eq!(out.stop_reason, StopReason::MaxTokens);
    }
    // Two turns in a session: the second prefills only what the first did not feed.
    let opts = GenerateOptions {
        max_tokens: 4,
        ..Default::default()
    };
    let mut session = ChatSession::new();
    let mut messages = vec![Message::new("user", "Name a colour.")];
    let first = g
        .chat(&mut session, &messages, &opts, &mut |_| true)
        .await?;
    messages.push(Message::new("assistant", &first.text));
    messages.push(Message::new("user", "And another?"));
    let second = g
        .chat(&mut session, &messages, &opts, &mut |_| true)
        .await?;
    assert!(
        second.stats.reused_tokens >= first.prompt_ids.len(),
        "{:?}",
        second.stats
    );
    let fresh = g
        .chat(&mut ChatSession::new(), &messages, &opts, &mut |_| true)
        .await?;
    assert_eq!(second.ids, fresh.ids, "a reused cache changes nothing");
    assert_eq!(cpu.stats().host_to_gpu_bytes, 0);
    Ok(())
}
gpu_test!(cpu_backend_matches_transformers, cpu_backend_body);

/// Decoding steps recorded several to a submit (`GenerateOptions::steps_per_submit`) choose the same
/// tokens as one step a submit, in fewer submits: 20 greedy tokens of a tiny checkpoint on the GPU,
/// running 8 ahead (after the prompt's step, batches of 1, 2, 4, 8 and the last 4 steps: 19 submits
/// one a step, 5 with up to 64 a submit, 9 with 3). Natively only (the option is the same code in
/// the browser).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn steps_per_submit_changes_only_the_submits() {
    pollster::block_on(async {
        let gpu = gpu().await?;
        let path = "tests/fixtures/tiny-gguf/tiny-kquants.gguf";
        let g = Generator::from_path(&gpu, path.as_ref(), &mut |_| {})?;
        let mut runs = Vec::new();
        for per in [1, 3, 64] {
            let opts = GenerateOptions {
                max_tokens: 20,
                stop_at_eos: false,
                run_ahead: 8,
                steps_per_submit: per,
                ..Default::default()
            };
            let before = gpu.stats().submits;
            let out = g.generate("Once upon a time", &opts, &mut |_| true).await?;
            assert_eq!(out.ids.len(), 20, "{per} a submit");
            runs.push((out.ids, gpu.stats().submits - before));
        }
        assert_eq!(
            runs[0].0, runs[1].0,
            "greedy ids, 3 steps a submit against 1"
        );
        assert_eq!(
            runs[0].0, runs[2].0,
            "greedy ids, 64 steps a submit against 1"
        );
        assert_eq!(runs[0].1 - runs[2].1, 19 - 5, "submits {runs:?}");
        assert_eq!(runs[0].1 - runs[1].1, 19 - 9, "submits {runs:?}");
        Ok::<(), Error>(())
    })
    .expect("steps per submit");
}
