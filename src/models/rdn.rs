//! [`Upscaler`]: super-resolution with the RDN networks of @upscalerjs/esrgan-slim (×2, ×3, ×4, ×8),
//! converted by `scripts/convert_esrgan_slim.py`, written once over [`VisionOps`]. On the GPU the
//! image goes in as a texture and comes out as RGBA8 pixels on the GPU (drawn into a canvas from
//! there in the browser, or read back); on the CPU backend pixels go in and come out of host memory.
//!
//! Large images are split into tiles whose inputs overlap by more than the network's receptive field
//! (10 input pixels), so the tiled result is the same as the untiled one; each tile is one submit.

use serde::Deserialize;

use std::collections::HashMap;

use crate::bridge::Weights;
use crate::cpu::{Cpu, HostWeights};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::activation::Activation;
use crate::kernels::conv::{Conv2d, Padding};
use crate::kernels::image::to_rgba8_into;
use crate::kernels::preprocess::{Crop, GpuImage, Interpolation, Preprocess, image_to_tensor};
use crate::models::ops::VisionOps;
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

impl Config {
    /// Reads and checks `config.json`.
    fn from_json(config_json: &[u8]) -> Result<Config> {
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
        Ok(config)
    }
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

/// The RDN network over a backend's operations ([`VisionOps`]): written once for the GPU and the CPU.
struct Rdn<O: VisionOps> {
    d: usize,
    c: usize,
    scale: usize,
    convs: HashMap<String, O::Conv>,
}

impl<O: VisionOps> Rdn<O> {
    fn load(o: &mut O, weights: &O::Weights, config: &Config) -> Result<Rdn<O>> {
        let relu = Some(Activation::Relu);
        let mut names = vec![
            ("F_m1".to_string(), None),
            ("F_0".into(), None),
            ("GFF_1".into(), None),
            ("GFF_2".into(), None),
        ];
        for d in 1..=config.d {
            names.extend((1..=config.c).map(|c| (format!("F_{d}_{c}"), relu)));
            names.push((format!("LFF_{d}"), None));
        }
        names.extend(
            [("UPN1", relu), ("UPN2", relu), ("UPN3", None), ("SR", None)]
                .map(|(n, a)| (n.to_string(), a)),
        );
        let conv = Conv2d {
            stride: [1, 1],
            padding: Padding::Same,
            groups: 1,
        };
        let mut convs = HashMap::new();
        for (name, act) in names {
            let c = o.conv_bias(weights, &name, conv, act)?;
            let [_, _, kh, kw] = O::conv_shape(&c);
            if kh % 2 == 0 || kh != kw {
                return Err(Error::Model {
                    source_name: "model.safetensors".into(),
                    message: format!(
                        "{name}.weight {:?} must be an f32 [out, in, k, k] with k odd",
                        O::conv_shape(&c)
                    ),
                });
            }
            convs.insert(name, c);
        }
        Ok(Rdn {
            d: config.d,
            c: config.c,
            scale: config.scale,
            convs,
        })
    }

    fn conv(
        &self,
        o: &mut O,
        name: &str,
        x: &O::Tensor,
        residual: Option<&O::Tensor>,
    ) -> Result<O::Tensor> {
        let c = self.convs.get(name).ok_or_else(|| Error::Model {
            source_name: "model.safetensors".into(),
            message: format!("no convolution `{name}`"),
        })?;
        o.conv(x, c, residual)
    }

