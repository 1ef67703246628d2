//! `Upscaler` for JS: super-resolution on the GPU, where the picture is copied by the browser straight
//! into a GPU texture and the result can be drawn into a canvas without leaving the GPU; or on the CPU
//! backend (no WebGPU, or a software adapter), where pixels go through WASM memory.

use js_sys::{Object, Reflect, Uint8ClampedArray};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use super::vision::{image_from_source, load_folder, load_folder_host, pixels_from_source};
use crate::error::Error;
use crate::gpu::Gpu;
use crate::models::rdn::{UpscaledImage, Upscaler as RustUpscaler};
use crate::tensor::Tensor;
use crate::web::Device;
use crate::web::backend::{Choice, Placement};

/// A super-resolution network (RDN, from @upscalerjs/esrgan-slim) on the GPU, or on the CPU backend
/// where the page has no WebGPU or only a software adapter (`backend: "auto"`, the default; `"gpu"`
/// or `"cpu"` to choose).
///
/// ```js
/// const u = await Upscaler.load("/models/esrgan-slim/x2/");
/// await u.upscaleToCanvas(imageBitmap, canvas); // on the GPU: drawn from the GPU, no read-back
/// const pixels = await u.upscale(imageBitmap);    // or an ImageData
/// u.backend, u.backendReason;                     // "gpu" / "cpu", and why
/// ```
#[wasm_bindgen]
pub struct Upscaler {
    inner: RustUpscaler,
    gpu: Option<Gpu>,
    reason: String,
}

#[wasm_bindgen]
impl Upscaler {
    /// Loads the model folder at `base` (`config.json`, `model.safetensors`). Options as
    /// `Device.loadWeights` (`onProgress`, `signal`, `fetch`); `backend` as `Device.create`'s. On the
    /// CPU backend the weights stream into WASM memory (one copy, counted in
    /// `stats().hostWeightBytes`), and each image's pixels are read into it (`getImageData`).
    pub async fn load(
        base: String,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<Object>,
    ) -> Result<Upscaler, JsValue> {
        let choice = Choice::from_js(options.as_ref())?.unwrap_or(Choice::Auto);
        let place = Placement::acquire(choice, &Default::default()).await?;
        load_upscaler(&place, &base, options.as_ref()).await
    }

    /// `"gpu"` or `"cpu"`: where this upscaler runs.
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

    /// The upscaled image, read back as an `ImageData` (`scale` times the input's size). On the GPU
    /// its pixels are copied once, from the mapped read-back buffer into the `ImageData` (not through
    /// WASM memory); on the CPU once, from WASM memory into it.
    pub async fn upscale(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageInput")] image: JsValue,
    ) -> Result<web_sys::ImageData, JsValue> {
        let Some(gpu) = &self.gpu else {
            return image_data(&self.upscale_on_cpu(&image).await?);
        };
        let img = image_from_source(gpu, &image)?;
        let (pixels, [width, height]) = self.inner.upscale_to_gpu(&img)?;
        let mapped = pixels.read_mapped().await?;
        let view = mapped.as_uint8array();
        let stride = pixels.shape()[1] as u32 * 4;
        let row = width * 4;
        let data = Uint8ClampedArray::new_with_length(row * height);
        for y in 0..height {
            data.set(&view.subarray(y * stride, y * stride + row), y * row);
        }
        web_sys::ImageData::new_with_js_u8_clamped_array_and_sh(&data, width, height)
    }

    async fn upscale_on_cpu(&self, image: &JsValue) -> crate::Result<UpscaledImage> {
        let (rgba, w, h) = pixels_from_source(image)?;
        self.inner.upscale_rgba(&rgba, w, h).await
    }

