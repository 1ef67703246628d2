//! `Generator` for JS: text generation with a LLaMA-family model, tokens streamed as an async iterator.

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;

use futures_channel::mpsc::{UnboundedReceiver, unbounded};
use futures_core::Stream;
use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};

use crate::bridge::folder::{fetch_folder, fetch_folder_counted, folder_url};
use crate::bridge::web::{Source, load, load_gguf_checked, load_host, load_host_gguf};
use crate::cpu::Cpu;
use crate::error::Error;
use crate::gpu::Gpu;
use crate::models::generate::{GenerateOptions, Generation, Generator as RustGenerator, HF_FILES};
use crate::models::llama::check_fits;
use crate::web::backend::{Choice, Placement};
use crate::web::{Device, LoadOptions};

#[wasm_bindgen(inline_js = "export function asyncIterable(o) { \
    o[Symbol.asyncIterator] = function () { return this; }; return o; }")]
extern "C" {
    #[wasm_bindgen(js_name = asyncIterable)]
    fn async_iterable(o: JsValue) -> JsValue;
}

/// A text-generation model (LLaMA family: SmolLM2, TinyLlama, LLaMA 2/3 ...), on the GPU, or on the
/// CPU backend (GGUF files) where the browser has no WebGPU or only a software adapter, or when asked.
///
/// ```js
/// const g = await Generator.load("/models/SmolLM2-135M-Instruct.Q4_1.gguf", { onProgress });
/// for await (const piece of g.generate("What is the capital of France?", { chat: true, maxTokens: 64 })) {
///   output.textContent += piece;
/// }
/// console.log(g.stats);  // { promptTokens, newTokens, prefillTokS, decodeTokS, bytesReadBackPerToken, ... }
/// ```
#[wasm_bindgen]
pub struct Generator {
    pub(crate) inner: Rc<RustGenerator>,
    pub(crate) last: Rc<RefCell<JsValue>>,
    /// The conversation `chat` continues (`None` while a chat generation holds it).
    pub(crate) session: Rc<RefCell<Option<crate::models::chat::ChatSession>>>,
    /// Why it runs on its backend.
    reason: String,
}

#[wasm_bindgen]
impl Generator {
    /// Loads a model: a GGUF file (a URL, `Response`, `Blob`/`File` or `ArrayBuffer`), or a Hugging
    /// Face folder (a URL ending in `/`: `config.json`, `model.safetensors`, `tokenizer.json`,
    /// `tokenizer_config.json`). Weights stream into GPU buffers; options `onProgress` and `signal` as
    /// `Device.loadWeights`. Creates its own device; `device.loadGenerator` shares one. `backend`
    /// (`"auto"` by default) places it as `Device.create` places embedders: `auto` runs GGUF files on
    /// the CPU backend when there is no WebGPU or only a software adapter (SwiftShader decodes
    /// SmolLM2-135M at ~0.4 tokens/s, the CPU backend at 14-27).
    pub async fn load(
        #[wasm_bindgen(unchecked_param_type = "string | URL | Response | Blob | ArrayBuffer")]
        source: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<Object>,
    ) -> Result<Generator, JsValue> {
        let choice = Choice::from_js(options.as_ref())?.unwrap_or(Choice::Auto);
        let place = Placement::acquire(choice, &Default::default()).await?;
        load_placed(&place, source, options.as_ref()).await
    }

