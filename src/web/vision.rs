//! `Classifier` for JS, and what the image models share: on the GPU their input is copied by the
//! browser straight into a GPU texture (`copyExternalImageToTexture`: no pixels through WASM or JS
//! memory); on the CPU backend the pixels are read into WASM memory. `Upscaler` is in `upscaler.rs`.

use js_sys::{Array, Float32Array, Object, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::bridge::folder::{fetch_folder, fetch_folder_counted, folder_url};
use crate::bridge::web::{Source, load, load_host};
use crate::error::Error;
use crate::gpu::Gpu;
use crate::kernels::preprocess::GpuImage;
use crate::models::IMAGE_FILES;
use crate::models::efficientnet::Classifier as RustClassifier;
use crate::web::Device;
use crate::web::backend::{Choice, Placement};

#[wasm_bindgen(typescript_custom_section)]
const TS_IMAGE: &str = r#"
/** What the image models take: anything `copyExternalImageToTexture` copies. */
export type ImageInput = ImageBitmap | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | ImageData | HTMLVideoElement;
/** One class of a classification. */
export interface Prediction { index: number; label: string; score: number; }
"#;

const EXPECTED: &str = "an ImageBitmap, HTMLImageElement, HTMLCanvasElement, OffscreenCanvas, ImageData or HTMLVideoElement";

/// Copies a browser image into a new GPU texture (the browser decodes and uploads it; nothing passes
/// through WASM memory).
pub fn image_from_source(gpu: &Gpu, source: &JsValue) -> Result<GpuImage, Error> {
    use wgpu::ExternalImageSource as S;
    // On a lost device the browser throws from copyExternalImageToTexture, which wgpu turns into a
    // panic: say what happened instead.
    gpu.check()?;
    let (src, width, height) = if let Some(b) = source.dyn_ref::<web_sys::ImageBitmap>() {
        (S::ImageBitmap(b.clone()), b.width(), b.height())
    } else if let Some(i) = source.dyn_ref::<web_sys::HtmlImageElement>() {
        if !i.complete() || i.natural_width() == 0 {
            return Err(Error::Input(
                "the <img> has not loaded (or failed to): await img.decode() before passing it"
                    .into(),
            ));
        }
        (
            S::HTMLImageElement(i.clone()),
            i.natural_width(),
            i.natural_height(),
        )
    } else if let Some(c) = source.dyn_ref::<web_sys::HtmlCanvasElement>() {
        (S::HTMLCanvasElement(c.clone()), c.width(), c.height())
    } else if let Some(c) = source.dyn_ref::<web_sys::OffscreenCanvas>() {
        (S::OffscreenCanvas(c.clone()), c.width(), c.height())
    } else if let Some(d) = source.dyn_ref::<web_sys::ImageData>() {
        (S::ImageData(d.clone()), d.width(), d.height())
    } else if let Some(v) = source.dyn_ref::<web_sys::HtmlVideoElement>() {
        (
            S::HTMLVideoElement(v.clone()),
            v.video_width(),
            v.video_height(),
        )
    } else {
        return Err(Error::Input(format!(
            "expected {EXPECTED}, got {}",
            source.js_typeof().as_string().unwrap_or_default()
        )));
    };
    let image = GpuImage::empty(gpu, width, height)?;
    gpu.queue().copy_external_image_to_texture(
        &wgpu::CopyExternalImageSourceInfo {
            source: src,
            origin: wgpu::Origin2d::ZERO,
            flip_y: false,
        },
        wgpu::CopyExternalImageDestInfo {
            texture: &image.texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
            color_space: wgpu::PredefinedColorSpace::Srgb,
            premultiplied_alpha: false,
        },
        image.extent(),
    );
    Ok(image)
}

/// A browser image's pixels as RGBA8 in WASM memory, for the CPU backend: an `ImageData`'s own bytes,
/// anything else drawn into an `OffscreenCanvas` and read back with `getImageData`.
pub fn pixels_from_source(source: &JsValue) -> Result<(Vec<u8>, u32, u32), Error> {
    if let Some(d) = source.dyn_ref::<web_sys::ImageData>() {
        return Ok((d.data().0, d.width(), d.height()));
    }
    let js = |e: JsValue| Error::Input(format!("reading the image's pixels: {e:?}"));
    let size = if let Some(b) = source.dyn_ref::<web_sys::ImageBitmap>() {
        (b.width(), b.height())
    } else if let Some(i) = source.dyn_ref::<web_sys::HtmlImageElement>() {
        if !i.complete() || i.natural_width() == 0 {
            return Err(Error::Input(
                "the <img> has not loaded (or failed to): await img.decode() before passing it"
                    .into(),
            ));
        }
        (i.natural_width(), i.natural_height())
    } else if let Some(c) = source.dyn_ref::<web_sys::HtmlCanvasElement>() {
        (c.width(), c.height())
    } else if let Some(c) = source.dyn_ref::<web_sys::OffscreenCanvas>() {
        (c.width(), c.height())
    } else if let Some(v) = source.dyn_ref::<web_sys::HtmlVideoElement>() {
        (v.video_width(), v.video_height())
    } else {
        return Err(Error::Input(format!(
            "expected {EXPECTED}, got {}",
            source.js_typeof().as_string().unwrap_or_default()
        )));
    };
    let (w, h) = size;
    if w == 0 || h == 0 {
        return Err(Error::Input(format!(
            "the image is {w}×{h}: it has no pixels"
        )));
    }
    let canvas = web_sys::OffscreenCanvas::new(w, h).map_err(js)?;
    let ctx: web_sys::OffscreenCanvasRenderingContext2d = canvas
        .get_context("2d")
        .map_err(js)?
        .ok_or_else(|| Error::Input("no 2d context on an OffscreenCanvas".into()))?
        .dyn_into()
        .map_err(|_| Error::Input("the 2d context is not a 2d context".into()))?;
    let drawn = if let Some(b) = source.dyn_ref::<web_sys::ImageBitmap>() {
        ctx.draw_image_with_image_bitmap(b, 0.0, 0.0)
    } else if let Some(i) = source.dyn_ref::<web_sys::HtmlImageElement>() {
        ctx.draw_image_with_html_image_element(i, 0.0, 0.0)
    } else if let Some(c) = source.dyn_ref::<web_sys::HtmlCanvasElement>() {
        ctx.draw_image_with_html_canvas_element(c, 0.0, 0.0)
    } else if let Some(c) = source.dyn_ref::<web_sys::OffscreenCanvas>() {
        ctx.draw_image_with_offscreen_canvas(c, 0.0, 0.0)
    } else if let Some(v) = source.dyn_ref::<web_sys::HtmlVideoElement>() {
        ctx.draw_image_with_html_video_element(v, 0.0, 0.0)
    } else {
        Ok(())
    };
    drawn.map_err(js)?;
    let data = ctx
        .get_image_data(0.0, 0.0, f64::from(w), f64::from(h))
        .map_err(js)?;
    Ok((data.data().0, w, h))
}

/// [`image_from_source`] for an `ImageBitmap` (what the tests decode with `createImageBitmap`).
pub fn image_from_bitmap(gpu: &Gpu, bitmap: &web_sys::ImageBitmap) -> crate::Result<GpuImage> {
    image_from_source(gpu, bitmap.as_ref())
}

/// Loads `config.json` and `model.safetensors` (streamed into GPU buffers) from a model folder.
pub(super) async fn load_folder(
    gpu: &Gpu,
    base: &str,
    options: Option<&Object>,
) -> Result<(Vec<u8>, crate::bridge::Weights), JsValue> {
    let base = folder_url(base);
    let opts = crate::web::LoadOptions::from_js(options);
    let net = opts.net();
    let files = fetch_folder(gpu, &base, net, IMAGE_FILES).await?;
    let config = files.required("config.json")?.to_vec();
    let mut on_progress = |p: crate::bridge::Progress<'_>| opts.report(p);
    let weights = load(
        gpu,
        Source::Url(format!("{base}model.safetensors")),
        net,
        &mut on_progress,
    )
    .await?;
    Ok((config, weights))
}

/// Loads `config.json` and `model.safetensors` (streamed into WASM memory, counted) from a model
/// folder, for the CPU backend.
pub(super) async fn load_folder_host(
    place: &Placement,
    base: &str,
    options: Option<&Object>,
) -> Result<(Vec<u8>, crate::cpu::HostWeights), JsValue> {
    let base = folder_url(base);
    let opts = crate::web::LoadOptions::from_js(options);
    let net = opts.net();
    let files = fetch_folder_counted(place.cpu.copy_stats_arc(), &base, net, IMAGE_FILES).await?;
    let config = files.required("config.json")?.to_vec();
    let mut on_progress = |p: crate::bridge::Progress<'_>| opts.report(p);
    let source = Source::Url(format!("{base}model.safetensors"));
    let weights = load_host(&place.cpu, source, net, &mut on_progress).await?;
    Ok((config, weights))
}

/// An image classifier (EfficientNet-Lite, ImageNet) on the GPU, or on the CPU backend where the
/// page has no WebGPU or only a software adapter (`backend: "auto"`, the default; `"gpu"` or
/// `"cpu"` to choose).
///
/// ```js
/// const c = await Classifier.load("/models/efficientnet-lite0/");
/// const top = await c.classify(imageBitmap, 5); // [{ index, label, score }, ...]
/// c.backend, c.backendReason;                  // "gpu" / "cpu", and why
/// ```
#[wasm_bindgen]
pub struct Classifier {
    inner: RustClassifier,
    /// The GPU the network runs on (`None` on the CPU backend).
    gpu: Option<Gpu>,
    reason: String,
}

#[wasm_bindgen]
impl Classifier {
    /// Loads the model folder at `base`: `config.json` (architecture, preprocessing, labels) and
    /// `model.safetensors`, streamed into GPU buffers; batch norms are folded into the convolutions on
    /// the GPU. Options as `Device.loadWeights` (`onProgress`, `signal`, `fetch`); `backend` as
    /// `Device.create`'s. On the CPU backend the weights stream into WASM memory (one copy, counted
    /// in `stats().hostWeightBytes`) and each image's pixels are read into it too (`getImageData`).
    pub async fn load(
        base: String,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<Object>,
    ) -> Result<Classifier, JsValue> {
        let choice = Choice::from_js(options.as_ref())?.unwrap_or(Choice::Auto);
        let place = Placement::acquire(choice, &Default::default()).await?;
        load_classifier(&place, &base, options.as_ref()).await
    }

    /// `"gpu"` or `"cpu"`: where this classifier runs.
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

    /// Runs the network on `image` with either backend.
    async fn run(
        &self,
        image: &JsValue,
        top_k: usize,
    ) -> crate::Result<crate::models::efficientnet::Classification> {
        match &self.gpu {
            Some(gpu) => {
                let img = image_from_source(gpu, image)?;
                self.inner.classify(&img, top_k).await
            }
            None => {
                let (rgba, w, h) = pixels_from_source(image)?;
                self.inner.classify_rgba(&rgba, w, h, top_k).await
            }
        }
    }

    /// The `topK` (default 5) most probable classes of `image`, most probable first, with softmax
    /// scores. The image is preprocessed on the GPU as the model was evaluated
    /// (`config.json`: the centred square of `crop_pct` of the shorter side, resized by
    /// `interpolation`, antialiased when it shrinks by more than 2×, then normalised).
    #[wasm_bindgen(unchecked_return_type = "Prediction[]")]
    pub async fn classify(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageInput")] image: JsValue,
        #[wasm_bindgen(js_name = topK)] top_k: Option<usize>,
    ) -> Result<Array, JsValue> {
        let result = self.run(&image, top_k.unwrap_or(5)).await?;
        let out = Array::new();
        for p in result.top {
            let o = Object::new();
            Reflect::set(&o, &"index".into(), &(p.index as u32).into())?;
            Reflect::set(&o, &"label".into(), &p.label.into())?;
            Reflect::set(&o, &"score".into(), &p.score.into())?;
            out.push(&o);
        }
        Ok(out)
    }

    /// All class logits of `image`.
    pub async fn logits(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageInput")] image: JsValue,
    ) -> Result<Float32Array, JsValue> {
        let result = self.run(&image, 0).await?;
        Ok(Float32Array::from(result.logits.as_slice()))
    }

    /// Class names, in class order.
    #[wasm_bindgen(getter)]
    pub fn labels(&self) -> Vec<String> {
        self.inner.labels().to_vec()
    }

    /// The network's input size (pixels, square).
    #[wasm_bindgen(getter, js_name = imageSize)]
    pub fn image_size(&self) -> u32 {
        self.inner.config().image_size
    }
}

/// Loads the folder onto the placement's backend: the weights into WASM memory for the CPU, into
/// GPU buffers otherwise.
async fn load_classifier(
    place: &Placement,
    base: &str,
    options: Option<&Object>,
) -> Result<Classifier, JsValue> {
    if place.backend == "cpu" {
        let (config, weights) = load_folder_host(place, base, options).await?;
        let inner = RustClassifier::new_cpu(&place.cpu, &weights, &config)?;
        return Ok(Classifier {
            inner,
            gpu: None,
            reason: place.reason.clone(),
        });
    }
    let gpu = place.gpu_for("the GPU backend")?;
    let (config, weights) = load_folder(gpu, base, options).await?;
    let inner = RustClassifier::new(gpu, &weights, &config)?;
    Ok(Classifier {
        inner,
        gpu: Some(gpu.clone()),
        reason: place.reason.clone(),
    })
}

#[wasm_bindgen]
impl Device {
    /// [`Classifier::load`] on this device.
    #[wasm_bindgen(js_name = loadClassifier)]
    pub async fn load_classifier(
        &self,
        base: String,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<Object>,
    ) -> Result<Classifier, JsValue> {
        let place = self
            .placement()
            .for_load(Choice::from_js(options.as_ref())?)?;
        load_classifier(&place, &base, options.as_ref()).await
    }
}