    /// Upscales `image` and draws the result into `canvas` (an `HTMLCanvasElement` or `OffscreenCanvas`,
    /// resized to the output). On the GPU the canvas is configured for WebGPU on this model's device
    /// and drawn straight from the GPU: the pixels are never read back. On the CPU it is drawn with
    /// its 2D context (`putImageData`). Resolves with `{ width, height }` once it is drawn.
    #[wasm_bindgen(js_name = upscaleToCanvas)]
    pub async fn upscale_to_canvas(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageInput")] image: JsValue,
        #[wasm_bindgen(unchecked_param_type = "HTMLCanvasElement | OffscreenCanvas")]
        canvas: JsValue,
    ) -> Result<Object, JsValue> {
        let Some(gpu) = &self.gpu else {
            let out = self.upscale_on_cpu(&image).await?;
            put_on_canvas(&canvas, &image_data(&out)?)?;
            return size_object(out.width, out.height);
        };
        let img = image_from_source(gpu, &image)?;
        let limit = gpu.limits().max_texture_dimension_2d;
        let scale = self.inner.scale() as u64;
        let (out_w, out_h) = (
            u64::from(img.width()) * scale,
            u64::from(img.height()) * scale,
        );
        if out_w.max(out_h) > u64::from(limit) {
            return Err(Error::LimitExceeded {
                what: format!("upscaleToCanvas: the {out_w}x{out_h} result as a canvas (use upscale() or a smaller image)"),
                value: out_w.max(out_h),
                limit_name: "maxTextureDimension2D",
                limit: u64::from(limit),
            }
            .into());
        }
        let (pixels, [width, height]) = self.inner.upscale_to_gpu(&img)?;
        let target = canvas_target(&canvas, width, height)?;
        // The surface lives until the GPU is done, as the canvas's context.
        let surface = draw_to_canvas(gpu, target, &pixels, width, height)?;
        // Resolve once the GPU is done (timings that mean something; the buffer may then be reused).
        let (sender, receiver) = futures_channel::oneshot::channel();
        gpu.queue().on_submitted_work_done(move || {
            let _ = sender.send(());
        });
        let _ = receiver.await;
        drop(pixels);
        drop(surface);
        // Some browser set-ups lose the device when a WebGPU canvas is used (headless Chromium with
        // its default GL compositing): report it rather than resolving with a blank canvas.
        gpu.check()?;
        size_object(width, height)
    }

    /// The upscaling factor.
    #[wasm_bindgen(getter)]
    pub fn scale(&self) -> usize {
        self.inner.scale()
    }

    /// Tile size in input pixels: images are upscaled tile by tile, one GPU submit each on the GPU
    /// (the result is the same for any tile size). Default 256, 64 on software adapters, 128 on the
    /// CPU backend; at least 16.
    #[wasm_bindgen(getter)]
    pub fn tile(&self) -> usize {
        self.inner.tile()
    }

    #[wasm_bindgen(setter)]
    pub fn set_tile(&mut self, tile: usize) {
        self.inner.set_tile(tile);
    }
}

fn size_object(width: u32, height: u32) -> Result<Object, JsValue> {
    let o = Object::new();
    Reflect::set(&o, &"width".into(), &width.into())?;
    Reflect::set(&o, &"height".into(), &height.into())?;
    Ok(o)
}

/// The CPU result as an `ImageData`, its bytes copied out of WASM memory into a JS array (an
/// `ImageData` made from a slice would keep a view on WASM memory, which the result's drop frees and
/// a memory growth detaches).
fn image_data(out: &UpscaledImage) -> Result<web_sys::ImageData, JsValue> {
    let data = Uint8ClampedArray::new_with_length(out.rgba.len() as u32);
    data.copy_from(&out.rgba);
    web_sys::ImageData::new_with_js_u8_clamped_array_and_sh(&data, out.width, out.height)
}

/// Draws `data` into `canvas` (resized to it) through its 2D context.
fn put_on_canvas(canvas: &JsValue, data: &web_sys::ImageData) -> Result<(), JsValue> {
    let no_2d = || {
        JsValue::from(Error::Input(
            "upscaleToCanvas: the canvas has no 2D context (a canvas once used for WebGPU keeps \
             its WebGPU context: pass a fresh one)"
                .into(),
        ))
    };
    let (w, h) = (data.width(), data.height());
    if let Some(c) = canvas.dyn_ref::<web_sys::HtmlCanvasElement>() {
        c.set_width(w);
        c.set_height(h);
        let ctx: web_sys::CanvasRenderingContext2d = c
            .get_context("2d")?
            .ok_or_else(no_2d)?
            .dyn_into()
            .map_err(|_| no_2d())?;
        ctx.put_image_data(data, 0.0, 0.0)
    } else if let Some(c) = canvas.dyn_ref::<web_sys::OffscreenCanvas>() {
        c.set_width(w);
        c.set_height(h);
        let ctx: web_sys::OffscreenCanvasRenderingContext2d = c
            .get_context("2d")?
            .ok_or_else(no_2d)?
            .dyn_into()
            .map_err(|_| no_2d())?;
        ctx.put_image_data(data, 0.0, 0.0)
    } else {
        Err(Error::Input(
            "upscaleToCanvas: expected an HTMLCanvasElement or OffscreenCanvas".into(),
        )
        .into())
    }
}