    /// Which backend runs the model: `"gpu"` or `"cpu"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.inner.backend().into()
    }

    /// Why it runs there ("software adapter (...): the CPU backend is faster", "no WebGPU (...)",
    /// "hardware adapter (...)", "requested (backend: ...)").
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> String {
        self.reason.clone()
    }

    /// Generates from `prompt`, as an async iterator of text pieces (whole characters; a stop string
    /// is never emitted). Options: `maxTokens` (256), `temperature` (0: greedy), `topK`, `topP`,
    /// `seed`, `repetitionPenalty` (1: off), `stop` (strings), `chat` (apply the model's chat template),
    /// `stopAtEos` (true), `runAhead` (0: chosen for the adapter; steps decoded ahead of the ids read
    /// back), `stepsPerSubmit` (0: one; decoding steps recorded into one submit), `responseFormat` (OpenAI's: `{ type: "json_object" }` or `{ type: "json_schema",
    /// json_schema: { name, schema } }`: the answer always parses, and validates against the schema;
    /// one step at a time), `signal` (an AbortSignal ends it early). Breaking out of the loop stops generation too. After
    /// the loop, `stats` holds the figures of this generation.
    #[wasm_bindgen(
        unchecked_return_type = "AsyncIterableIterator<string> & { stats: GenerationStats | null }"
    )]
    pub fn generate(
        &self,
        prompt: String,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateOptions")] options: Option<Object>,
    ) -> Result<JsValue, JsValue> {
        let (opts, signal) = generate_options(options.as_ref())?;
        let generator = self.inner.clone();
        Ok(self.stream(signal, move |on_piece| {
            Box::pin(async move { generator.generate(&prompt, &opts, on_piece).await })
        }))
    }

    /// Runs `run` in a task, its pieces and result as an async iterator of strings with `stats`.
    pub(crate) fn stream(
        &self,
        signal: Option<web_sys::AbortSignal>,
        run: impl FnOnce(&mut dyn FnMut(&str) -> bool) -> Run + 'static,
    ) -> JsValue {
        let (tx, rx) = unbounded::<Item>();
        let cancelled = Rc::new(Cell::new(false));
        let stream = TokenStream {
            rx: Rc::new(RefCell::new(rx)),
            cancelled: cancelled.clone(),
            stats: Rc::new(RefCell::new(JsValue::NULL)),
            last: self.last.clone(),
        };
        spawn_local(async move {
            let piece_tx = tx.clone();
            let mut on_piece = move |piece: &str| {
                let _ = piece_tx.unbounded_send(Item::Piece(piece.to_string()));
                !cancelled.get() && !signal.as_ref().is_some_and(|s| s.aborted())
            };
            let item = match run(&mut on_piece).await {
                Ok(g) => Item::Done(Box::new(g)),
                Err(e) => Item::Failed(e),
            };
            let _ = tx.unbounded_send(item);
        });
        async_iterable(stream.into())
    }

    /// Generates the whole answer: `{ text, ids, promptIds, stopReason, stats }`.
    #[wasm_bindgen(js_name = generateText)]
    pub async fn generate_text(
        &self,
        prompt: String,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateOptions")] options: Option<Object>,
    ) -> Result<Object, JsValue> {
        let (opts, signal) = generate_options(options.as_ref())?;
        let mut on_piece = |_: &str| !signal.as_ref().is_some_and(|s| s.aborted());
        let g = self.inner.generate(&prompt, &opts, &mut on_piece).await?;
        Ok(self.whole(&g))
    }

    /// `{ text, ids, promptIds, stopReason, stats }` of a finished generation (its stats become
    /// `stats`).
    pub(crate) fn whole(&self, g: &Generation) -> Object {
        let stats = stats_object(g);
        *self.last.borrow_mut() = stats.clone().into();
        let o = Object::new();
        set(&o, "text", &g.text.as_str().into());
        set(
            &o,
            "ids",
            &js_sys::Uint32Array::from(g.ids.as_slice()).into(),
        );
        set(
            &o,
            "promptIds",
            &js_sys::Uint32Array::from(g.prompt_ids.as_slice()).into(),
        );
        set(&o, "stopReason", &g.stop_reason.name().into());
        set(&o, "stats", &stats.into());
        o
    }

    /// The prompt's token ids (through the chat template when `chat`).
    pub fn encode(&self, prompt: String, chat: Option<bool>) -> Result<Vec<u32>, JsValue> {
        Ok(self.inner.encode(&prompt, chat.unwrap_or(false))?)
    }

    /// The figures of the last finished generation: `{ promptTokens, newTokens, prefillMs, decodeMs,
    /// prefillTokS, decodeTokS, bytesReadBackPerToken, stopReason }`, or null.
    #[wasm_bindgen(getter, unchecked_return_type = "GenerationStats | null")]
    pub fn stats(&self) -> JsValue {
        self.last.borrow().clone()
    }

    /// Positions one generation may use (prompt and new tokens): the load option `contextLength`, or
    /// the model's context length up to 4096.
    #[wasm_bindgen(getter, js_name = contextLength)]
    pub fn context_length(&self) -> usize {
        self.inner.context_length()
    }

    /// CPU cost of one decoding step, in ms, averaged over `steps` steps after a warm-up:
    /// `{ recordMs, finishMs }`, recording the model's and the sampler's kernels through the WebGPU
    /// API, then finishing the command encoder (or, with `submit`, submitting it). Without `submit`
    /// nothing reaches the GPU: what a token costs this page's JS thread whatever the GPU. A
    /// diagnostic for benchmarks; GPU generators only.
    #[wasm_bindgen(js_name = recordingCost, unchecked_return_type = "{ recordMs: number; finishMs: number }")]
    pub fn recording_cost(&self, steps: usize, submit: Option<bool>) -> Result<JsValue, JsValue> {
        let (record, finish) = self.inner.recording_cost(steps, submit.unwrap_or(false))?;
        let o = Object::new();
        set(&o, "recordMs", &record.into());
        set(&o, "finishMs", &finish.into());
        Ok(o.into())
    }

    /// The model's own context length (its file's `context_length`).
    #[wasm_bindgen(getter, js_name = modelContextLength)]
    pub fn model_context_length(&self) -> usize {
        self.inner.config().max_position_embeddings
    }
}

