//! [`Embedder`]: sentence embeddings as sentence-transformers computes them: tokenize (the model's
//! `tokenizer.json`, truncated at `max_seq_length`, padded to the batch's longest text), run the BERT
//! encoder, mean-pool over real tokens, and L2-normalize when the model's `modules.json` says so. On
//! the GPU: one submit for the whole batch, only the pooled vectors read back; on the CPU
//! ([`Embedder::new_cpu`]): the same model code over the CPU backend.

use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use crate::models::fast_tokens::AsciiBert;

use crate::bridge::Weights;
use crate::bridge::folder::{FileSpec, FolderFiles};
use crate::cpu::{Cpu, HostWeights};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::models::bert::{Bert, Config};
use crate::models::linear::Linear;
use crate::models::ops::Ops;
use crate::recorder::Recorder;

/// The files of a sentence-transformers folder besides the weights (`ModelFiles` reads them).
pub const EMBEDDER_FILES: &[FileSpec] = &[
    FileSpec::required("config.json"),
    FileSpec::required("tokenizer.json"),
    FileSpec::optional("sentence_bert_config.json"),
    FileSpec::optional("modules.json"),
    FileSpec::optional("1_Pooling/config.json"),
];

/// The text files of a sentence-transformers model folder, as bytes (read natively, fetched on the web).
pub struct ModelFiles<'a> {
    /// `config.json`.
    pub config: &'a [u8],
    /// `tokenizer.json`.
    pub tokenizer: &'a [u8],
    /// `sentence_bert_config.json` (for `max_seq_length`); without it, the model's position limit.
    pub sentence_bert_config: Option<&'a [u8]>,
    /// `modules.json` (does the model end with `Normalize`?); without it, vectors are normalized.
    pub modules: Option<&'a [u8]>,
    /// `1_Pooling/config.json`; without it, mean pooling is assumed.
    pub pooling: Option<&'a [u8]>,
}

/// Embeddings of a batch of texts.
#[derive(Clone, Debug)]
pub struct Embeddings {
    pub dims: usize,
    /// One vector of `dims` per text, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens each text became (special tokens included, after truncation).
    pub tokens: Vec<usize>,
    /// Whether each text was cut at `max_seq_length` tokens.
    pub truncated: Vec<bool>,
}

/// Where an [`Embedder`]'s encoder runs.
enum Engine {
    Gpu {
        gpu: Gpu,
        bert: Bert<Recorder>,
        /// The linears run on tensor cores (f16 weights, f32 activations rounded to f16).
        tensor_cores: bool,
    },
    Cpu {
        cpu: Cpu,
        bert: Bert<Cpu>,
    },
}

/// A sentence-embedding model on the GPU or the CPU.
pub struct Embedder {
    engine: Engine,
    config: Config,
    tokenizer: Tokenizer,
    /// The ASCII road through BERT tokenizers (`None` for other tokenizers).
    fast: Option<AsciiBert>,
    pad_id: u32,
    max_seq_length: usize,
    normalize: bool,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Pooling {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
}

impl<'a> ModelFiles<'a> {
    /// The files of [`EMBEDDER_FILES`] as a folder read gave them.
    pub fn from_folder(files: &'a FolderFiles) -> Result<ModelFiles<'a>> {
        Ok(ModelFiles {
            config: files.required("config.json")?,
            tokenizer: files.required("tokenizer.json")?,
            sentence_bert_config: files.get("sentence_bert_config.json"),
            modules: files.get("modules.json"),
            pooling: files.get("1_Pooling/config.json"),
        })
    }
}

impl Embedder {
    /// Builds an embedder from weights loaded on the GPU and the model's text files.
    pub fn new(gpu: &Gpu, weights: &Weights, files: &ModelFiles<'_>) -> Result<Embedder> {
        let config = Config::from_json("config.json", files.config)?;
        let mut bert = Bert::<Recorder>::load(weights, config.clone())?;
        // Tensor cores where the device has them: the linears' weights as f16. Then each layer's Q,
        // K and V weights stacked in one buffer, run as one product (one submit for both; natively
        // `WEBGPU_INFER_STACK_QKV=0` leaves them apart, for A/B runs).
        static STACK: crate::kernels::Tuned = crate::kernels::Tuned::new("WEBGPU_INFER_STACK_QKV");
        let mut tensor_cores = false;
        let mut rec = gpu.recorder();
        if gpu.capabilities().cooperative_matrix {
            for l in bert.linears_mut() {
                tensor_cores |= l.use_tensor_cores(&mut rec)?;
            }
        }
        if STACK.get() != Some(0) {
            for mut qkv in bert.qkv_mut() {
                Linear::stack(&mut rec, &mut qkv)?;
            }
        }
        rec.submit();
        Embedder::with_engine(
            Engine::Gpu {
                gpu: gpu.clone(),
                bert,
                tensor_cores,
            },
            config,
            files,
        )
    }

