//! [`Upscaler`]: super-resolution with the RDN networks of @upscalerjs/esrgan-slim (×2, ×3, ×4, ×8),
//! converted by `scripts/convert_esrgan_slim.py`. The image goes in as a texture, comes out as RGBA8
//! pixels on the GPU (drawn into a canvas from there in the browser, or read back).
//!
//! Large images are split into tiles whose inputs overlap by more than the network's receptive field
//! (10 input pixels), so the tiled result is the same as the untiled one; each tile is one submit.

use serde::Deserialize;

use crate::bridge::Weights;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::activation::Activation;
use crate::kernels::conv::{Conv2d, ConvEpilogue, Padding, conv2d};
use crate::kernels::image::{concat_channels, to_rgba8_into, upsample_nearest};
use crate::kernels::preprocess::{Crop, GpuImage, Interpolation, Preprocess, image_to_tensor};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

/// `config.json` of a converted RDN.
#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    pub architecture: String,
    pub scale: usize,
    /// Residual dense blocks.
    #[serde(rename = "D")]
    pub d: usize,
    /// Convolutions per block.
    #[serde(rename = "C")]
    pub c: usize,
    /// Channels each block convolution adds.
    #[serde(rename = "G")]
    pub g: usize,
    /// Feature channels.
    #[serde(rename = "G0")]
    pub g0: usize,
}

/// Input pixels of context each tile needs on every side: the network's receptive radius is
/// 1 + 1 + D·1 + 1 + 2 + 1 + 1 + 1 (the 3×3 and 5×5 convolutions, the last one on the upscaled grid,
/// rounded up) = 10 for D = 2; the margin covers D ≤ 4.
const CONTEXT: usize = 12;

/// An upscaled image: `width × height` RGBA8 pixels, rows top to bottom.
#[derive(Clone, Debug)]
pub struct UpscaledImage {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

/// An RDN super-resolution network on the GPU.
pub struct Upscaler {
    gpu: Gpu,
    config: Config,
    convs: std::collections::HashMap<String, (Tensor, Tensor)>,
    tile: usize,
}

impl Upscaler {
    /// Builds the upscaler from loaded weights (f32) and `config.json`.
    pub fn new(gpu: &Gpu, weights: &Weights, config_json: &[u8]) -> Result<Upscaler> {
        let bad = |m: String| Error::Model {
            source_name: "config.json".into(),
            message: m,
        };
        let config: Config = serde_json::from_slice(config_json)
            .map_err(|e| bad(format!("not an RDN config: {e}")))?;
        if config.architecture != "rdn" {
            return Err(bad(format!(
                "architecture `{}`: this loader reads `rdn`",
                config.architecture
            )));
        }
        if !(1..=16).contains(&config.scale) || config.d == 0 || config.d > 4 || config.c == 0 {
            return Err(bad("scale must be 1..=16, D 1..=4 and C ≥ 1".into()));
        }
        let mut names = vec![
            "F_m1".to_string(),
            "F_0".into(),
            "GFF_1".into(),
            "GFF_2".into(),
        ];
        for d in 1..=config.d {
            names.extend((1..=config.c).map(|c| format!("F_{d}_{c}")));
            names.push(format!("LFF_{d}"));
        }
        names.extend(["UPN1", "UPN2", "UPN3", "SR"].map(String::from));
        let mut convs = std::collections::HashMap::new();
        for name in names {
            let w = weights.get(&format!("{name}.weight"))?.clone();
            let b = weights.get(&format!("{name}.bias"))?.clone();
            if w.dtype() != DType::F32 || w.shape().len() != 4 || w.shape()[2] % 2 == 0 {
                return Err(Error::Model {
                    source_name: "model.safetensors".into(),
                    message: format!(
                        "{name}.weight {:?} must be an f32 [out, in, k, k] with k odd",
                        w.shape()
                    ),
                });
            }
            convs.insert(name, (w, b));
        }
        // One submit a tile: on a CPU adapter (SwiftShader, llvmpipe) a 256² tile is tens of seconds
        // of work in one submit, long enough for the browser to give up on the device.
        let tile = if gpu.capabilities().cpu_kernels {
            64
        } else {
            256
        };
        Ok(Upscaler {
            gpu: gpu.clone(),
            config,
            convs,
            tile,
        })
    }

    /// Loads `model.safetensors` and `config.json` from a folder.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(gpu: &Gpu, dir: &std::path::Path) -> Result<Upscaler> {
        let (config, weights) = crate::models::read_folder(gpu, dir)?;
        Upscaler::new(gpu, &weights, &config)
    }

    /// Tiles of at most `tile × tile` input pixels (plus context): smaller tiles bound GPU memory
    /// (a 256² tile needs about 70 MB) and the length of one submit, larger ones waste less work on the
    /// overlaps. At least 16. Default: 256, or 64 on CPU adapters.
    pub fn with_tile(mut self, tile: usize) -> Upscaler {
        self.set_tile(tile);
        self
    }

    /// [`Upscaler::with_tile`] in place.
    pub fn set_tile(&mut self, tile: usize) {
        self.tile = tile.max(16);
    }