#[wasm_bindgen(typescript_custom_section)]
const GENERATION_STATS: &str = r#"
/** Figures of one generation. */
export interface GenerationStats {
  promptTokens: number; newTokens: number; prefillMs: number; decodeMs: number;
  /** Prompt tokens a chat's cache already held (not prefilled again; `prefillTokS` counts the rest). */
  reusedTokens: number;
  prefillTokS: number; decodeTokS: number; bytesReadBackPerToken: number;
  /** CPU time recording and submitting steps, and time waiting for token ids to come back. */
  recordMs: number; waitMs: number;
  /** CPU time on `responseFormat`'s grammar (the token masks), ms; 0 without one. */
  grammarMs: number;
  stopReason: "eos" | "stop" | "max_tokens" | "context_full" | "cancelled";
}
"#;

/// A generation in flight, as `Generator::stream` runs it.
pub(crate) type Run<'a> =
    Pin<Box<dyn std::future::Future<Output = Result<Generation, Error>> + 'a>>;

enum Item {
    Piece(String),
    Done(Box<Generation>),
    Failed(Error),
}

/// The async iterator `Generator.generate` returns.
#[wasm_bindgen]
pub struct TokenStream {
    rx: Rc<RefCell<UnboundedReceiver<Item>>>,
    cancelled: Rc<Cell<bool>>,
    stats: Rc<RefCell<JsValue>>,
    last: Rc<RefCell<JsValue>>,
}

#[wasm_bindgen]
impl TokenStream {
    /// The next piece: `{ value, done }`.
    pub fn next(&self) -> Promise {
        let rx = self.rx.clone();
        let (stats, last) = (self.stats.clone(), self.last.clone());
        future_to_promise(async move {
            let item =
                std::future::poll_fn(|cx| Pin::new(&mut *rx.borrow_mut()).poll_next(cx)).await;
            let result = Object::new();
            match item {
                Some(Item::Piece(p)) => {
                    set(&result, "value", &p.into());
                    set(&result, "done", &false.into());
                }
                Some(Item::Done(g)) => {
                    let s: JsValue = stats_object(&g).into();
                    *stats.borrow_mut() = s.clone();
                    *last.borrow_mut() = s;
                    set(&result, "done", &true.into());
                }
                Some(Item::Failed(e)) => return Err(e.into()),
                None => set(&result, "done", &true.into()),
            }
            Ok(result.into())
        })
    }

    /// Ends generation early (a `break` out of `for await` calls this).
    #[wasm_bindgen(js_name = "return")]
    pub fn finish(&self) -> Promise {
        self.cancelled.set(true);
        let result = Object::new();
        set(&result, "done", &true.into());
        let value: JsValue = result.into();
        Promise::resolve(&value)
    }

    /// This generation's figures once it has finished (else null).
    #[wasm_bindgen(getter, unchecked_return_type = "GenerationStats | null")]
    pub fn stats(&self) -> JsValue {
        self.stats.borrow().clone()
    }
}

#[wasm_bindgen]
impl Device {
    /// [`Generator::load`] on this device.
    #[wasm_bindgen(js_name = loadGenerator)]
    pub async fn load_generator(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | URL | Response | Blob | ArrayBuffer")]
        source: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<Object>,
    ) -> Result<Generator, JsValue> {
        let choice = Choice::from_js(options.as_ref())?;
        let place = self.placement().for_load(choice)?;
        load_placed(&place, source, options.as_ref()).await
    }
}

pub(crate) fn set(o: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(o, &key.into(), value);
}