/// Loads the folder onto the placement's backend: the weights into WASM memory for the CPU, into
/// GPU buffers otherwise.
async fn load_upscaler(
    place: &Placement,
    base: &str,
    options: Option<&Object>,
) -> Result<Upscaler, JsValue> {
    if place.backend == "cpu" {
        let (config, weights) = load_folder_host(place, base, options).await?;
        let inner = RustUpscaler::new_cpu(&place.cpu, &weights, &config)?;
        return Ok(Upscaler {
            inner,
            gpu: None,
            reason: place.reason.clone(),
        });
    }
    let gpu = place.gpu_for("the GPU backend")?;
    let (config, weights) = load_folder(gpu, base, options).await?;
    let inner = RustUpscaler::new(gpu, &weights, &config)?;
    Ok(Upscaler {
        inner,
        gpu: Some(gpu.clone()),
        reason: place.reason.clone(),
    })
}

#[wasm_bindgen]
impl Device {
    /// [`Upscaler::load`] on this device.
    #[wasm_bindgen(js_name = loadUpscaler)]
    pub async fn load_upscaler(
        &self,
        base: String,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<Object>,
    ) -> Result<Upscaler, JsValue> {
        let place = self
            .placement()
            .for_load(Choice::from_js(options.as_ref())?)?;
        load_upscaler(&place, &base, options.as_ref()).await
    }
}

/// `canvas` (an `HTMLCanvasElement` or `OffscreenCanvas`) resized to `width` × `height`, as a surface
/// target; anything else is refused.
fn canvas_target(
    canvas: &JsValue,
    width: u32,
    height: u32,
) -> Result<wgpu::SurfaceTarget<'static>, JsValue> {
    let target = if let Some(c) = canvas.dyn_ref::<web_sys::HtmlCanvasElement>() {
        c.set_width(width);
        c.set_height(height);
        wgpu::SurfaceTarget::Canvas(c.clone())
    } else if let Some(c) = canvas.dyn_ref::<web_sys::OffscreenCanvas>() {
        c.set_width(width);
        c.set_height(height);
        wgpu::SurfaceTarget::OffscreenCanvas(c.clone())
    } else {
        return Err(Error::Input(
            "upscaleToCanvas: expected an HTMLCanvasElement or OffscreenCanvas".into(),
        )
        .into());
    };
    Ok(target)
}

/// Copies the RGBA8 `pixels` (rows of `pixels.shape()[1]` texels) into a WebGPU context on `target`
/// and presents it: one counted submit, nothing read back. Returns the surface (the canvas's
/// context), to be kept until the GPU has finished.
fn draw_to_canvas(
    gpu: &Gpu,
    target: wgpu::SurfaceTarget<'static>,
    pixels: &Tensor,
    width: u32,
    height: u32,
) -> Result<wgpu::Surface<'static>, JsValue> {
    let surface = gpu.instance().create_surface(target).map_err(|e| {
        Error::Input(format!(
            "upscaleToCanvas: no WebGPU context on the canvas: {e}"
        ))
    })?;
    surface.configure(
        gpu.device(),
        &wgpu::SurfaceConfiguration {
            usage: wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::RENDER_ATTACHMENT,
            format: wgpu::TextureFormat::Rgba8Unorm,
            color_space: wgpu::SurfaceColorSpace::Auto,
            width,
            height,
            present_mode: wgpu::PresentMode::Fifo,
            desired_maximum_frame_latency: 2,
            alpha_mode: wgpu::CompositeAlphaMode::Opaque,
            view_formats: vec![],
        },
    );
    let frame = match surface.get_current_texture() {
        wgpu::CurrentSurfaceTexture::Success(f) | wgpu::CurrentSurfaceTexture::Suboptimal(f) => f,
        other => {
            return Err(Error::Input(format!(
                "upscaleToCanvas: the canvas gave no texture ({other:?})"
            ))
            .into());
        }
    };
    let mut encoder = gpu
        .device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("to canvas"),
        });
    let stride_bytes = pixels.shape()[1] as u32 * 4;
    encoder.copy_buffer_to_texture(
        wgpu::TexelCopyBufferInfo {
            buffer: pixels.buffer().raw(),
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(stride_bytes),
                rows_per_image: Some(height),
            },
        },
        wgpu::TexelCopyTextureInfo {
            texture: &frame.texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
    );
    gpu.submit(encoder.finish()); // counted, as every submit
    gpu.queue().present(frame);
    Ok(surface)
}