    /// Builds an embedder on the CPU backend from weights in host memory.
    pub fn new_cpu(cpu: &Cpu, weights: &HostWeights, files: &ModelFiles<'_>) -> Result<Embedder> {
        let config = Config::from_json("config.json", files.config)?;
        let bert = Bert::<Cpu>::load(weights, config.clone())?;
        Embedder::with_engine(
            Engine::Cpu {
                cpu: cpu.clone(),
                bert,
            },
            config,
            files,
        )
    }

    /// `"gpu"` or `"cpu"`: where the encoder runs.
    pub fn backend(&self) -> &'static str {
        match self.engine {
            Engine::Gpu { .. } => "gpu",
            Engine::Cpu { .. } => "cpu",
        }
    }

    /// Whether the encoder's linears run on tensor cores (f16 weights; f32 activations rounded to
    /// f16 as the kernel stages them, f32 sums): on GPUs with cooperative matrices, natively.
    pub fn uses_tensor_cores(&self) -> bool {
        matches!(
            self.engine,
            Engine::Gpu {
                tensor_cores: true,
                ..
            }
        )
    }

    fn with_engine(engine: Engine, config: Config, files: &ModelFiles<'_>) -> Result<Embedder> {
        let bad = |source: &str, m: String| Error::Model {
            source_name: source.into(),
            message: m,
        };
        let max_seq_length = match files.sentence_bert_config {
            Some(json) => {
                serde_json::from_slice::<SentenceBertConfig>(json)
                    .map_err(|e| bad("sentence_bert_config.json", e.to_string()))?
                    .max_seq_length
            }
            None => config.max_position_embeddings,
        }
        .min(config.max_position_embeddings);
        let normalize = match files.modules {
            Some(json) => serde_json::from_slice::<Vec<Module>>(json)
                .map_err(|e| bad("modules.json", e.to_string()))?
                .iter()
                .any(|m| m.kind.ends_with("Normalize")),
            None => true,
        };
        if let Some(json) = files.pooling {
            let p: Pooling = serde_json::from_slice(json)
                .map_err(|e| bad("1_Pooling/config.json", e.to_string()))?;
            if !p.pooling_mode_mean_tokens || p.pooling_mode_cls_token || p.pooling_mode_max_tokens
            {
                return Err(bad(
                    "1_Pooling/config.json",
                    "only mean pooling is implemented".into(),
                ));
            }
        }
        let mut tokenizer = Tokenizer::from_bytes(files.tokenizer)
            .map_err(|e| bad("tokenizer.json", e.to_string()))?;
        // tokenizer.json may bake in padding and truncation (MiniLM's pads every text to 128): this
        // embedder pads to the batch's longest text itself and truncates at max_seq_length.
        let pad_id = tokenizer.get_padding().map_or(0, |p| p.pad_id);
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq_length,
                ..Default::default()
            }))
            .map_err(|e| bad("tokenizer.json", e.to_string()))?;
        Ok(Embedder {
            engine,
            config,
            fast: AsciiBert::new(&tokenizer),
            tokenizer,
            pad_id,
            max_seq_length,
            normalize,
        })
    }

    /// Loads a sentence-transformers model folder (`model.safetensors`, `config.json`,
    /// `tokenizer.json`, ...).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(gpu: &Gpu, dir: &std::path::Path) -> Result<Embedder> {
        let files = crate::bridge::folder::read_dir(dir, EMBEDDER_FILES)?;
        let weights = crate::bridge::native::load(gpu, dir, &mut |_| {})?;
        Embedder::new(gpu, &weights, &ModelFiles::from_folder(&files)?)
    }

    /// Loads a sentence-transformers model folder onto the CPU backend (the weights read into host
    /// memory once).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir_cpu(cpu: &Cpu, dir: &std::path::Path) -> Result<Embedder> {
        let files = crate::bridge::folder::read_dir(dir, EMBEDDER_FILES)?;
        let weights = cpu.load(&dir.join("model.safetensors"))?;
        Embedder::new_cpu(cpu, &weights, &ModelFiles::from_folder(&files)?)
    }

    /// Output dimension (the hidden size).
    pub fn dims(&self) -> usize {
        self.config.hidden_size
    }

    /// Longest input in tokens; longer texts are truncated (and reported in [`Embeddings::truncated`]).
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// Token ids of `text` as the model sees it (special tokens added, truncated).
    pub fn tokenize(&self, text: &str) -> Result<(Vec<u32>, bool)> {
        tokenize_with(&self.tokenizer, self.fast.as_ref(), text)
    }

    /// Embeds `texts` in one batch, padded to the longest. An empty list gives no vectors; an empty
    /// string is embedded as sentence-transformers does (the special tokens alone).
    pub async fn embed(&self, texts: &[&str]) -> Result<Embeddings> {
        let dims = self.dims();
        // Tokenizing costs up to ~0.2 ms a 128-token text natively (ASCII text: ~0.02, see
        // fast_tokens): a batch's texts are split over the threads.
        let encoded: Vec<(Vec<u32>, bool)> = {
            use rayon::prelude::*;
            let (tokenizer, fast) = (&self.tokenizer, self.fast.as_ref());
            texts
                .par_iter()
                .map(|t| tokenize_with(tokenizer, fast, t))
                .collect::<Result<_>>()?
        };
        let tokens: Vec<usize> = encoded.iter().map(|(ids, _)| ids.len()).collect();
        let truncated = encoded.iter().map(|(_, t)| *t).collect();
        let (batch, seq) = (texts.len(), tokens.iter().copied().max().unwrap_or(0));
        if batch == 0 {
            return Ok(Embeddings {
                dims,
                vectors: vec![],
                tokens,
                truncated,
            });
        }
        let vocab = self.config.vocab_size as u32;
        let mut ids = vec![self.pad_id as i32; batch * seq];
        let mut mask = vec![0i32; batch * seq];
        for (b, (row, _)) in encoded.iter().enumerate() {
            if let Some(&bad) = row.iter().find(|&&id| id >= vocab) {
                return Err(Error::Model {
                    source_name: "tokenizer.json".into(),
                    message: format!("token id {bad} is past the model's vocabulary of {vocab}"),
                });
            }
            for (s, &id) in row.iter().enumerate() {
                ids[b * seq + s] = id as i32;
                mask[b * seq + s] = 1;
            }
        }
        let shape = [batch, seq];
        let flat = match &self.engine {
            Engine::Gpu { gpu, bert, .. } => {
                let mut rec = gpu.recorder();
                let pooled = self.pooled(&mut rec, bert, &ids, &mask, shape)?;
                // The vectors come back in the forward pass's own submit, through a pooled staging
                // buffer.
                let bytes = rec.submit_and_read(&pooled).bytes().await?;
                crate::tensor::f32s_from_bytes(pooled.dtype(), &bytes)?
            }
            Engine::Cpu { cpu, bert } => {
                let mut cpu = cpu.clone();
                crate::cpu::par::with_team(|| {
                    self.pooled(&mut cpu, bert, &ids, &mask, shape)?.to_vec()
                })?
            }
        };
        let vectors = flat.chunks(dims).map(<[f32]>::to_vec).collect();
        Ok(Embeddings {
            dims,
            vectors,
            tokens,
            truncated,
        })
    }
}

