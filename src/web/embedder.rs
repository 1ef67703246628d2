//! `Embedder` for JS: sentence embeddings from a sentence-transformers model folder on the web.

use js_sys::{Array, Float32Array, Object};
use wasm_bindgen::prelude::*;

use crate::bridge::folder::fetch_folder_counted;
use crate::bridge::web::{Source, load, load_host};
use crate::models::embedder::{EMBEDDER_FILES, Embedder as RustEmbedder, ModelFiles, cosine};
use crate::web::Device;
use crate::web::backend::{Choice, Placement};

/// A sentence-embedding model on the GPU, or on the CPU backend where the page has no WebGPU or only
/// a software adapter (`backend: "auto"`, the default; `"gpu"` or `"cpu"` to choose).
///
/// ```js
/// const e = await Embedder.load("https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main/",
///                               { onProgress: ({ bytesDone, bytesTotal }) => ... });
/// const [a, b] = await e.embed(["A man is eating food.", "Someone eats."]);  // Float32Array each
/// similarity(a, b);  // cosine
/// e.backend;  // "gpu" or "cpu"; e.backendReason says why
/// ```
#[wasm_bindgen]
pub struct Embedder {
    inner: RustEmbedder,
    reason: String,
}

#[wasm_bindgen]
impl Embedder {
    /// Loads the model folder at `base` (a URL ending in `/`, or not): `model.safetensors` streamed
    /// into GPU buffers, `config.json` and `tokenizer.json`, and when present
    /// `sentence_bert_config.json`, `modules.json` and `1_Pooling/config.json`. Options: `onProgress`
    /// and `signal`, as `Device.loadWeights`; `backend` as `Device.create`'s. Creates its own device;
    /// `device.loadEmbedder` shares one. On the CPU backend the weights stream into WASM memory (one
    /// copy, counted in `stats().hostWeightBytes`).
    pub async fn load(
        base: String,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<Object>,
    ) -> Result<Embedder, JsValue> {
        let choice = Choice::from_js(options.as_ref())?.unwrap_or(Choice::Auto);
        let place = Placement::acquire(choice, &Default::default()).await?;
        load_embedder(&place, &base, options.as_ref()).await
    }

    /// `"gpu"` or `"cpu"`: where this embedder runs.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.inner.backend().into()
    }

    /// Why it runs there ("software adapter (...): the CPU backend is faster", "no WebGPU (...)",
    /// "hardware adapter (...)", "requested").
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> String {
        self.reason.clone()
    }

    /// The embedding of each text, a `Float32Array` of `dims` values, L2-normalized when the model's
    /// `modules.json` ends with `Normalize`. Texts past `maxSeqLength` tokens are truncated (see
    /// `truncated`); an empty array gives an empty array.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Array, JsValue> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let out = self.inner.embed(&refs).await?;
        Ok(out
            .vectors
            .iter()
            .map(|v| JsValue::from(Float32Array::from(v.as_slice())))
            .collect())
    }

    /// The token ids of `text` as the model sees it: special tokens added, truncated at
    /// `maxSeqLength`.
    pub fn encode(&self, text: String) -> Result<Vec<u32>, JsValue> {
        Ok(self.inner.tokenize(&text)?.0)
    }

    /// Whether each text would be truncated at `maxSeqLength` tokens.
    pub fn truncated(&self, texts: Vec<String>) -> Result<Vec<u8>, JsValue> {
        texts
            .iter()
            .map(|t| Ok(u8::from(self.inner.tokenize(t)?.1)))
            .collect()
    }

    #[wasm_bindgen(getter)]
    pub fn dims(&self) -> usize {
        self.inner.dims()
    }

    #[wasm_bindgen(getter, js_name = maxSeqLength)]
    pub fn max_seq_length(&self) -> usize {
        self.inner.max_seq_length()
    }
}

#[wasm_bindgen]
impl Device {
    /// [`Embedder::load`] on this device: on its backend, unless `options.backend` names another.
    #[wasm_bindgen(js_name = loadEmbedder)]
    pub async fn load_embedder(
        &self,
        base: String,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<Object>,
    ) -> Result<Embedder, JsValue> {
        let place = self
            .placement()
            .for_load(Choice::from_js(options.as_ref())?)?;
        load_embedder(&place, &base, options.as_ref()).await
    }
}

/// Cosine similarity of two vectors (0 when either is zero).
#[wasm_bindgen]
pub fn similarity(a: &[f32], b: &[f32]) -> Result<f32, JsValue> {
    if a.len() != b.len() {
        return Err(
            crate::Error::Input(format!("vectors of {} and {} values", a.len(), b.len())).into(),
        );
    }
    Ok(cosine(a, b))
}

/// Loads the folder onto the placement's backend: the weights into WASM memory for the CPU, into
/// GPU buffers otherwise.
async fn load_embedder(
    place: &Placement,
    base: &str,
    options: Option<&Object>,
) -> Result<Embedder, JsValue> {
    let base = crate::bridge::folder::folder_url(base);
    let opts = crate::web::LoadOptions::from_js(options);
    let net = opts.net();
    let stats = match (&place.gpu, place.backend) {
        (Some(gpu), "gpu") => gpu.copy_stats_arc().clone(),
        _ => place.cpu.copy_stats_arc().clone(),
    };
    let folder = fetch_folder_counted(&stats, &base, net, EMBEDDER_FILES).await?;
    let files = ModelFiles::from_folder(&folder)?;
    let mut on_progress = |p: crate::bridge::Progress<'_>| opts.report(p);
    let source = Source::Url(format!("{base}model.safetensors"));
    let inner = if place.backend == "cpu" {
        let weights = load_host(&place.cpu, source, net, &mut on_progress).await?;
        RustEmbedder::new_cpu(&place.cpu, &weights, &files)?
    } else {
        let gpu = place.gpu_for("the GPU backend")?;
        let weights = load(gpu, source, net, &mut on_progress).await?;
        RustEmbedder::new(gpu, &weights, &files)?
    };
    Ok(Embedder {
        inner,
        reason: place.reason.clone(),
    })
}