    /// The tile size in input pixels (see [`Upscaler::with_tile`]).
    pub fn tile(&self) -> usize {
        self.tile
    }

    pub fn scale(&self) -> usize {
        self.config.scale
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn conv(
        &self,
        rec: &mut Recorder,
        name: &str,
        x: &Tensor,
        act: Option<Activation>,
        residual: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (w, b) = self.convs.get(name).ok_or_else(|| Error::Model {
            source_name: "model.safetensors".into(),
            message: format!("no convolution `{name}`"),
        })?;
        let conv = Conv2d {
            stride: [1, 1],
            padding: Padding::Same,
            groups: 1,
        };
        let epilogue = ConvEpilogue {
            bias: Some(b),
            activation: act,
            residual,
        };
        conv2d(rec, x, w, &conv, epilogue)
    }

    /// The network on `x [1, H, W, 3]` (values 0..255): `[1, H·scale, W·scale, 3]`, values about 0..255.
    pub fn forward(&self, rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
        let relu = Some(Activation::Relu);
        let f_m1 = self.conv(rec, "F_m1", x, None, None)?;
        let mut f = self.conv(rec, "F_0", &f_m1, None, None)?;
        let mut block_outputs = Vec::new();
        for d in 1..=self.config.d {
            let mut parts = vec![f.clone()];
            for c in 1..=self.config.c {
                let input = if parts.len() == 1 {
                    parts[0].clone()
                } else {
                    concat_channels(rec, &parts.iter().collect::<Vec<_>>())?
                };
                parts.push(self.conv(rec, &format!("F_{d}_{c}"), &input, relu, None)?);
            }
            let dense = concat_channels(rec, &parts.iter().collect::<Vec<_>>())?;
            f = self.conv(rec, &format!("LFF_{d}"), &dense, None, Some(&f))?;
            block_outputs.push(f.clone());
        }
        let all = concat_channels(rec, &block_outputs.iter().collect::<Vec<_>>())?;
        let g = self.conv(rec, "GFF_1", &all, None, None)?;
        let g = self.conv(rec, "GFF_2", &g, None, Some(&f_m1))?;
        let u = self.conv(rec, "UPN1", &g, relu, None)?;
        let u = self.conv(rec, "UPN2", &u, relu, None)?;
        let u = self.conv(rec, "UPN3", &u, None, None)?;
        let u = upsample_nearest(rec, &u, [self.config.scale; 2])?;
        self.conv(rec, "SR", &u, None, None)
    }

    /// Upscales `image` into an `i32` tensor `[H·scale, row_stride]` of RGBA8 pixels on the GPU (row
    /// stride rounded up to 64 pixels, 256 bytes, as texture copies need): tile by tile, one submit each.
    pub fn upscale_to_gpu(&self, image: &GpuImage) -> Result<(Tensor, [u32; 2])> {
        let s = self.config.scale;
        let (w, h) = (image.width() as usize, image.height() as usize);
        let (out_w, out_h) = (w * s, h * s);
        let stride = out_w.next_multiple_of(64);
        let out = Tensor::empty(&self.gpu, &[out_h, stride], DType::I32)?;
        let t = self.tile;
        for ty in (0..h).step_by(t) {
            for tx in (0..w).step_by(t) {
                let (tw, th) = (t.min(w - tx), t.min(h - ty));
                // The tile with its context, clipped to the image.
                let x0 = tx.saturating_sub(CONTEXT);
                let y0 = ty.saturating_sub(CONTEXT);
                let x1 = (tx + tw + CONTEXT).min(w);
                let y1 = (ty + th + CONTEXT).min(h);
                let mut rec = self.gpu.recorder();
                let pre = Preprocess {
                    size: [(y1 - y0) as u32, (x1 - x0) as u32],
                    crop: Crop::Rect([x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32]),
                    mean: [0.0; 3],
                    std: [1.0 / 255.0; 3],
                    interpolation: Interpolation::Bilinear,
                    antialias: false,
                    bgr: false,
                };
                let input = image_to_tensor(&mut rec, image, &pre, DType::F32)?;
                let y = self.forward(&mut rec, &input)?;
                let src = [(tx - x0) * s, (ty - y0) * s, tw * s, th * s];
                to_rgba8_into(&mut rec, &y, src, &out, [tx * s, ty * s])?;
                rec.submit();
            }
        }
        Ok((out, [out_w as u32, out_h as u32]))
    }

    /// Upscales `image` and reads the pixels back.
    pub async fn upscale(&self, image: &GpuImage) -> Result<UpscaledImage> {
        let (out, [width, height]) = self.upscale_to_gpu(image)?;
        let rec = self.gpu.recorder();
        let bytes = rec.submit_and_read(&out).bytes().await?;
        let stride = out.shape()[1] * 4;
        let row = width as usize * 4;
        let rgba = bytes
            .chunks_exact(stride)
            .flat_map(|r| &r[..row])
            .copied()
            .collect();
        Ok(UpscaledImage {
            width,
            height,
            rgba,
        })
    }
}