pub(crate) fn stats_object(g: &Generation) -> Object {
    let s = &g.stats;
    let o = Object::new();
    set(&o, "promptTokens", &(s.prompt_tokens as f64).into());
    set(&o, "reusedTokens", &(s.reused_tokens as f64).into());
    set(&o, "newTokens", &(s.new_tokens as f64).into());
    set(&o, "prefillMs", &s.prefill_ms.into());
    set(&o, "decodeMs", &s.decode_ms.into());
    set(&o, "prefillTokS", &s.prefill_tok_s.into());
    set(&o, "decodeTokS", &s.decode_tok_s.into());
    set(
        &o,
        "bytesReadBackPerToken",
        &s.bytes_read_back_per_token.into(),
    );
    set(&o, "recordMs", &s.record_ms.into());
    set(&o, "waitMs", &s.wait_ms.into());
    set(&o, "grammarMs", &s.grammar_ms.into());
    set(&o, "stopReason", &g.stop_reason.name().into());
    o
}

/// Reads the JS options, refusing values of the wrong type by name.
pub(crate) fn generate_options(
    options: Option<&Object>,
) -> Result<(GenerateOptions, Option<web_sys::AbortSignal>), JsValue> {
    let mut opts = GenerateOptions::default();
    let Some(o) = options else {
        return Ok((opts, None));
    };
    let get = |k: &str| {
        Reflect::get(o, &k.into())
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_null())
    };
    let number = |k: &str| -> Result<Option<f64>, JsValue> {
        match get(k) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|n| n.is_finite())
                .map(Some)
                .ok_or_else(|| {
                    JsValue::from(Error::Input(format!(
                        "generate: option `{k}` must be a finite number"
                    )))
                }),
        }
    };
    let whole = |k: &str, v: f64| -> Result<u32, JsValue> {
        if v < 0.0 || v.fract() != 0.0 || v > f64::from(u32::MAX) {
            return Err(Error::Input(format!(
                "generate: option `{k}` must be a whole number ≥ 0, got {v}"
            ))
            .into());
        }
        Ok(v as u32)
    };
    if let Some(v) = number("maxTokens")? {
        opts.max_tokens = whole("maxTokens", v)? as usize;
    }
    if let Some(v) = number("temperature")? {
        opts.sampling.temperature = v as f32;
    }
    if let Some(v) = number("topK")? {
        opts.sampling.top_k = whole("topK", v)?;
    }
    if let Some(v) = number("topP")? {
        opts.sampling.top_p = v as f32;
    }
    if let Some(v) = number("seed")? {
        opts.sampling.seed = whole("seed", v)?;
    }
    if let Some(v) = number("repetitionPenalty")? {
        opts.repetition_penalty = v as f32;
    }
    if let Some(v) = number("runAhead")? {
        opts.run_ahead = whole("runAhead", v)? as usize;
    }
    if let Some(v) = number("stepsPerSubmit")? {
        opts.steps_per_submit = whole("stepsPerSubmit", v)? as usize;
    }
    if let Some(v) = get("chat") {
        opts.chat = v.is_truthy();
    }
    if let Some(v) = get("stopAtEos") {
        opts.stop_at_eos = v.is_truthy();
    }
    if let Some(v) = get("stop") {
        opts.stop = stop_strings(v)?;
    }
    if let Some(v) = get("responseFormat") {
        opts.response_format = response_format(&v)?;
    }
    let signal = get("signal").and_then(|s| s.dyn_into().ok());
    Ok((opts, signal))
}

/// The `stop` option: an array of strings.
fn stop_strings(v: JsValue) -> Result<Vec<String>, JsValue> {
    let array: js_sys::Array = v.dyn_into().map_err(|_| {
        JsValue::from(Error::Input(
            "generate: option `stop` must be an array of strings".into(),
        ))
    })?;
    array
        .iter()
        .map(|s| {
            s.as_string().ok_or_else(|| {
                JsValue::from(Error::Input(
                    "generate: option `stop` must hold strings".into(),
                ))
            })
        })
        .collect()
}

/// The `responseFormat` option: OpenAI's shape, read through JSON (a schema is plain data).
fn response_format(
    v: &JsValue,
) -> Result<Option<crate::models::constrain::ResponseFormat>, JsValue> {
    let text = js_sys::JSON::stringify(v)
        .ok()
        .and_then(|t| t.as_string())
        .ok_or_else(|| {
            JsValue::from(Error::Input(
                "generate: option `responseFormat` must be a plain object like \
                 { type: \"json_object\" }"
                    .into(),
            ))
        })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| JsValue::from(Error::Input(format!("generate: responseFormat: {e}"))))?;
    crate::models::constrain::ResponseFormat::from_openai(&value).map_err(JsValue::from)
}