    /// The network on `x [1, H, W, 3]` (values 0..255): `[1, H·scale, W·scale, 3]`, values about 0..255.
    fn forward(&self, o: &mut O, x: &O::Tensor) -> Result<O::Tensor> {
        let f_m1 = self.conv(o, "F_m1", x, None)?;
        let mut f = self.conv(o, "F_0", &f_m1, None)?;
        let mut block_outputs = Vec::new();
        for d in 1..=self.d {
            let mut parts = vec![f.clone()];
            for c in 1..=self.c {
                let input = if parts.len() == 1 {
                    parts[0].clone()
                } else {
                    o.concat_channels(&parts.iter().collect::<Vec<_>>())?
                };
                parts.push(self.conv(o, &format!("F_{d}_{c}"), &input, None)?);
            }
            let dense = o.concat_channels(&parts.iter().collect::<Vec<_>>())?;
            f = self.conv(o, &format!("LFF_{d}"), &dense, Some(&f))?;
            block_outputs.push(f.clone());
        }
        let all = o.concat_channels(&block_outputs.iter().collect::<Vec<_>>())?;
        let g = self.conv(o, "GFF_1", &all, None)?;
        let g = self.conv(o, "GFF_2", &g, Some(&f_m1))?;
        let u = self.conv(o, "UPN1", &g, None)?;
        let u = self.conv(o, "UPN2", &u, None)?;
        let u = self.conv(o, "UPN3", &u, None)?;
        let u = o.upsample_nearest(&u, [self.scale; 2])?;
        self.conv(o, "SR", &u, None)
    }
}

enum Engine {
    Gpu { gpu: Gpu, net: Rdn<Recorder> },
    Cpu { cpu: Cpu, net: Rdn<Cpu> },
}

/// An RDN super-resolution network, on the GPU or the CPU.
pub struct Upscaler {
    engine: Engine,
    config: Config,
    tile: usize,
}

impl Upscaler {
    /// Builds the upscaler from loaded weights (f32) and `config.json`.
    pub fn new(gpu: &Gpu, weights: &Weights, config_json: &[u8]) -> Result<Upscaler> {
        let config = Config::from_json(config_json)?;
        let mut rec = gpu.recorder();
        let net = Rdn::load(&mut rec, weights, &config)?;
        // One submit a tile: on a CPU adapter (SwiftShader, llvmpipe) a 256² tile is tens of seconds
        // of work in one submit, long enough for the browser to give up on the device.
        let tile = if gpu.capabilities().cpu_kernels {
            64
        } else {
            256
        };
        Ok(Upscaler {
            engine: Engine::Gpu {
                gpu: gpu.clone(),
                net,
            },
            config,
            tile,
        })
    }

    /// Builds the upscaler on the CPU backend from weights in host memory (f32). Tiles default to
    /// 128 input pixels (a 128² tile's activations take about 20 MB of host memory at a time).
    pub fn new_cpu(cpu: &Cpu, weights: &HostWeights, config_json: &[u8]) -> Result<Upscaler> {
        let config = Config::from_json(config_json)?;
        let mut c = cpu.clone();
        let net = Rdn::load(&mut c, weights, &config)?;
        Ok(Upscaler {
            engine: Engine::Cpu {
                cpu: cpu.clone(),
                net,
            },
            config,
            tile: 128,
        })
    }

    /// Loads `model.safetensors` and `config.json` from a folder.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(gpu: &Gpu, dir: &std::path::Path) -> Result<Upscaler> {
        let (config, weights) = crate::models::read_folder(gpu, dir)?;
        Upscaler::new(gpu, &weights, &config)
    }

