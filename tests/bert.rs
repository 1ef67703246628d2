//! all-MiniLM-L6-v2 end to end against sentence-transformers' own output
//! (tests/goldens/all-MiniLM-L6-v2.json, made by scripts/goldens_minilm.py): identical token ids,
//! and per text cosine ≥ 0.999999 and max |difference| ≤ 5e-6 (f32 throughout: the GPU's sums run in
//! another order than PyTorch's; measured ≤ 4.3e-7 on lavapipe and ≤ 3.7e-7 in Chromium on SwiftShader,
//! cosines within 2e-7 of 1, so the bounds are ~10× the measured error; any wrong op is off by far more).
mod common;

use common::{gpu, log, read_asset};
use webgpu_infer::models::bert::Config;
use webgpu_infer::models::embedder::{Embedder, cosine};
use webgpu_infer::{Error, Gpu, Result};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const DIR: &str = "models/all-MiniLM-L6-v2";

async fn minilm(gpu: &Gpu) -> Result<Embedder> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        Embedder::from_dir(gpu, DIR.as_ref())
    }
    #[cfg(target_arch = "wasm32")]
    {
        use webgpu_infer::bridge::web::{Source, load};
        let weights = load(
            gpu,
            Source::Url(format!("/{DIR}/model.safetensors")),
            None,
            &mut |_| {},
        )
        .await?;
        let folder = folder_files().await;
        let files = folder.files();
        Embedder::new(gpu, &weights, &files)
    }
}

/// MiniLM's text files, fetched in the browser (natively `from_dir` reads them).
#[cfg(target_arch = "wasm32")]
struct FolderFiles([Vec<u8>; 5]);

#[cfg(target_arch = "wasm32")]
impl FolderFiles {
    fn files(&self) -> webgpu_infer::models::embedder::ModelFiles<'_> {
        let [config, tokenizer, st, modules, pooling] = &self.0;
        webgpu_infer::models::embedder::ModelFiles {
            config,
            tokenizer,
            sentence_bert_config: Some(st),
            modules: Some(modules),
            pooling: Some(pooling),
        }
    }
}

#[cfg(target_arch = "wasm32")]
async fn folder_files() -> FolderFiles {
    let names = [
        "config.json",
        "tokenizer.json",
        "sentence_bert_config.json",
        "modules.json",
        "1_Pooling/config.json",
    ];
    let mut bytes = Vec::new();
    for name in names {
        bytes.push(read_asset(&format!("{DIR}/{name}")).await);
    }
    FolderFiles(bytes.try_into().unwrap())
}

struct Golden {
    texts: Vec<String>,
    ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
}

