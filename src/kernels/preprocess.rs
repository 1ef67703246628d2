//! Images into model inputs on the GPU, `shaders/preprocess.wgsl`: an RGBA8 texture ([`GpuImage`]) is
//! cropped, resized (bilinear) and normalised into an NHWC tensor in one dispatch, so pixels never pass
//! through WASM memory on their way in (the browser copies an `ImageBitmap`, `<img>`, canvas or
//! `ImageData` into the texture itself: [`crate::web`]).

use crate::error::{Error, Result};
use crate::gpu::{Gpu, KernelSource};
use crate::kernels::to_u32;
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

const SHADER: &str = include_str!("../../shaders/preprocess.wgsl");

/// An image on the GPU: an `rgba8unorm` texture and its size.
#[derive(Clone, Debug)]
pub struct GpuImage {
    pub(crate) texture: wgpu::Texture,
    width: u32,
    height: u32,
}

/// The texture usage image inputs need: sampled by the preprocessing kernel, filled by a copy (and a
/// render attachment, which `copyExternalImageToTexture` requires of its destination).
pub(crate) const IMAGE_USAGE: wgpu::TextureUsages = wgpu::TextureUsages::TEXTURE_BINDING
    .union(wgpu::TextureUsages::COPY_DST)
    .union(wgpu::TextureUsages::RENDER_ATTACHMENT);

impl GpuImage {
    /// An empty `width × height` image texture, refused past the adapter's texture size limit.
    pub(crate) fn empty(gpu: &Gpu, width: u32, height: u32) -> Result<GpuImage> {
        let limit = gpu.limits().max_texture_dimension_2d;
        if width == 0 || height == 0 {
            return Err(Error::shape(
                "image",
                format!("the image is empty ({width}x{height})"),
            ));
        }
        if width > limit || height > limit {
            return Err(Error::LimitExceeded {
                what: format!("image size {width}x{height}"),
                value: u64::from(width.max(height)),
                limit_name: "maxTextureDimension2D",
                limit: u64::from(limit),
            });
        }
        let texture = gpu.device().create_texture(&wgpu::TextureDescriptor {
            label: Some("image"),
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: IMAGE_USAGE,
            view_formats: &[],
        });
        Ok(GpuImage {
            texture,
            width,
            height,
        })
    }

    /// Uploads `rgba` (`width × height` pixels, 4 bytes each, rows top to bottom, not premultiplied):
    /// one host-to-GPU copy, counted in [`Gpu::stats`].
    pub fn from_rgba8(gpu: &Gpu, rgba: &[u8], width: u32, height: u32) -> Result<GpuImage> {
        let want = u64::from(width) * u64::from(height) * 4;
        if rgba.len() as u64 != want {
            return Err(Error::shape(
                "image",
                format!(
                    "{} bytes for a {width}x{height} RGBA image: it needs width·height·4 = {want}",
                    rgba.len()
                ),
            ));
        }
        let image = GpuImage::empty(gpu, width, height)?;
        gpu.queue().write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &image.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            rgba,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(width * 4),
                rows_per_image: Some(height),
            },
            image.extent(),
        );
        gpu.copy_stats().to_gpu(want);
        Ok(image)
    }

    /// `rgb` (3 bytes a pixel) as [`GpuImage::from_rgba8`] with opaque alpha.
    pub fn from_rgb8(gpu: &Gpu, rgb: &[u8], width: u32, height: u32) -> Result<GpuImage> {
        if !rgb.len().is_multiple_of(3) {
            return Err(Error::shape("image", "RGB data must hold 3 bytes a pixel"));
        }
        let rgba: Vec<u8> = rgb
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect();
        GpuImage::from_rgba8(gpu, &rgba, width, height)
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub(crate) fn extent(&self) -> wgpu::Extent3d {
        wgpu::Extent3d {
            width: self.width,
            height: self.height,
            depth_or_array_layers: 1,
        }
    }
}

/// Which part of the image becomes the model's input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Crop {
    /// All of it (the aspect ratio changes if the output's differs).
    Full,
    /// The largest centred square (offset `floor((side − short side) / 2)`), as classifiers expect.
    CenterSquare,
    /// The centred square of side `floor(f · short side)` (offset `ceil((side − square) / 2)`), as
    /// TensorFlow's EfficientNet evaluation crops (`f` = 224 / 256 = 0.875, timm's `crop_pct`).
    /// `f` in (0, 1].
    CenterFraction(f32),
    /// `[x, y, width, height]` in pixels.
    Rect([u32; 4]),
}

/// How the crop is resized, as PyTorch's `F.interpolate(size=..., align_corners=False)` does it in
/// float (torchvision's `Resize` on a float tensor).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Interpolation {
    /// Two taps an axis (half-pixel centres).
    #[default]
    Bilinear,
    /// Keys' cubic convolution, a = −0.75, four taps an axis (edge pixels repeated).
    Bicubic,
    /// The source pixel at `floor(o · in / out)`.
    Nearest,
}

