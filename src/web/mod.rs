//! The JavaScript API (wasm32 only): `#[wasm_bindgen]` classes over the Rust API. Errors reach JS as
//! `Error` objects whose message is the Rust [`Error`](crate::Error)'s.

pub(crate) mod backend;
mod chat;
mod device;
mod embedder;
mod generator;
mod stats;
mod upscaler;
mod vision;
mod weights;

pub use device::Device;
pub use embedder::{Embedder, similarity};
pub use generator::{Generator, TokenStream};
pub use stats::{stats, wasm_memory_bytes};
pub use upscaler::Upscaler;
pub use vision::{Classifier, image_from_bitmap, image_from_source};
/// `initThreadPool(n)` (the `threads` build only): starts `n` Web Workers for the CPU backend's
/// kernels. Call it in a worker: rayon blocks the calling thread while they run.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;
pub use weights::{TensorData, Weights};

use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

pub(crate) use crate::runtime::browser::{browser_adapter_info, js_string};

#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const LOAD_OPTIONS_TS: &str = r#"
/** Options of every load call (`loadWeights`, `Embedder.load`, `Generator.load`, ...). */
export interface LoadOptions {
  /** Where a model with a CPU path runs: "auto" (default), "gpu" or "cpu". Embedders and generators
   *  (GGUF files and Hugging Face folders), classifiers and upscalers: "auto" is the GPU on a hardware
   *  adapter, the CPU backend without WebGPU or on a software adapter (`backendReason` says which).
   *  On a device, the device's choice unless given here. */
  backend?: "auto" | "gpu" | "cpu";
  /** Called as bytes arrive; if it throws, the load goes on. */
  onProgress?: (p: { bytesDone: number, bytesTotal: number, tensor: string }) => void;
  /** Cancels the load; what was loaded is freed. */
  signal?: AbortSignal;
  /** The function URLs are fetched with (default `globalThis.fetch`); the package's `cachedFetch`
   *  keeps model files in Cache Storage. */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** `Generator.load`: the most positions (prompt and new tokens) one generation may use. Default:
   *  the model's context length, up to 4096. Refused past the model's, or when a layer's KV cache
   *  would not fit the adapter's limits; for a GGUF file both are checked from its header, before
   *  any weight is downloaded. */
  contextLength?: number;
}

/** Options of `Generator.generate` and `generateText`. */
export interface GenerateOptions {
  maxTokens?: number;
  /** 0 (the default) is greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  repetitionPenalty?: number;
  /** Strings that end the generation; never emitted. */
  stop?: string[];
  /** Render the prompt through the model's chat template as a user message. */
  chat?: boolean;
  /** Stop at the model's end-of-sequence / end-of-turn tokens (default true). */
  stopAtEos?: boolean;
  /** How many token ids come back in one read-back round trip at most: decoding runs up to this many
   *  steps ahead of the ids it has read (0, the default: 16 on GPUs, 1 on CPU adapters). More hides
   *  a slow read-back better; when generation stops early up to twice this many steps are computed
   *  and thrown away. */
  runAhead?: number;
  /** How many decoding steps go into one submit at most (0, the default: one a step). Fewer submits
   *  mean fewer per-submit costs in the browser's GPU process; the ids are the same either way. */
  stepsPerSubmit?: number;
  /** OpenAI's `response_format`: the answer is sampled only from tokens that keep it valid JSON (an
   *  object for `json_object`; valid under `json_schema.schema`), so it always parses and validates
   *  when it ends at the end-of-sequence token (not cut by `maxTokens`). Decodes one step at a time.
   *  Needs `stopAtEos`. */
  responseFormat?: { type: "text" } | { type: "json_object" } |
    { type: "json_schema"; json_schema: { name?: string; schema: object | boolean; strict?: boolean } };
  signal?: AbortSignal;
}
"#;

/// `{ onProgress, signal, fetch }` of a JS load call: the progress callback (called with
/// `{ bytesDone, bytesTotal, tensor }`; if it throws, the load goes on), the AbortSignal, and the
/// function URLs are fetched with (`globalThis.fetch` when absent; the facade's `cachedFetch`).
pub(crate) struct LoadOptions {
    on_progress: Option<js_sys::Function>,
    pub(crate) signal: Option<web_sys::AbortSignal>,
    fetch: Option<js_sys::Function>,
    /// `contextLength` (generators).
    pub(crate) context_length: Option<f64>,
}

impl LoadOptions {
    pub(crate) fn from_js(options: Option<&js_sys::Object>) -> LoadOptions {
        let get = |k: &str| {
            options
                .and_then(|o| js_sys::Reflect::get(o, &k.into()).ok())
                .filter(|v| !v.is_undefined() && !v.is_null())
        };
        LoadOptions {
            on_progress: get("onProgress").and_then(|f| f.dyn_into().ok()),
            signal: get("signal").and_then(|s| s.dyn_into().ok()),
            fetch: get("fetch").and_then(|f| f.dyn_into().ok()),
            context_length: get("contextLength").and_then(|v| v.as_f64()),
        }
    }

    /// The signal and fetch function, for the loaders.
    pub(crate) fn net(&self) -> crate::bridge::web::Net<'_> {
        crate::bridge::web::Net {
            signal: self.signal.as_ref(),
            fetch: self.fetch.as_ref(),
        }
    }

    pub(crate) fn report(&self, p: crate::bridge::Progress<'_>) {
        if let Some(f) = &self.on_progress {
            let o = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&o, &"bytesDone".into(), &(p.bytes_done as f64).into());
            let _ = js_sys::Reflect::set(&o, &"bytesTotal".into(), &(p.bytes_total as f64).into());
            let _ = js_sys::Reflect::set(&o, &"tensor".into(), &p.tensor.into());
            let _ = f.call1(&JsValue::NULL, &o);
        }
    }
}

/// Library errors reach JS as `Error` objects carrying the message.
impl From<crate::Error> for JsValue {
    fn from(e: crate::Error) -> JsValue {
        js_sys::Error::new(&e.to_string()).into()
    }
}