impl Generator {
    /// The JS handle of a loaded generator, with a fresh chat session.
    fn wrap(inner: RustGenerator, reason: String) -> Generator {
        Generator {
            inner: Rc::new(inner),
            last: Rc::new(RefCell::new(JsValue::NULL)),
            session: Rc::new(RefCell::new(Some(crate::models::chat::ChatSession::new()))),
            reason,
        }
    }
}

/// Whether `source` names a Hugging Face folder (a URL ending in `/`).
fn is_folder(source: &JsValue) -> bool {
    source
        .as_string()
        .is_some_and(|s| s.split(['?', '#']).next().is_some_and(|p| p.ends_with('/')))
}

/// Loads where `place` puts models: the CPU backend when it chose the CPU (asked for, no WebGPU, or
/// a software adapter), else the GPU.
async fn load_placed(
    place: &Placement,
    source: JsValue,
    options: Option<&Object>,
) -> Result<Generator, JsValue> {
    match &place.gpu {
        Some(gpu) if place.backend == "gpu" => {
            load_generator(gpu, source, options, place.reason.clone()).await
        }
        _ => load_generator_cpu(&place.cpu, source, options, place.reason.clone()).await,
    }
}

/// `contextLength` of the load options, checked.
fn context_of(opts: &LoadOptions) -> Result<Option<usize>, JsValue> {
    match opts.context_length {
        None => Ok(None),
        Some(n) if n.fract() == 0.0 && n >= 1.0 && n <= u32::MAX as f64 => Ok(Some(n as usize)),
        Some(n) => Err(Error::Input(format!(
            "Generator.load: contextLength must be a positive whole number, got {n}"
        ))
        .into()),
    }
}

/// A generator on the CPU backend: a GGUF file streamed into WASM memory (its quantized tensors
/// kept in their blocks), or a Hugging Face folder (its safetensors streamed there, bf16/f16 widened
/// to f32), the CPU kernels computing it.
async fn load_generator_cpu(
    cpu: &Cpu,
    source: JsValue,
    options: Option<&Object>,
    reason: String,
) -> Result<Generator, JsValue> {
    let opts = LoadOptions::from_js(options);
    let context = context_of(&opts)?;
    let mut on_progress = |p: crate::bridge::Progress<'_>| opts.report(p);
    if is_folder(&source) {
        // A Hugging Face folder: its text files, then the safetensors streamed into WASM memory.
        let base = folder_url(&source.as_string().unwrap_or_default());
        let net = opts.net();
        let files = fetch_folder_counted(cpu.copy_stats_arc(), &base, net, HF_FILES).await?;
        let url = format!("{base}model.safetensors");
        let weights = load_host(cpu, Source::Url(url), net, &mut on_progress).await?;
        let inner = RustGenerator::from_hf_folder_host(cpu, &weights, &files, context)?;
        return Ok(Generator::wrap(inner, reason));
    }
    let name = source.as_string().unwrap_or_else(|| "GGUF".into());
    let source = Source::from_js(source)?;
    let (header, weights) = load_host_gguf(cpu, source, opts.net(), &mut on_progress).await?;
    let inner = RustGenerator::from_gguf_host(cpu, &name, &header, &weights, context)?;
    Ok(Generator::wrap(inner, reason))
}

async fn load_generator(
    gpu: &Gpu,
    source: JsValue,
    options: Option<&Object>,
    reason: String,
) -> Result<Generator, JsValue> {
    let opts = LoadOptions::from_js(options);
    let context = context_of(&opts)?;
    let net = opts.net();
    let mut on_progress = |p: crate::bridge::Progress<'_>| opts.report(p);
    let folder = source.as_string().filter(|_| is_folder(&source));
    let inner = match folder {
        Some(base) => {
            let files = fetch_folder(gpu, &base, net, HF_FILES).await?;
            let url = format!("{}model.safetensors", folder_url(&base));
            let weights = load(gpu, Source::Url(url), net, &mut on_progress).await?;
            let g = RustGenerator::from_hf_folder(gpu, &weights, &files)?;
            match context {
                Some(n) => g.with_context(n)?,
                None => g,
            }
        }
        None => {
            let name = source.as_string().unwrap_or_else(|| "GGUF".into());
            let check =
                |h: &crate::formats::gguf::Header| check_fits(gpu, &name, h, context).map(drop);
            let source = Source::from_js(source)?;
            let (header, weights) =
                load_gguf_checked(gpu, source, net, &mut on_progress, &check).await?;
            RustGenerator::from_gguf_with_context(gpu, &name, &header, &weights, context)?
        }
    };
    Ok(Generator::wrap(inner, reason))
}