impl Embedder {
    /// The pooled (and normalized) vectors `[batch, hidden]` of the padded `ids` under `mask`.
    fn pooled<O: Ops>(
        &self,
        o: &mut O,
        bert: &Bert<O>,
        ids: &[i32],
        mask: &[i32],
        shape: [usize; 2],
    ) -> Result<O::Tensor> {
        let t_ids = o.input_i32(ids, &shape)?;
        let t_mask = o.input_i32(mask, &shape)?;
        let t_types = o.input_i32(&vec![0; ids.len()], &shape)?;
        let hidden = bert.forward(o, &t_ids, &t_types, &t_mask)?;
        let pooled = o.mean_pool(&hidden, &t_mask)?;
        if self.normalize {
            // sentence-transformers' Normalize: torch.nn.functional.normalize, eps 1e-12.
            return o.l2_normalize(&pooled, 1e-12);
        }
        Ok(pooled)
    }
}

/// A text's ids (special tokens added, truncated as the tokenizer is set up) and whether it was
/// truncated.
fn tokenize_with(
    tokenizer: &Tokenizer,
    fast: Option<&AsciiBert>,
    text: &str,
) -> Result<(Vec<u32>, bool)> {
    let enc = fast
        .and_then(|f| f.encode(tokenizer, text))
        .unwrap_or_else(|| tokenizer.encode(text, true))
        .map_err(|e| Error::Input(format!("could not tokenize the text: {e}")))?;
    Ok((enc.get_ids().to_vec(), !enc.get_overflowing().is_empty()))
}

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}
