//! Building a [`Generator`]: from a GGUF file, a Hugging Face folder, or a path to either.

use tokenizers::Tokenizer;

use crate::bridge::Weights;
use crate::error::{Error, Result};
use crate::formats::gguf::{Header, Value};
use crate::gpu::Gpu;
use crate::models::llama::{Config, DEFAULT_CONTEXT, Llama, check_fits};
use crate::models::text::{ChatTemplate, tokenizer_from_gguf};

use super::{Engine, Generator, RawStart};
use crate::cpu::{Cpu, HostWeights};

/// A generator's text side: what turns text into ids and back.
struct TextParts {
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    eos_ids: Vec<u32>,
    raw_start: RawStart,
}
use crate::bridge::folder::{FileSpec, FolderFiles};

/// The files of a Hugging Face model folder a generator reads besides the weights.
pub const HF_FILES: &[FileSpec] = &[
    FileSpec::required("config.json"),
    FileSpec::required("tokenizer.json"),
    FileSpec::optional("tokenizer_config.json"),
];

fn model_error(source: &str, message: impl Into<String>) -> Error {
    Error::Model {
        source_name: source.to_string(),
        message: message.into(),
    }
}

impl Generator {
    /// Builds a generator from a loaded GGUF file: the model from its `{arch}.*` metadata and tensors
    /// ([`crate::models::llama::GGUF_ARCHS`]),
    /// the tokenizer from `tokenizer.ggml.*`, the chat template from `tokenizer.chat_template`.
    pub fn from_gguf(
        gpu: &Gpu,
        source: &str,
        header: &Header,
        weights: &Weights,
    ) -> Result<Generator> {
        Self::from_gguf_with_context(gpu, source, header, weights, None)
    }

    /// [`Generator::from_gguf`] for generations of up to `context` positions (`None`: the model's,
    /// up to [`DEFAULT_CONTEXT`]). [`check_fits`] runs on the header first; loaders that take a check
    /// (`load_gguf_checked`) run it before the weights load, so that a model that cannot fit fails
    /// before its bytes travel.
    pub fn from_gguf_with_context(
        gpu: &Gpu,
        source: &str,
        header: &Header,
        weights: &Weights,
        context: Option<usize>,
    ) -> Result<Generator> {
        let (cfg, context) = check_fits(gpu, source, header, context)?;
        let model = Llama::from_gguf(cfg, weights, header)?;
        let text = Self::text_from_gguf(source, header)?;
        let mut g = Self::new(Engine::Gpu(gpu.clone(), model), text)?;
        g.context = context;
        Ok(g)
    }

    /// A generator on the CPU backend from a GGUF file read into host memory
    /// (`crate::cpu::HostWeights::from_gguf`): the same model, tokenizer and template, computed by
    /// the CPU kernels; generations of up to `context` positions (`None`: the model's, up to
    /// [`DEFAULT_CONTEXT`]).
    pub fn from_gguf_host(
        cpu: &Cpu,
        source: &str,
        header: &Header,
        weights: &HostWeights,
        context: Option<usize>,
    ) -> Result<Generator> {
        let cfg = Config::from_gguf_header(source, header)?;
        let context = super::check_host_context(
            &cfg,
            context.unwrap_or(cfg.max_position_embeddings.min(DEFAULT_CONTEXT)),
        )?;
        let model = Llama::<Cpu>::from_gguf(cfg, weights, header)?;
        let text = Self::text_from_gguf(source, header)?;
        let mut g = Self::new(Engine::Cpu(cpu.clone(), model), text)?;
        g.context = context;
        Ok(g)
    }