    /// [`Upscaler::from_dir`] on the CPU backend (the weights read into host memory).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir_cpu(cpu: &Cpu, dir: &std::path::Path) -> Result<Upscaler> {
        let config = std::fs::read(dir.join("config.json"))
            .map_err(|e| Error::Input(format!("{}: {e}", dir.join("config.json").display())))?;
        let weights = cpu.load(&dir.join("model.safetensors"))?;
        Upscaler::new_cpu(cpu, &weights, &config)
    }

    /// `"gpu"` or `"cpu"`: where the network runs.
    pub fn backend(&self) -> &'static str {
        match self.engine {
            Engine::Gpu { .. } => "gpu",
            Engine::Cpu { .. } => "cpu",
        }
    }

    /// Tiles of at most `tile × tile` input pixels (plus context): smaller tiles bound memory
    /// (a 256² tile needs about 70 MB) and the length of one submit, larger ones waste less work on the
    /// overlaps. At least 16. Default: 256 on GPUs, 64 on CPU adapters, 128 on the CPU backend.
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

    fn not_on_gpu(what: &str) -> Error {
        Error::Input(format!(
            "Upscaler::{what} takes GPU tensors and textures; this upscaler runs on the CPU backend \
             (use upscale_rgba)"
        ))
    }

    /// The network on `x [1, H, W, 3]` (values 0..255): `[1, H·scale, W·scale, 3]`, values about
    /// 0..255, recorded into `rec` (GPU upscalers only).
    pub fn forward(&self, rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
        match &self.engine {
            Engine::Gpu { net, .. } => net.forward(rec, x),
            Engine::Cpu { .. } => Err(Self::not_on_gpu("forward")),
        }
    }

    /// The tiles of a `w × h` image: `(tile, with_context)`, each `[x, y, width, height]` in input
    /// pixels; the context (clipped to the image) is what the tile's output needs around it.
    fn tiles(&self, w: usize, h: usize) -> Vec<([usize; 4], [usize; 4])> {
        let t = self.tile;
        let mut out = Vec::new();
        for ty in (0..h).step_by(t) {
            for tx in (0..w).step_by(t) {
                let (tw, th) = (t.min(w - tx), t.min(h - ty));
                let x0 = tx.saturating_sub(CONTEXT);
                let y0 = ty.saturating_sub(CONTEXT);
                let x1 = (tx + tw + CONTEXT).min(w);
                let y1 = (ty + th + CONTEXT).min(h);
                out.push(([tx, ty, tw, th], [x0, y0, x1 - x0, y1 - y0]));
            }
        }
        out
    }

    /// How the pixels `ctx = [x, y, width, height]` become the network's input: cropped, not
    /// resized, on 0..255.
    fn input_of(ctx: [usize; 4]) -> Preprocess {
        let [x0, y0, cw, ch] = ctx;
        Preprocess {
            size: [ch as u32, cw as u32],
            crop: Crop::Rect([x0 as u32, y0 as u32, cw as u32, ch as u32]),
            mean: [0.0; 3],
            std: [1.0 / 255.0; 3],
            interpolation: Interpolation::Bilinear,
            antialias: false,
            bgr: false,
        }
    }

    /// Upscales an RGBA8 image (`width × height × 4` bytes, rows top to bottom) on either backend:
    /// on the GPU it is uploaded as a texture and goes through [`Upscaler::upscale`]; on the CPU each
    /// tile is cropped on the host (`cpu::image::preprocess`), run, and packed into the output.
    pub async fn upscale_rgba(
        &self,
        rgba: &[u8],
        width: u32,
        height: u32,
    ) -> Result<UpscaledImage> {
        let (cpu, net) = match &self.engine {
            Engine::Gpu { gpu, .. } => {
                let image = GpuImage::from_rgba8(gpu, rgba, width, height)?;
                return self.upscale(&image).await;
            }
            Engine::Cpu { cpu, net } => (cpu, net),
        };
        if width == 0 || height == 0 || rgba.len() != width as usize * height as usize * 4 {
            return Err(Error::shape(
                "Upscaler::upscale_rgba",
                format!(
                    "{} bytes for a {width}×{height} RGBA image (want width·height·4, both ≥ 1)",
                    rgba.len()
                ),
            ));
        }
        let s = self.config.scale;
        let (w, h) = (width as usize, height as usize);
        let (out_w, out_h) = (w * s, h * s);
        let mut out = vec![0u8; out_w * out_h * 4];
        let mut c = cpu.clone();
        for (tile, ctx) in self.tiles(w, h) {
            let x = crate::cpu::image::preprocess(rgba, width, height, &Self::input_of(ctx))?;
            let y = crate::cpu::par::with_team(|| net.forward(&mut c, &x))?;
            let [tx, ty, tw, th] = tile;
            let src = [(tx - ctx[0]) * s, (ty - ctx[1]) * s, tw * s, th * s];
            crate::cpu::upscale::to_rgba8_into(&y, src, &mut out, out_w, [tx * s, ty * s])?;
        }
        Ok(UpscaledImage {
            width: out_w as u32,
            height: out_h as u32,
            rgba: out,
        })
    }

    /// Upscales `image` into an `i32` tensor `[H·scale, row_stride]` of RGBA8 pixels on the GPU (row
    /// stride rounded up to 64 pixels, 256 bytes, as texture copies need): tile by tile, one submit each.
    pub fn upscale_to_gpu(&self, image: &GpuImage) -> Result<(Tensor, [u32; 2])> {
        let Engine::Gpu { gpu, net } = &self.engine else {
            return Err(Self::not_on_gpu("upscale_to_gpu"));
        };
        let s = self.config.scale;
        let (w, h) = (image.width() as usize, image.height() as usize);
        let (out_w, out_h) = (w * s, h * s);
        let stride = out_w.next_multiple_of(64);
        let out = Tensor::empty(gpu, &[out_h, stride], DType::I32)?;
        for (tile, ctx) in self.tiles(w, h) {
            let mut rec = gpu.recorder();
            let input = image_to_tensor(&mut rec, image, &Self::input_of(ctx), DType::F32)?;
            let y = net.forward(&mut rec, &input)?;
            let [tx, ty, tw, th] = tile;
            let src = [(tx - ctx[0]) * s, (ty - ctx[1]) * s, tw * s, th * s];
            to_rgba8_into(&mut rec, &y, src, &out, [tx * s, ty * s])?;
            rec.submit();
        }
        Ok((out, [out_w as u32, out_h as u32]))
    }

    /// Upscales `image` and reads the pixels back.
    pub async fn upscale(&self, image: &GpuImage) -> Result<UpscaledImage> {
        let (out, [width, height]) = self.upscale_to_gpu(image)?;
        let Engine::Gpu { gpu, .. } = &self.engine else {
            return Err(Self::not_on_gpu("upscale"));
        };
        let rec = gpu.recorder();
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
