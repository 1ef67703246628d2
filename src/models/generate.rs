//! [`Generator`]: text generation with a LLaMA-family model. The prompt (optionally through the
//! model's chat template) is tokenized on the CPU and prefilled in one submit; then each new token is
//! one submit: the forward step reads the previous token's id from the GPU, samples on the GPU, and
//! only the new id (4 bytes) comes back. The next step is submitted before the current id is read, so
//! the GPU does not wait for the CPU between tokens.

use std::collections::VecDeque;

use tokenizers::Tokenizer;

use crate::bridge::Weights;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::formats::gguf::{Header, Value};
use crate::gpu::Gpu;
use crate::kernels::sample::{Penalty, Sampling, sample_masked, sample_with, seen_tokens};
use crate::models::chat::ChatSession;
use crate::models::constrain::{Constraint, Grammars, ResponseFormat};
use crate::models::llama::{Config, DEFAULT_CONTEXT, KvCache, Llama, check_context, check_fits};
use crate::models::text::{ChatTemplate, Message, tokenizer_from_gguf};
use crate::recorder::Readback;
use crate::tensor::{DType, Tensor};

/// How to generate.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// New tokens at most (the EOS token, when produced, counts).
    pub max_tokens: usize,
    /// Temperature, top-k, top-p and seed; the default is greedy.
    pub sampling: Sampling,
    /// transformers' `repetition_penalty` (1.0: off).
    pub repetition_penalty: f32,
    /// Generation stops before any of these strings; the text returned ends before it.
    pub stop: Vec<String>,
    /// Apply the model's chat template to the prompt as one user message (and open the assistant's
    /// turn).
    pub chat: bool,
    /// Stop at the model's end-of-sequence tokens (on by default).
    pub stop_at_eos: bool,
    /// Read back the first step's `top_logits` highest logits (0: none, the default: reading the
    /// logits costs a vocabulary-sized read-back).
    pub top_logits: usize,
    /// How many token ids come back in one read-back round trip at most (0: chosen for the
    /// adapter). Each step reads its input token on the GPU, so ids can come back later, many at a
    /// time: the read-back's latency (a `mapAsync` round trip: ~11 ms in Deno's WebGPU, a
    /// GPU-process hop in browsers) is paid once for a batch, and the next batch is recorded while
    /// it travels. Batches grow 1, 2, 4 ... up to this. The price: when generation stops early (EOS,
    /// a stop string), up to twice this many steps already submitted are computed and thrown away.
    pub run_ahead: usize,
    /// What the output must be (a JSON object, or JSON valid under a schema): sampling chooses only
    /// among the tokens that keep it so (see [`crate::models::constrain`]). Such a generation runs
    /// one step at a time (each step's choices depend on the last token), and needs `stop_at_eos`.
    pub response_format: Option<ResponseFormat>,
}

/// [`GenerateOptions::run_ahead`] on GPUs: a batch recorded at ~1 ms a step covers ~11 ms of
/// read-back latency. Software adapters (a second or more a step) read each id as it comes, one step
/// ahead, so that little is thrown away at the end.
const RUN_AHEAD_GPU: usize = 16;
const RUN_AHEAD_CPU: usize = 1;

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            sampling: Sampling::default(),
            repetition_penalty: 1.0,
            stop: Vec::new(),
            chat: false,
            stop_at_eos: true,
            top_logits: 0,
            run_ahead: 0,
            response_format: None,
        }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Eos,
    StopString,
    MaxTokens,
    /// The model's context length was reached.
    ContextFull,
    /// The caller's callback asked to stop.
    Cancelled,
}

impl StopReason {
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Eos => "eos",
            StopReason::StopString => "stop",
            StopReason::MaxTokens => "max_tokens",
            StopReason::ContextFull => "context_full",
            StopReason::Cancelled => "cancelled",
        }
    }
}

/// Timings and traffic of one generation.
#[derive(Clone, Debug, Default)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values a chat session's cache already held (not prefilled
    /// again; `prefill_tok_s` counts the others).
    pub reused_tokens: usize,
    pub new_tokens: usize,
    /// From the call until the first new token's id was on the CPU.
    pub prefill_ms: f64,
    /// From the first new token to the last.
    pub decode_ms: f64,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
    /// Bytes read back from the GPU a token (4 while decoding: the token id).
    pub bytes_read_back_per_token: f64,
    /// Where the time went: recording and submitting the decoding steps (CPU: the kernels' Rust
    /// side and the WebGPU calls), and waiting for token ids to come back (the GPU's work and the
    /// read-back's latency, less what overlapped with recording).
    pub record_ms: f64,
    pub wait_ms: f64,
}

