//! [`Generator`]: text generation with a LLaMA-family model. The prompt (optionally through the
//! model's chat template) is tokenized on the CPU and prefilled in one submit; then each new token is
//! one submit: the forward step reads the previous token's id from the GPU, samples on the GPU, and
//! only the new id (4 bytes) comes back. The next step is submitted before the current id is read, so
//! the GPU does not wait for the CPU between tokens.

use tokenizers::Tokenizer;

use crate::clock::now_ms;
use crate::cpu::Cpu;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::sample::{Sampling, sample_with};
use crate::models::constrain::{Grammars, ResponseFormat};
use crate::models::llama::{Config, Llama, check_context};
use crate::models::text::{ChatTemplate, Message};
use crate::tensor::{DType, Tensor};

mod host;
mod load;
mod steps;

pub use load::HF_FILES;

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
    /// How many decoding steps go into one submit at most (0, the default: one a step; natively
    /// `WEBGPU_INFER_STEPS_PER_SUBMIT=N` sets the default, for A/B runs). Steps are submitted in
    /// groups of this many out of each run-ahead batch, so the GPU runs one command buffer for
    /// several tokens (fewer submits, fewer gaps between them); the ids are the same.
    pub steps_per_submit: usize,
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
            steps_per_submit: 0,
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
    /// CPU time spent on `response_format`'s grammar: compiling the schema (and, the first time, the
    /// vocabulary's trie), moving it past each token and computing the next step's mask of allowed
    /// tokens (part of the prefill and of `record_ms`; 0 unconstrained).
    pub grammar_ms: f64,
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

/// Where a generator's model lives and runs.
pub(crate) enum Engine {
    Gpu(Gpu, Llama),
    /// The CPU backend (`crate::cpu`): weights in host memory, sampling on the CPU.
    Cpu(Cpu, Llama<Cpu>),
}

/// A language model with its tokenizer and chat template.
pub struct Generator {
    engine: Engine,
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
    /// The GPU and model, or an error saying what needs the GPU engine.
    fn gpu_parts(&self, what: &str) -> Result<(&Gpu, &Llama)> {
        match &self.engine {
            Engine::Gpu(gpu, model) => Ok((gpu, model)),
            Engine::Cpu(..) => Err(Error::Input(format!(
                "{what} needs a generator on the GPU; this one runs on the CPU backend"
            ))),
        }
    }

    /// CPU cost of a decoding step, in ms: (recording the model's and the sampler's kernels into a
    /// command encoder, then finishing the encoder, or with `submit` submitting it), averaged over
    /// `steps` steps after a warm-up. Without `submit` nothing reaches the GPU: this is what decoding
    /// costs the CPU per token whatever the GPU (`generate --bench --record-only`). On software
    /// adapters a submit runs the work, so there only the first figure means anything.
    pub fn recording_cost(&self, steps: usize, submit: bool) -> Result<(f64, f64)> {
        let steps = steps.max(1);
        let (gpu, model) = self.gpu_parts("recording_cost")?;
        let mut cache = model.new_cache(gpu, steps + 2)?;
        let token = Tensor::from_bytes(gpu, &1i32.to_le_bytes(), &[1], DType::I32)?;
        let sampling = Sampling::default();
        let (mut record, mut finish) = (0.0, 0.0);
        for i in 0..=steps {
            let t = now_ms();
            let mut rec = gpu.recorder();
            let logits = model.forward(&mut rec, &token, &mut cache)?;
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

    /// See [`Llama::set_fold_norms`] (GPU kernels; the CPU backend has nothing to fold).
    pub fn set_fold_norms(&mut self, on: bool) {
        if let Engine::Gpu(_, model) = &mut self.engine {
            model.set_fold_norms(on);
        }
    }

    /// See [`Llama::fold_norms`].
    pub fn fold_norms(&self) -> bool {
        match &self.engine {
            Engine::Gpu(_, model) => model.fold_norms(),
            Engine::Cpu(..) => false,
        }
    }
}

impl Generator {
    pub fn config(&self) -> &Config {
        match &self.engine {
            Engine::Gpu(_, model) => model.config(),
            Engine::Cpu(_, model) => model.config(),
        }
    }

    /// Which backend runs the model: "gpu" or "cpu".
    pub fn backend(&self) -> &'static str {
        match &self.engine {
            Engine::Gpu(..) => "gpu",
            Engine::Cpu(..) => "cpu",
        }
    }

    /// Positions a generation may use at most (prompt and new tokens).
    pub fn context_length(&self) -> usize {
        self.context
    }

    /// The same generator for generations of up to `context` positions: refused past the model's
    /// context length or when a layer's KV cache would not fit the adapter's limits.
    pub fn with_context(mut self, context: usize) -> Result<Generator> {
        self.context = match &self.engine {
            Engine::Gpu(gpu, model) => {
                check_context(gpu, "generator", model.config(), Some(context))?
            }
            Engine::Cpu(_, model) => check_host_context(model.config(), context)?,
        };
        Ok(self)
    }

    /// The device the model lives on (`None` on the CPU backend).
    pub fn gpu(&self) -> Option<&Gpu> {
        match &self.engine {
            Engine::Gpu(gpu, _) => Some(gpu),
            Engine::Cpu(..) => None,
        }
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

    /// Refuses what generation cannot do, before any GPU work.
    fn check(&self, prompt_ids: &[u32], opts: &GenerateOptions) -> Result<()> {
        let cfg = self.config();
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

/// A CPU generator's context: 1 to the model's context length (host memory has no buffer limit the
/// GPU's has; the cache takes 2 · layers · context · kv_heads · head_dim f32s).
fn check_host_context(cfg: &Config, context: usize) -> Result<usize> {
    if context == 0 || context > cfg.max_position_embeddings {
        return Err(Error::Input(format!(
            "a context of {context} positions: it must be 1 to the model's {}",
            cfg.max_position_embeddings
        )));
    }
    Ok(context)
}
