//! Building a [`Generator`]: from a GGUF file, a Hugging Face folder, or a path to either.

use tokenizers::Tokenizer;

use crate::bridge::Weights;
use crate::error::{Error, Result};
use crate::formats::gguf::{Header, Value};
use crate::gpu::Gpu;
use crate::models::llama::{Config, DEFAULT_CONTEXT, Llama, check_fits};
use crate::models::text::{ChatTemplate, tokenizer_from_gguf};

use super::{Generator, RawStart};
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
        let mut g = Self::new(gpu, model, tokenizer, template, eos_ids, raw_start)?;
        g.context = context;
        Ok(g)
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
        Self::new(
            gpu,
            model,
            tokenizer,
            template,
            eos_ids,
            RawStart::PostProcessor,
        )
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

    fn new(
        gpu: &Gpu,
        model: Llama,
        tokenizer: Tokenizer,
        template: Option<ChatTemplate>,
        mut eos_ids: Vec<u32>,
        raw_start: RawStart,
    ) -> Result<Generator> {
        eos_ids.sort_unstable();
        eos_ids.dedup();
        let context = model.config().max_position_embeddings.min(DEFAULT_CONTEXT);
        Ok(Generator {
            gpu: gpu.clone(),
            model,
            tokenizer,
            template,
            eos_ids,
            raw_start,
            context,
            grammars: std::sync::OnceLock::new(),
        })
    }
}