/// The result of [`Generator::generate`].
#[derive(Clone, Debug)]
pub struct Generation {
    pub prompt_ids: Vec<u32>,
    /// The new tokens, the EOS token included when it ended generation.
    pub ids: Vec<u32>,
    /// The new text (special tokens and a matched stop string left out).
    pub text: String,
    pub stop_reason: StopReason,
    /// The first step's highest logits, `(id, logit)` best first ([`GenerateOptions::top_logits`]).
    pub first_step_top_logits: Vec<(u32, f32)>,
    pub stats: GenerationStats,
    /// When each new token's id arrived, in ms since the call began (`token_ms[i]` for `ids[i]`):
    /// per-token latency, and speed over any window of a long generation.
    pub token_ms: Vec<f64>,
}

/// A language model with its tokenizer and chat template.
pub struct Generator {
    gpu: Gpu,
    model: Llama,
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    eos_ids: Vec<u32>,
    /// How a prompt without the chat template starts: as the file says (GGUF's
    /// `tokenizer.ggml.add_bos_token`: the BOS id), or through tokenizer.json's post-processor (HF).
    raw_start: RawStart,
    /// Positions a generation may use at most (prompt and new tokens): the caller's, or the model's
    /// own up to [`DEFAULT_CONTEXT`]; checked against the adapter's limits before the weights load.
    context: usize,
    /// The vocabulary as the grammar engine walks it, built by the first constrained generation.
    grammars: std::sync::OnceLock<Grammars>,
}

/// What begins a raw prompt's ids (chat prompts get what their template writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RawStart {
    Nothing,
    Bos(u32),
    /// `tokenizer.json`'s post-processor adds what the model wants (`encode(text, true)`).
    PostProcessor,
}

impl Generator {
    /// CPU cost of a decoding step, in ms: (recording the model's and the sampler's kernels into a
    /// command encoder, then finishing the encoder, or with `submit` submitting it), averaged over
    /// `steps` steps after a warm-up. Without `submit` nothing reaches the GPU: this is what decoding
    /// costs the CPU per token whatever the GPU (`generate --bench --record-only`). On software
    /// adapters a submit runs the work, so there only the first figure means anything.
    pub fn recording_cost(&mut self, steps: usize, submit: bool) -> Result<(f64, f64)> {
        let steps = steps.max(1);
        let mut cache = self.model.new_cache(&self.gpu, steps + 2)?;
        let token = Tensor::from_bytes(&self.gpu, &1i32.to_le_bytes(), &[1], DType::I32)?;
        let sampling = Sampling::default();
        let (mut record, mut finish) = (0.0, 0.0);
        for i in 0..=steps {
            let t = now_ms();
            let mut rec = self.gpu.recorder();
            let logits = self.model.forward(&mut rec, &token, &mut cache)?;
            sample_with(&mut rec, &logits, &sampling, i as u32, None)?;
            let t2 = now_ms();
            if submit {
                rec.submit();
            } else {
                drop(rec.finish_unsubmitted());
            }
            if i > 0 {
                (record, finish) = (record + t2 - t, finish + now_ms() - t2);
            }
        }
        Ok((record / steps as f64, finish / steps as f64))
    }

    /// See [`Llama::set_fold_norms`].
    pub fn set_fold_norms(&mut self, on: bool) {
        self.model.set_fold_norms(on);
    }