/// How an image becomes a model input: `(pixel − mean) / std` per channel on 0..1 values, after the
/// crop is resized to `size = [height, width]` by `interpolation`; with `antialias` (bilinear and
/// bicubic) as `F.interpolate(antialias=True)` resizes, which is Pillow's resampling: the filter
/// (triangle, or Keys with a = −0.5) stretched by the downscaling factor so that every source pixel
/// counts, weights normalised. Without it a downscale by more than 2× skips pixels (aliasing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    pub size: [u32; 2],
    pub crop: Crop,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub interpolation: Interpolation,
    pub antialias: bool,
    /// Channels in blue, green, red order (OpenCV- and Caffe-trained models); `mean` and `std` are in
    /// the model's order.
    pub bgr: bool,
}

impl Crop {
    /// `[x, y, width, height]` of this crop in a `w × h` image.
    pub fn rect(&self, w: u32, h: u32) -> [u32; 4] {
        match *self {
            Crop::Full => [0, 0, w, h],
            Crop::CenterSquare => {
                let s = w.min(h);
                [(w - s) / 2, (h - s) / 2, s, s]
            }
            Crop::CenterFraction(f) => {
                let s = (f64::from(f) * f64::from(w.min(h))).floor() as u32;
                [(w - s.min(w)).div_ceil(2), (h - s.min(h)).div_ceil(2), s, s]
            }
            Crop::Rect(r) => r,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    out_h: u32,
    out_w: u32,
    out_offset: u32,
    _pad: u32,
    crop: [u32; 4],
    mean: [f32; 4],
    inv_std: [f32; 4],
}

/// The preprocessed image, `[1, height, width, 3]` of `dtype`.
pub fn image_to_tensor(
    rec: &mut Recorder,
    image: &GpuImage,
    pre: &Preprocess,
    dtype: DType,
) -> Result<Tensor> {
    const OP: &str = "image_to_tensor";
    let gpu = rec.gpu().clone();
    let (w, h) = (image.width, image.height);
    if let Crop::CenterFraction(f) = pre.crop
        && !(f > 0.0 && f <= 1.0)
    {
        return Err(Error::shape(
            OP,
            format!("the centre crop's fraction {f} must be in (0, 1]"),
        ));
    }
    let crop = pre.crop.rect(w, h);
    let inside = crop[2] > 0
        && crop[3] > 0
        && u64::from(crop[0]) + u64::from(crop[2]) <= u64::from(w)
        && u64::from(crop[1]) + u64::from(crop[3]) <= u64::from(h);
    if !inside {
        return Err(Error::shape(
            OP,
            format!(
                "crop {crop:?} (x, y, width, height) is not a non-empty part of the {w}x{h} image"
            ),
        ));
    }
    let [out_h, out_w] = pre.size;
    if out_h == 0 || out_w == 0 || pre.std.contains(&0.0) {
        return Err(Error::shape(
            OP,
            format!(
                "output size {:?} must be non-empty and std {:?} non-zero",
                pre.size, pre.std
            ),
        ));
    }
    if dtype == DType::I32 {
        return Err(Error::DType {
            op: OP,
            message: "the model input is f32 or f16".into(),
            got: dtype,
        });
    }
    crate::kernels::check_dtypes(OP, &gpu, &[&Tensor::empty(&gpu, &[0], dtype)?])?;
    let out = Tensor::empty(&gpu, &[1, out_h as usize, out_w as usize, 3], dtype)?;
    to_u32(OP, "output elements", out.numel())?;
    let [m0, m1, m2] = pre.mean;
    let [s0, s1, s2] = pre.std;
    let params = Params {
        out_h,
        out_w,
        out_offset: out.offset_elements(),
        _pad: 0,
        crop,
        mean: [m0, m1, m2, 0.0],
        inv_std: [1.0 / s0, 1.0 / s1, 1.0 / s2, 0.0],
    };
    let groups = [out_w.div_ceil(16), out_h.div_ceil(16), 1];
    gpu.check_workgroups("image_to_tensor columns", groups[0])?;
    gpu.check_workgroups("image_to_tensor rows", groups[1])?;
    let pipeline = gpu.pipeline(&KernelSource {
        name: "preprocess",
        body: SHADER,
        dtype,
        entry: "main",
        constants: &[
            (
                "MODE",
                match pre.interpolation {
                    Interpolation::Bilinear => 0.0,
                    Interpolation::Bicubic => 1.0,
                    Interpolation::Nearest => 2.0,
                },
            ),
            ("ANTIALIAS", f64::from(u8::from(pre.antialias))),
            ("BGR", f64::from(u8::from(pre.bgr))),
        ],
    });
    rec.dispatch_texture(
        &pipeline,
        &image.texture,
        &[(1, out.buffer())],
        2,
        &params,
        groups,
    );
    Ok(out)
}