async fn goldens() -> Golden {
    let json: serde_json::Value =
        serde_json::from_slice(&read_asset("tests/goldens/all-MiniLM-L6-v2.json").await).unwrap();
    let texts = json["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let ids = serde_json::from_value(json["token_ids"].clone()).unwrap();
    let embeddings = serde_json::from_value(json["embeddings"].clone()).unwrap();
    Golden {
        texts,
        ids,
        embeddings,
    }
}

/// Bounds on devices whose linears run on tensor cores (f32 activations rounded to f16 as they are
/// staged, f16 weights, f32 accumulation; `Capabilities::cooperative_matrix`): the issue's cosine
/// ≥ 0.9999 and max |difference| ≤ 2e-3 (f16's relative rounding is 4.9e-4; elements are ≤ 0.3).
const MIXED_COS: f32 = 0.9999;
const MIXED_MAX_DIFF: f32 = 2e-3;

fn check(what: &str, got: &[f32], want: &[f32]) {
    check_within(what, got, want, 0.999999, 5e-6);
}

fn check_within(what: &str, got: &[f32], want: &[f32], min_cos: f32, max_abs: f32) {
    let cos = cosine(got, want);
    let max_diff = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    log(&format!(
        "{what}: cosine {cos:.7}, max |diff| {max_diff:.2e}"
    ));
    assert!(
        cos >= min_cos && max_diff <= max_abs,
        "{what}: cosine {cos}, max |diff| {max_diff}"
    );
}

async fn matches_sentence_transformers() -> Result<()> {
    let gpu = gpu().await?;
    matches_on(&gpu).await?;
    // Where the linears ran on tensor cores, the f32 path too (a device that may not use them).
    #[cfg(not(target_arch = "wasm32"))]
    if gpu.capabilities().cooperative_matrix {
        let options = webgpu_infer::GpuOptions {
            allow_cooperative_matrix: false,
            ..Default::default()
        };
        matches_on(&Gpu::with_options(&options).await?).await?;
    }
    Ok(())
}

async fn matches_on(gpu: &Gpu) -> Result<()> {
    let gpu = gpu.clone();
    let embedder = minilm(&gpu).await?;
    let mixed = embedder.uses_tensor_cores();
    let golden = goldens().await;
    for (text, want) in golden.texts.iter().zip(&golden.ids) {
        assert_eq!(&embedder.tokenize(text)?.0, want, "token ids of {text:?}");
    }
    let texts: Vec<&str> = golden.texts.iter().map(String::as_str).collect();
    // Natively, all ten in one batch padded to 256 tokens. SwiftShader runs on the CPU: there, the
    // eight shorter texts make one padded batch and the two long ones run alone.
    let batches: &[(usize, usize)] = if cfg!(target_arch = "wasm32") {
        &[(0, 8), (8, 9), (9, 10)]
    } else {
        &[(0, 10)]
    };
    for &(start, end) in batches {
        let range = start..end;
        gpu.reset_stats();
        let out = embedder.embed(&texts[range.clone()]).await?;
        // One submit for the whole call (inputs, forward pass, pooling and the vectors' read-back),
        // and only the vectors come back.
        let stats = gpu.stats();
        assert_eq!(stats.submits, 1, "submits of one embed call");
        // Q, K and V as one product (stacked weights): a layer is 7 dispatches (QKV, attention,
        // the attention output with its residual, LayerNorm, intermediate with GELU, output with its
        // residual, LayerNorm); then the embeddings and their LayerNorm, pooling, normalising. On
        // a GPU a product of few tiles and a long K is two (split K: the parts, their sum), so each
        // layer's four products may add one each; CPU adapters run the Direct kernel, never split.
        let base = 6 * 7 + 4;
        if gpu.capabilities().cpu_kernels {
            assert_eq!(stats.dispatches, base, "dispatches of one embed call");
        } else {
            let most = base + 6 * 4;
            assert!(
                (base..=most).contains(&stats.dispatches),
                "dispatches of one embed call: {} (from {base} to {most})",
                stats.dispatches
            );
        }
        assert_eq!(stats.gpu_to_host_bytes, (range.len() * 384 * 4) as u64);
        for (i, v) in range.clone().zip(&out.vectors) {
            let what = format!("text {i} ({} tokens)", golden.ids[i].len());
            if mixed {
                let what = format!("{what}, tensor cores");
                check_within(&what, v, &golden.embeddings[i], MIXED_COS, MIXED_MAX_DIFF);
            } else {
                check(&what, v, &golden.embeddings[i]);
            }
        }
        if range.contains(&9) {
            assert!(
                out.truncated[9 - range.start],
                "the longest text is reported truncated"
            );
            assert_eq!(out.tokens[9 - range.start], 256);
        }
    }
    Ok(())
}
gpu_test!(
    minilm_matches_sentence_transformers,
    matches_sentence_transformers
);

async fn edge_inputs() -> Result<()> {
    let gpu = gpu().await?;
    let embedder = minilm(&gpu).await?;
    let none = embedder.embed(&[]).await?;
    assert!(none.vectors.is_empty());
    let one = embedder.embed(&[""]).await?;
    assert_eq!(one.tokens, [2], "an empty text is [CLS] [SEP]");
    assert_eq!(one.vectors[0].len(), 384);
    let norm: f32 = one.vectors[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() < 1e-5,
        "normalized, as modules.json asks: {norm}"
    );
    let err = Config::from_json("config.json", br#"{"model_type":"llama","vocab_size":1,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":1,"intermediate_size":8,"max_position_embeddings":8}"#).unwrap_err();
    assert!(
        matches!(err, Error::Model { .. }) && err.to_string().contains("llama"),
        "{err}"
    );
    Ok(())
}
gpu_test!(empty_inputs_and_non_bert_configs, edge_inputs);

/// The CPU backend (the same BERT code over `Ops for Cpu`) against the same goldens and bounds:
/// its sums run in yet another order (blocked sgemm, a polynomial erf within 1.5e-7).
async fn cpu_matches_sentence_transformers() -> Result<()> {
    let cpu = webgpu_infer::cpu::Cpu::new();
    let embedder = minilm_cpu(&cpu).await?;
    assert_eq!(embedder.backend(), "cpu");
    let golden = goldens().await;
    let texts: Vec<&str> = golden.texts.iter().map(String::as_str).collect();
    let out = embedder.embed(&texts).await?;
    for (i, v) in out.vectors.iter().enumerate() {
        check(
            &format!("cpu: text {i} ({} tokens)", golden.ids[i].len()),
            v,
            &golden.embeddings[i],
        );
    }
    let stats = cpu.stats();
    // f32 weights are views of the file's bytes, read once: resident = the file, rounded to 4.
    let file = read_asset(&format!("{DIR}/model.safetensors")).await.len() as u64;
    assert_eq!(stats.host_weight_bytes, file.div_ceil(4) * 4);
    // One copy of the file, nothing widened; in the browser the test server sends no
    // Content-Length, so the first chunk (holding the header, which gives the length) moves once more.
    let moved = stats.wasm_bytes_in - file;
    assert!(
        moved == 0 || (cfg!(target_arch = "wasm32") && moved < file / 4),
        "{} bytes copied in for a {file}-byte file",
        stats.wasm_bytes_in
    );
    assert_eq!((stats.submits, stats.host_to_gpu_bytes), (0, 0));
    drop(embedder);
    assert_eq!(cpu.stats().host_weight_bytes, 0, "freed with the model");
    Ok(())
}
gpu_test!(
    cpu_backend_matches_sentence_transformers,
    cpu_matches_sentence_transformers
);

async fn minilm_cpu(cpu: &webgpu_infer::cpu::Cpu) -> Result<Embedder> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        Embedder::from_dir_cpu(cpu, DIR.as_ref())
    }
    #[cfg(target_arch = "wasm32")]
    {
        let weights = webgpu_infer::bridge::web::load_host(
            cpu,
            webgpu_infer::bridge::web::Source::Url(format!("/{DIR}/model.safetensors")),
            None,
            &mut |_| {},
        )
        .await?;
        let folder = folder_files().await;
        let files = folder.files();
        Embedder::new_cpu(cpu, &weights, &files)
    }
}