    /// See [`Llama::fold_norms`].
    pub fn fold_norms(&self) -> bool {
        self.model.fold_norms()
    }
}

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
        let read = |name: &str| {
            std::fs::read(path.join(name)).map_err(|e| Error::Io {
                source_name: path.join(name).display().to_string(),
                message: e.to_string(),
            })
        };
        let weights = crate::bridge::native::load(gpu, path, on_progress)?;
        let tokenizer_config = read("tokenizer_config.json").ok();
        Self::from_hf(
            gpu,
            &weights,
            &read("config.json")?,
            &read("tokenizer.json")?,
            tokenizer_config.as_deref(),
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

    /// A fresh grammar state for `format` (the vocabulary's trie built on first use).
    fn constraint(&self, format: &ResponseFormat) -> Result<Constraint> {
        let grammars = match self.grammars.get() {
            Some(g) => g,
            None => {
                let g = Grammars::new(&self.tokenizer, &self.eos_ids)?;
                self.grammars.get_or_init(|| g)
            }
        };
        grammars.constraint(format, self.model.config().vocab_size)
    }

    /// Records one step (the model on `token`, then the choice of the next token among `allowed`
    /// when given) and submits it with the new id's read-back.
    fn submit_step(
        &self,
        token: &Tensor,
        cache: &mut KvCache,
        opts: &GenerateOptions,
        step: usize,
        penalty: Option<Penalty<'_>>,
        allowed: Option<&Tensor>,
    ) -> Result<(Tensor, Readback)> {
        let mut rec = self.gpu.recorder();
        let logits = self.model.forward(&mut rec, token, cache)?;
        let next = sample_masked(
            &mut rec,
            &logits,
            &opts.sampling,
            step as u32,
            penalty,
            allowed,
        )?;
        let read = rec.submit_and_read(&next);
        Ok((next, read))
    }

    /// The allowed-token bitset of `constraint`'s next step, uploaded (none without a constraint).
    fn mask_of(&self, constraint: Option<&mut Constraint>) -> Result<Option<Tensor>> {
        let Some(c) = constraint else {
            return Ok(None);
        };
        let words = c.mask()?;
        Tensor::from_bytes(
            &self.gpu,
            bytemuck::cast_slice(&words),
            &[1, words.len()],
            DType::I32,
        )
        .map(Some)
    }

    pub fn config(&self) -> &Config {
        self.model.config()
    }

    /// Positions a generation may use at most (prompt and new tokens).
    pub fn context_length(&self) -> usize {
        self.context
    }

    /// The same generator for generations of up to `context` positions: refused past the model's
    /// context length or when a layer's KV cache would not fit the adapter's limits.
    pub fn with_context(mut self, context: usize) -> Result<Generator> {
        self.context = check_context(&self.gpu, "generator", self.model.config(), Some(context))?;
        Ok(self)
    }

    /// The device the model lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids that end generation.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// The prompt as the model sees it: through the chat template as one user message when `chat`.
    pub fn render(&self, prompt: &str, chat: bool) -> Result<String> {
        if !chat {
            return Ok(prompt.to_string());
        }
        let template = self.template.as_ref().ok_or_else(|| {
            Error::Input("this model has no chat template: generate with chat off".into())
        })?;
        template.render(&[Message::new("user", prompt)], true)
    }

    /// The prompt's token ids (special tokens in the text, such as `<|im_start|>`, are recognized).
    /// A raw prompt (`chat` off) starts as the model's files say (a BOS token for LLaMA 2/3, Gemma,
    /// Phi-3); a chat prompt with what its template writes, as transformers' `apply_chat_template`.
    pub fn encode(&self, prompt: &str, chat: bool) -> Result<Vec<u32>> {
        let text = self.render(prompt, chat)?;
        if chat {
            return self.encode_rendered(&text);
        }
        let post_process = self.raw_start == RawStart::PostProcessor;
        let encoding = self
            .tokenizer
            .encode(text, post_process)
            .map_err(|e| Error::Input(format!("tokenizing the prompt: {e}")))?;
        let ids = encoding.get_ids();
        Ok(match self.raw_start {
            RawStart::Bos(bos) if ids.first() != Some(&bos) => {
                std::iter::once(bos).chain(ids.iter().copied()).collect()
            }
            _ => ids.to_vec(),
        })
    }

    /// The ids of a prompt the chat template rendered (its special tokens as written, nothing added).
    pub(crate) fn encode_rendered(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| Error::Input(format!("tokenizing the prompt: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The model's chat template, if its files have one.
    pub(crate) fn template(&self) -> Option<&ChatTemplate> {
        self.template.as_ref()
    }

    /// Text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| Error::Input(format!("decoding tokens: {e}")))
    }

    /// Generates a continuation of `prompt`. `on_piece` receives the text as it is produced (whole
    /// characters, never part of a stop string) and returns `false` to stop.
    pub async fn generate(
        &self,
        prompt: &str,
        opts: &GenerateOptions,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let prompt_ids = self.encode(prompt, opts.chat)?;
        self.generate_ids(prompt_ids, opts, on_piece).await
    }

    /// [`Generator::generate`] from token ids.
    pub async fn generate_ids(
        &self,
        prompt_ids: Vec<u32>,
        opts: &GenerateOptions,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        self.generate_in(None, prompt_ids, opts, on_piece).await
    }

    /// Generation, in a [`ChatSession`]'s KV cache when given: the prompt's positions that the cache
    /// already holds (the longest common prefix with what was fed before) are not computed again.
    pub(crate) async fn generate_in(
        &self,
        session: Option<&mut ChatSession>,
        prompt_ids: Vec<u32>,
        opts: &GenerateOptions,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let start = now_ms();
        self.check(&prompt_ids, opts)?;
        // The cache holds the prompt and every token but the last (which is never fed back).
        let capacity = (prompt_ids.len() + opts.max_tokens).min(self.context);
        let mut fresh = None;
        let (cache, mut fed_before, reused) =
            self.open_cache(session, &mut fresh, &prompt_ids, capacity)?;
        let seen = if opts.repetition_penalty != 1.0 {
            Some(seen_tokens(
                &self.gpu,
                &prompt_ids,
                self.model.config().vocab_size,
            )?)
        } else {
            None
        };
        let penalty = seen.as_ref().map(|seen| Penalty {
            seen,
            repetition_penalty: opts.repetition_penalty,
        });
        let constraint = match &opts.response_format {
            Some(format) => Some(self.constraint(format)?),
            None => None,
        };
        let before = self.gpu.stats();
        let mut steps = Steps::new(self, opts, cache, capacity, penalty, constraint);
        let logits = steps.prefill(&prompt_ids[reused..])?;
        let mut out = Output::new(self, opts);
        let mut first_step_top_logits = Vec::new();
        let mut first_ms = None;
        let mut logits_bytes = 0; // the optional first-step logits, not part of a token's cost
        let mut token_ms = Vec::with_capacity(opts.max_tokens.min(capacity));
        let stop_reason = loop {
            let Some(id) = steps.next_id().await? else {
                break if steps.submitted >= opts.max_tokens {
                    StopReason::MaxTokens
                } else {
                    StopReason::ContextFull
                };
            };
            if first_ms.is_none() {
                first_ms = Some(now_ms());
                if opts.top_logits > 0 {
                    first_step_top_logits =
                        top_logits(&logits.to_f32_vec().await?, opts.top_logits);
                    logits_bytes = logits.size_in_bytes();
                }
            }
            token_ms.push(now_ms() - start);
            if let Some(reason) = out.push(id, on_piece)? {
                // Steps still in flight are dropped: their ids are never read.
                break reason;
            }
            steps.chosen(id)?;
        };
        // What the cache holds now, for the next turn: the prompt and every new token but the last
        // (steps run ahead past the end are forgotten).
        let kept = prompt_ids.len() + out.ids.len().saturating_sub(1);
        steps.cache.truncate(kept);
        if let Some(fed) = fed_before.as_mut() {
            fed.clear();
            fed.extend(prompt_ids.iter().chain(&out.ids).take(kept));
        }
        let mut stats = stats_of(
            &prompt_ids,
            reused,
            out.ids.len(),
            start,
            first_ms,
            (after_bytes(&self.gpu) - before.gpu_to_host_bytes - logits_bytes) as f64,
        );
        (stats.record_ms, stats.wait_ms) = (steps.record_ms, steps.wait_ms);
        Ok(Generation {
            prompt_ids,
            text: out.text,
            ids: out.ids,
            stop_reason,
            first_step_top_logits,
            stats,
            token_ms,
        })
    }

    /// The KV cache a generation of `prompt_ids` writes: a new one of `capacity` positions (kept in
    /// `fresh`), or the session's (the generator's whole context), truncated to the prompt's longest
    /// common prefix with what the session fed before. Returns it, the session's fed ids (already
    /// truncated likewise), and how many prompt positions it holds.
    fn open_cache<'s>(
        &self,
        session: Option<&'s mut ChatSession>,
        fresh: &'s mut Option<KvCache>,
        prompt_ids: &[u32],
        capacity: usize,
    ) -> Result<(&'s mut KvCache, Option<&'s mut Vec<u32>>, usize)> {
        let (cache, mut fed_before) = match session {
            None => (
                fresh.insert(self.model.new_cache(&self.gpu, capacity)?),
                None,
            ),
            Some(ChatSession { cache, fed }) => {
                if cache.as_ref().is_none_or(|c| c.capacity() != self.context) {
                    *cache = None;
                    fed.clear();
                }
                let cache = match cache {
                    Some(c) => c,
                    None => cache.insert(self.model.new_cache(&self.gpu, self.context)?),
                };
                (cache, Some(fed))
            }
        };
        // At least the last prompt token is fed: its logits sample the first new token.
        let reused = fed_before.as_ref().map_or(0, |fed| {
            common_prefix(fed, prompt_ids).min(prompt_ids.len() - 1)
        });
        cache.truncate(reused);
        // Positions past `reused` are overwritten from here on: forget their ids now, so that a
        // generation that fails half-way leaves no stale ids for the next one to trust.
        if let Some(fed) = fed_before.as_mut() {
            fed.truncate(reused);
        }
        Ok((cache, fed_before, reused))
    }

    /// Refuses what generation cannot do, before any GPU work.
    fn check(&self, prompt_ids: &[u32], opts: &GenerateOptions) -> Result<()> {
        let cfg = self.model.config();
        if prompt_ids.is_empty() {
            return Err(Error::Input("the prompt is empty (no tokens)".into()));
        }
        if prompt_ids.len() >= self.context {
            return Err(Error::Input(format!(
                "the prompt has {} tokens; this generator's context is {} (the model's: {}): \
                 shorten it, or load with a longer context",
                prompt_ids.len(),
                self.context,
                cfg.max_position_embeddings
            )));
        }
        if let Some(id) = prompt_ids.iter().find(|&&i| i as usize >= cfg.vocab_size) {
            return Err(Error::Input(format!(
                "token id {id} is past the model's vocabulary of {}",
                cfg.vocab_size
            )));
        }
        let s = &opts.sampling;
        if opts.max_tokens == 0 {
            return Err(Error::Input("max_tokens must be at least 1".into()));
        }
        if !(s.temperature.is_finite() && s.temperature >= 0.0) {
            return Err(Error::Input(format!(
                "temperature must be ≥ 0 (0: greedy), got {}",
                s.temperature
            )));
        }
        if !(s.top_p > 0.0 && s.top_p <= 1.0) {
            return Err(Error::Input(format!(
                "top_p must be in (0, 1], got {}",
                s.top_p
            )));
        }
        if !(opts.repetition_penalty.is_finite() && opts.repetition_penalty > 0.0) {
            return Err(Error::Input(format!(
                "repetition_penalty must be > 0 (1: off), got {}",
                opts.repetition_penalty
            )));
        }
        if opts.stop.iter().any(String::is_empty) {
            return Err(Error::Input("stop strings must not be empty".into()));
        }
        if opts.response_format.is_some() && !opts.stop_at_eos {
            return Err(Error::Input(
                "response_format needs stop_at_eos (ignore_eos off): the end-of-sequence token \
                 is how a constrained answer ends"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The steps of one generation on the GPU: those submitted, and the read-backs of their token ids.
/// Each step reads the previous step's token on the GPU, so steps can be submitted before the ids
/// before them are read: read-backs go in batches that grow 1, 2, 4 ... up to the run-ahead depth
/// (the first ids come back at once, later ones many a round trip), and the next batch is recorded
/// while one travels. A constrained generation submits no step ahead: each is recorded once the last
/// id is known, since its mask depends on it.
struct Steps<'a> {
    generator: &'a Generator,
    opts: &'a GenerateOptions,
    cache: &'a mut KvCache,
    capacity: usize,
    penalty: Option<Penalty<'a>>,
    constraint: Option<Constraint>,
    /// The last step's choice (on the GPU): the next step's input.
    token: Option<Tensor>,
    /// Steps submitted whose ids are not read yet, oldest first; the oldest `mapped` of them have
    /// their read-backs started.
    in_flight: VecDeque<Readback>,
    mapped: usize,
    /// Steps submitted so far (each samples one token).
    submitted: usize,
    batch: usize,
    depth: usize,
    record_ms: f64,
    wait_ms: f64,
}

impl<'a> Steps<'a> {
    fn new(
        generator: &'a Generator,
        opts: &'a GenerateOptions,
        cache: &'a mut KvCache,
        capacity: usize,
        penalty: Option<Penalty<'a>>,
        constraint: Option<Constraint>,
    ) -> Self {
        let depth = match opts.run_ahead {
            0 if generator.gpu.capabilities().cpu_kernels => RUN_AHEAD_CPU,
            0 => RUN_AHEAD_GPU,
            n => n,
        };
        Steps {
            generator,
            opts,
            cache,
            capacity,
            penalty,
            constraint,
            token: None,
            in_flight: VecDeque::new(),
            mapped: 0,
            submitted: 0,
            batch: 1,
            depth,
            record_ms: 0.0,
            wait_ms: 0.0,
        }
    }

    /// Submits the prompt's step (`fed`: the positions the cache lacks) with its read-back; returns
    /// its logits (the first step's, for `top_logits`).
    fn prefill(&mut self, fed: &[u32]) -> Result<Tensor> {
        let g = self.generator;
        let ids: Vec<i32> = fed.iter().map(|&i| i as i32).collect();
        let input =
            Tensor::from_bytes(&g.gpu, bytemuck::cast_slice(&ids), &[ids.len()], DType::I32)?;
        let mask = g.mask_of(self.constraint.as_mut())?;
        let mut rec = g.gpu.recorder();
        let logits = g.model.forward(&mut rec, &input, self.cache)?;
        let token = sample_masked(
            &mut rec,
            &logits,
            &self.opts.sampling,
            0,
            self.penalty,
            mask.as_ref(),
        )?;
        self.in_flight.push_back(rec.submit_and_read(&token));
        self.token = Some(token);
        self.submitted = 1;
        Ok(logits)
    }

    /// Whether another step fits (max_tokens, the cache's capacity).
    fn can_submit(&self) -> bool {
        self.submitted < self.opts.max_tokens && self.cache.len() < self.capacity
    }

    /// Records and submits the next step (choosing among `allowed` when given).
    fn submit(&mut self, allowed: Option<&Tensor>) -> Result<()> {
        let token = self
            .token
            .as_ref()
            .ok_or_else(|| Error::Input("a decoding step before the prompt's".into()))?;
        let (next, read) = self.generator.submit_step(
            token,
            self.cache,
            self.opts,
            self.submitted,
            self.penalty,
            allowed,
        )?;
        self.token = Some(next);
        self.in_flight.push_back(read);
        self.submitted += 1;
        Ok(())
    }

    /// The next token id, in order; `None` when no step is left (max_tokens or a full cache).
    async fn next_id(&mut self) -> Result<Option<u32>> {
        if self.mapped == 0 {
            // Start reading back every step in flight (one round trip for all of them), then
            // record and submit the next batch while those ids travel.
            let t = now_ms();
            self.in_flight.iter_mut().for_each(Readback::start); // Deno: waits for the GPU here
            self.mapped = self.in_flight.len();
            self.wait_ms += now_ms() - t;
            let t = now_ms();
            let ahead = if self.constraint.is_some() {
                0
            } else {
                self.batch
            };
            while self.in_flight.len() < self.mapped + ahead && self.can_submit() {
                self.submit(None)?;
            }
            self.record_ms += now_ms() - t;
            self.batch = (self.batch * 2).min(self.depth);
        }
        let Some(pending) = self.in_flight.pop_front() else {
            return Ok(None);
        };
        self.mapped = self.mapped.saturating_sub(1);
        let t = now_ms();
        let id = i32::from_le_bytes(
            pending.bytes().await?[..4]
                .try_into()
                .map_err(|_| Error::Readback("short token id".into()))?,
        );
        self.wait_ms += now_ms() - t;
        Ok(Some(id as u32))
    }

    /// After `id` was kept: a constrained generation moves its grammar past it and submits the next
    /// step, choosing among what the grammar allows then.
    fn chosen(&mut self, id: u32) -> Result<()> {
        if self.constraint.is_none() || !self.can_submit() {
            return Ok(());
        }
        let t = now_ms();
        if let Some(c) = self.constraint.as_mut() {
            c.consume(id)?;
        }
        let mask = self.generator.mask_of(self.constraint.as_mut())?;
        self.submit(mask.as_ref())?;
        self.record_ms += now_ms() - t;
        Ok(())
    }
}

/// The stats of a generation that began at `start` and read its first id at `first_ms`.
fn stats_of(
    prompt_ids: &[u32],
    reused: usize,
    new_tokens: usize,
    start: f64,
    first_ms: Option<f64>,
    bytes_read_back: f64,
) -> GenerationStats {
    let end = now_ms();
    let first = first_ms.unwrap_or(end);
    GenerationStats {
        prompt_tokens: prompt_ids.len(),
        reused_tokens: reused,
        new_tokens,
        prefill_ms: first - start,
        decode_ms: end - first,
        prefill_tok_s: (prompt_ids.len() - reused) as f64 / ((first - start) / 1e3),
        decode_tok_s: if new_tokens > 1 {
            (new_tokens - 1) as f64 / ((end - first) / 1e3)
        } else {
            0.0
        },
        bytes_read_back_per_token: bytes_read_back / new_tokens.max(1) as f64,
        record_ms: 0.0,
        wait_ms: 0.0,
    }
}

/// How many leading ids `a` and `b` share.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn after_bytes(gpu: &Gpu) -> u64 {
    gpu.stats().gpu_to_host_bytes
}

/// The `n` highest logits, best first.
fn top_logits(logits: &[f32], n: usize) -> Vec<(u32, f32)> {
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    order
        .into_iter()
        .take(n)
        .map(|i| (i, logits[i as usize]))
        .collect()
}

/// New tokens turned into text as they come: incremental detokenization (only whole characters are
/// emitted) and stop strings (text that may begin one is held back until it cannot).
struct Output<'a> {
    generator: &'a Generator,
    opts: &'a GenerateOptions,
    ids: Vec<u32>,
    /// `ids[prefix..read]` was decoded last time; text past it is new.
    prefix: usize,
    read: usize,
    /// Everything decoded so far, and how much of it was handed to the callback.
    text: String,
    emitted: usize,
}

impl<'a> Output<'a> {
    fn new(generator: &'a Generator, opts: &'a GenerateOptions) -> Self {
        Output {
            generator,
            opts,
            ids: Vec::new(),
            prefix: 0,
            read: 0,
            text: String::new(),
            emitted: 0,
        }
    }

    /// Takes one new token; returns why to stop, if it is time.
    fn push(
        &mut self,
        id: u32,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Option<StopReason>> {
        self.ids.push(id);
        if self.opts.stop_at_eos && self.generator.eos_ids.contains(&id) {
            self.flush(self.text.len(), on_piece);
            return Ok(Some(StopReason::Eos));
        }
        let g = self.generator;
        let before = g.decode(&self.ids[self.prefix..self.read])?;
        let now = g.decode(&self.ids[self.prefix..])?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') && now.starts_with(&before) {
            self.text.push_str(&now[before.len()..]);
            self.prefix = self.read;
            self.read = self.ids.len();
        }
        if let Some(at) = self
            .opts
            .stop
            .iter()
            .filter_map(|s| self.text.find(s.as_str()))
            .min()
        {
            self.text.truncate(at);
            self.flush(at, on_piece);
            return Ok(Some(StopReason::StopString));
        }
        // Hold back a tail that could still become a stop string.
        let hold = self
            .opts
            .stop
            .iter()
            .map(|s| longest_prefix_suffix(&self.text, s))
            .max()
            .unwrap_or(0);
        if !self.flush(self.text.len() - hold, on_piece) {
            return Ok(Some(StopReason::Cancelled));
        }
        Ok(None)
    }

    /// Hands `text[emitted..upto]` to the callback; its answer (false: stop).
    fn flush(&mut self, upto: usize, on_piece: &mut dyn FnMut(&str) -> bool) -> bool {
        if upto <= self.emitted {
            return true;
        }
        let piece = &self.text[self.emitted..upto];
        self.emitted = upto;
        on_piece(piece)
    }
}

/// Bytes of the longest suffix of `text` that is a proper prefix of `stop`, at a char boundary.
fn longest_prefix_suffix(text: &str, stop: &str) -> usize {
    (1..stop.len())
        .rev()
        .find(|&n| stop.is_char_boundary(n) && text.ends_with(&stop[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_string_prefixes_are_held_back() {
        assert_eq!(longest_prefix_suffix("hello <|im", "<|im_end|>"), 4);
        assert_eq!(longest_prefix_suffix("hello", "<|im_end|>"), 0);
        assert_eq!(longest_prefix_suffix("ab", "b"), 0); // a whole match is found, not held
    }

    #[test]
    fn top_logits_are_sorted() {
        assert_eq!(
            top_logits(&[0.5, 2.0, -1.0, 1.0], 2),
            vec![(1, 2.0), (3, 1.0)]
        );
    }
}