    /// Reads a model natively into host memory and builds a CPU generator from it: a `.gguf` file,
    /// or a Hugging Face folder (`config.json`, `model.safetensors`, `tokenizer.json`, optionally
    /// `tokenizer_config.json`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_path_host(
        cpu: &Cpu,
        path: &std::path::Path,
        context: Option<usize>,
    ) -> Result<Generator> {
        if path.is_dir() {
            let files = crate::bridge::folder::read_dir(path, HF_FILES)?;
            let weights = cpu.load(&path.join("model.safetensors"))?;
            return Self::from_hf_folder_host(cpu, &weights, &files, context);
        }
        let source = path.display().to_string();
        let (header, weights) = HostWeights::read_gguf(path, cpu.copy_stats_arc())?;
        Self::from_gguf_host(cpu, &source, &header, &weights, context)
    }

    /// The tokenizer, chat template, end tokens and raw-prompt start a GGUF file's metadata gives.
    fn text_from_gguf(source: &str, header: &Header) -> Result<TextParts> {
        let tokenizer = tokenizer_from_gguf(source, header)?;
        let token = |key: &str| -> Option<String> {
            let id = header.metadata.get(key)?.as_u64()?;
            tokenizer.id_to_token(id as u32)
        };
        let template = match header.metadata.get("tokenizer.chat_template") {
            Some(Value::String(t)) => Some(ChatTemplate::new(
                t,
                &token("tokenizer.ggml.bos_token_id").unwrap_or_default(),
                &token("tokenizer.ggml.eos_token_id").unwrap_or_default(),
            )?),
            _ => None,
        };
        let mut eos_ids: Vec<u32> = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
            .iter()
            .filter_map(|k| header.metadata.get(*k)?.as_u64().map(|v| v as u32))
            .collect();
        eos_ids.extend(Self::end_tokens(&tokenizer));
        eos_ids.dedup();
        // llama.cpp: a BOS token before the text when the file asks for one (LLaMA 2/3, Gemma, Phi-3).
        let add_bos = header
            .metadata
            .get("tokenizer.ggml.add_bos_token")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let bos = header
            .metadata
            .get("tokenizer.ggml.bos_token_id")
            .and_then(Value::as_u64);
        let raw_start = match (add_bos, bos) {
            (true, Some(id)) => RawStart::Bos(id as u32),
            _ => RawStart::Nothing,
        };
        Ok(TextParts {
            tokenizer,
            template,
            eos_ids,
            raw_start,
        })
    }

    /// Builds a generator from a Hugging Face checkpoint: `config.json`, the weights, `tokenizer.json`
    /// and (for the chat template and special tokens) `tokenizer_config.json`.
    pub fn from_hf(
        gpu: &Gpu,
        weights: &Weights,
        config: &[u8],
        tokenizer_json: &[u8],
        tokenizer_config: Option<&[u8]>,
    ) -> Result<Generator> {
        let cfg = Config::from_json("config.json", config)?;
        let model = Llama::from_hf(cfg, weights)?;
        let text = Self::text_from_hf(tokenizer_json, tokenizer_config)?;
        Self::new(Engine::Gpu(gpu.clone(), model), text)
    }

    /// [`Generator::from_hf`] on the CPU backend, from the safetensors weights read into host memory
    /// (`HostWeights::from_safetensors`; bf16/f16 widened to f32 there); generations of up to
    /// `context` positions (`None`: the model's, up to [`DEFAULT_CONTEXT`]).
    pub fn from_hf_host(
        cpu: &Cpu,
        weights: &HostWeights,
        (config, tokenizer_json, tokenizer_config): (&[u8], &[u8], Option<&[u8]>),
        context: Option<usize>,
    ) -> Result<Generator> {
        let cfg = Config::from_json("config.json", config)?;
        let context = super::check_host_context(
            &cfg,
            context.unwrap_or(cfg.max_position_embeddings.min(DEFAULT_CONTEXT)),
        )?;
        let model = Llama::<Cpu>::from_hf(cfg, weights)?;
        let text = Self::text_from_hf(tokenizer_json, tokenizer_config)?;
        let mut g = Self::new(Engine::Cpu(cpu.clone(), model), text)?;
        g.context = context;
        Ok(g)
    }

    /// [`Generator::from_hf_host`] with the files of [`HF_FILES`] as a folder read gave them.
    pub fn from_hf_folder_host(
        cpu: &Cpu,
        weights: &HostWeights,
        files: &FolderFiles,
        context: Option<usize>,
    ) -> Result<Generator> {
        let parts = (
            files.required("config.json")?,
            files.required("tokenizer.json")?,
            files.get("tokenizer_config.json"),
        );
        Self::from_hf_host(cpu, weights, parts, context)
    }

    /// The tokenizer, chat template and end tokens of a Hugging Face folder's `tokenizer.json` and
    /// `tokenizer_config.json`.
    fn text_from_hf(tokenizer_json: &[u8], tokenizer_config: Option<&[u8]>) -> Result<TextParts> {
        let tokenizer = Tokenizer::from_bytes(tokenizer_json)
            .map_err(|e| model_error("tokenizer.json", e.to_string()))?;
        let tc: serde_json::Value = match tokenizer_config {
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| model_error("tokenizer_config.json", e.to_string()))?,
            None => serde_json::Value::Null,
        };
        let special = |key: &str| -> String {
            match &tc[key] {
                serde_json::Value::String(s) => s.clone(),
                v => v["content"].as_str().unwrap_or_default().to_string(),
            }
        };
        let template = match tc["chat_template"].as_str() {
            Some(t) => Some(ChatTemplate::new(
                t,
                &special("bos_token"),
                &special("eos_token"),
            )?),
            None => None,
        };
        let mut eos_ids: Vec<u32> = tokenizer
            .token_to_id(&special("eos_token"))
            .into_iter()
            .collect();
        eos_ids.extend(Self::end_tokens(&tokenizer));
        eos_ids.dedup();
        Ok(TextParts {
            tokenizer,
            template,
            eos_ids,
            raw_start: RawStart::PostProcessor,
        })
    }

    /// Loads a model natively: a `.gguf` file, or a Hugging Face folder (`config.json`, safetensors
    /// weights, `tokenizer.json`, optionally `tokenizer_config.json`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_path(
        gpu: &Gpu,
        path: &std::path::Path,
        on_progress: crate::bridge::OnProgress<'_>,
    ) -> Result<Generator> {
        Self::from_path_with_context(gpu, path, None, on_progress)
    }

    /// [`Generator::from_path`] for generations of up to `context` positions (GGUF: checked against
    /// the adapter's limits before any weight loads; see [`Generator::from_gguf_with_context`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_path_with_context(
        gpu: &Gpu,
        path: &std::path::Path,
        context: Option<usize>,
        on_progress: crate::bridge::OnProgress<'_>,
    ) -> Result<Generator> {
        if path.is_file() {
            let source = path.display().to_string();
            let check = |h: &Header| check_fits(gpu, &source, h, context).map(drop);
            let (header, weights) =
                crate::bridge::native::load_gguf_checked(gpu, path, on_progress, &check)?;
            return Self::from_gguf_with_context(gpu, &source, &header, &weights, context);
        }
        let files = crate::bridge::folder::read_dir(path, HF_FILES)?;
        let weights = crate::bridge::native::load(gpu, path, on_progress)?;
        Self::from_hf_folder(gpu, &weights, &files)
    }

    /// [`Generator::from_hf`] with the files of [`HF_FILES`] as a folder read gave them.
    pub fn from_hf_folder(gpu: &Gpu, weights: &Weights, files: &FolderFiles) -> Result<Generator> {
        Self::from_hf(
            gpu,
            weights,
            files.required("config.json")?,
            files.required("tokenizer.json")?,
            files.get("tokenizer_config.json"),
        )
    }

    /// The end-of-turn tokens of the common chat formats, where the vocabulary has them.
    fn end_tokens(tokenizer: &Tokenizer) -> Vec<u32> {
        ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect()
    }

    fn new(engine: Engine, text: TextParts) -> Result<Generator> {
        let TextParts {
            tokenizer,
            template,
            mut eos_ids,
            raw_start,
        } = text;
        eos_ids.sort_unstable();
        eos_ids.dedup();
        let mut g = Generator {
            engine,
            tokenizer,
            template,
            eos_ids,
            raw_start,
            context: 0,
            grammars: std::sync::OnceLock::new(),
        };
        g.context = g.config().max_position_embeddings.min(DEFAULT_CONTEXT);
        Ok(g)
    }
}
