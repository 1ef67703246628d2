//! [`Classifier`]: EfficientNet-Lite image classification (ImageNet, 1000 classes). The image is
//! preprocessed on the GPU (centre crop, bilinear resize, normalise: [`crate::kernels::preprocess`]),
//! the network runs in one submit with batch norms folded into the convolutions at load (on the GPU),
//! and only the logits (4 KB) are read back.
//!
//! Layout: NHWC activations, PyTorch-layout weights and names as in the efficientnet-lite-pytorch
//! package (`_conv_stem`, `_blocks.N._expand_conv`, `_bn0` ...); `config.json` as written by
//! `scripts/convert_efficientnet_lite.py`.

use std::collections::HashMap;

use serde::Deserialize;

use crate::bridge::Weights;
use crate::cpu::{Cpu, HostWeights};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::activation::Activation;
use crate::kernels::conv::{Conv2d, Padding};
use crate::kernels::preprocess::{Crop, GpuImage, Interpolation, Preprocess, image_to_tensor};
use crate::models::ops::{ConvBnSpec, VisionOps};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

/// `config.json` of a converted EfficientNet-Lite.
#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    pub architecture: String,
    pub image_size: u32,
    /// Block groups: `[repeats, kernel, stride, expand ratio, in channels, out channels]`.
    pub blocks: Vec<[usize; 6]>,
    pub stem_channels: usize,
    pub head_channels: usize,
    pub batch_norm_eps: f32,
    pub activation: String,
    /// Per-channel normalisation of 0..1 pixel values.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub num_classes: usize,
    #[serde(default)]
    pub id2label: HashMap<String, String>,
    /// The centred square kept before resizing, as a fraction of the shorter side (timm's `crop_pct`;
    /// TensorFlow's EfficientNet evaluation: 224 / 256 = 0.875, the default). 1 keeps the whole square.
    #[serde(default = "default_crop_pct")]
    pub crop_pct: f32,
    /// `bicubic` (the default, as the model was evaluated), `bilinear` or `nearest`.
    #[serde(default = "default_interpolation")]
    pub interpolation: String,
    /// `auto` (the default: on when the crop is more than twice the input size, where plain
    /// interpolation would skip pixels), `true` or `false` (torchvision's `antialias`).
    #[serde(default = "default_antialias")]
    pub antialias: serde_json::Value,
    /// `rgb` (the default) or `bgr`: the order the network takes its input channels in.
    #[serde(default = "default_channel_order")]
    pub channel_order: String,
}

fn default_channel_order() -> String {
    "rgb".into()
}

fn default_crop_pct() -> f32 {
    0.875
}

fn default_interpolation() -> String {
    "bicubic".into()
}

fn default_antialias() -> serde_json::Value {
    "auto".into()
}

impl Config {
    /// `interpolation` as the kernel's enum.
    pub fn interpolation_mode(&self) -> std::result::Result<Interpolation, String> {
        match self.interpolation.as_str() {
            "bicubic" => Ok(Interpolation::Bicubic),
            "bilinear" => Ok(Interpolation::Bilinear),
            "nearest" => Ok(Interpolation::Nearest),
            other => Err(format!(
                "interpolation `{other}`: bicubic, bilinear or nearest"
            )),
        }
    }

    pub fn from_json(source: &str, json: &[u8]) -> Result<Config> {
        let config: Config = serde_json::from_slice(json).map_err(|e| Error::Model {
            source_name: source.into(),
            message: format!("not an EfficientNet-Lite config: {e}"),
        })?;
        let bad = |m: String| Error::Model {
            source_name: source.into(),
            message: m,
        };
        if config.architecture != "efficientnet-lite" {
            return Err(bad(format!(
                "architecture `{}`: this loader reads `efficientnet-lite`",
                config.architecture
            )));
        }
        if config.activation != "relu6" {
            return Err(bad(format!(
                "activation `{}`: only relu6 is supported",
                config.activation
            )));
        }
        if !(config.crop_pct > 0.0 && config.crop_pct <= 1.0) {
            return Err(bad(format!(
                "crop_pct {} must be in (0, 1]",
                config.crop_pct
            )));
        }
        config.interpolation_mode().map_err(bad)?;
        if !matches!(config.channel_order.as_str(), "rgb" | "bgr") {
            return Err(bad(format!(
                "channel_order `{}`: rgb or bgr",
                config.channel_order
            )));
        }
        if !matches!(&config.antialias, serde_json::Value::Bool(_)) && config.antialias != "auto" {
            return Err(bad(format!(
                "antialias {}: true, false or \"auto\"",
                config.antialias
            )));
        }
        if config.image_size == 0 || config.image_size > 4096 || config.blocks.is_empty() {
            return Err(bad(
                "image_size must be 1..=4096 and blocks non-empty".into()
            ));
        }
        if config.blocks.iter().any(|b| {
            b[0] == 0
                || b[1] % 2 == 0
                || b[2] == 0
                || b[2] > 2
                || b[3] == 0
                || b[4] == 0
                || b[5] == 0
        }) {
            return Err(bad(
                "each block group needs repeats ≥ 1, an odd kernel, stride 1 or 2, expand ≥ 1 and channels ≥ 1"
                    .into(),
            ));
        }
        if config.std.contains(&0.0) || config.num_classes == 0 {
            return Err(bad("std must be non-zero and num_classes ≥ 1".into()));
        }
        Ok(config)
    }
}

/// One MBConv block: expansion (1×1), depthwise, projection (1×1), each a convolution with its batch
/// norm folded in; the input added to the output when the shapes allow.
struct Block<O: VisionOps> {
    expand: Option<O::Conv>,
    depthwise: O::Conv,
    project: O::Conv,
    skip: bool,
}

/// One predicted class.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub index: usize,
    pub label: String,
    /// Softmax probability.
    pub score: f32,
}

/// The result of [`Classifier::classify`].
#[derive(Clone, Debug)]
pub struct Classification {
    /// The `top_k` classes, most probable first.
    pub top: Vec<Prediction>,
    /// All logits, in class order.
    pub logits: Vec<f32>,
}

/// A "same"-padded convolution of this stride and group count.
fn same(stride: usize, groups: usize) -> Conv2d {
    Conv2d {
        stride: [stride, stride],
        padding: Padding::Same,
        groups,
    }
}

/// One MBConv block's row of `config.blocks` (after the first repeat: `c_in = c_out`, stride 1).
#[derive(Clone, Copy)]
struct BlockShape {
    kernel: usize,
    stride: usize,
    expand: usize,
    c_in: usize,
    c_out: usize,
}

/// The network, written once over [`VisionOps`]: on the GPU ([`Recorder`]: one submit, batch norms
/// folded on the GPU) and on the CPU ([`Cpu`]).
pub struct EfficientNet<O: VisionOps> {
    stem: O::Conv,
    blocks: Vec<Block<O>>,
    head: O::Conv,
    fc: O::Linear,
}

impl<O: VisionOps> EfficientNet<O> {
    /// Takes the network's tensors from `weights` (PyTorch names), folding every batch norm into its
    /// convolution through `o`.
    pub fn load(o: &mut O, weights: &O::Weights, config: &Config) -> Result<EfficientNet<O>> {
        let eps = config.batch_norm_eps;
        let relu6 = Some(Activation::Relu6);
        let spec = |conv_name: &'static str, bn_name: &'static str, conv, act| ConvBnSpec {
            conv_name,
            bn_name,
            eps,
            conv,
            act,
        };
        let stem = o.conv_bn(weights, &spec("_conv_stem", "_bn0", same(2, 1), relu6))?;
        let mut blocks = Vec::new();
        for &[repeats, kernel, stride, expand, c_in, c_out] in &config.blocks {
            for r in 0..repeats {
                let (c_in, stride) = if r == 0 { (c_in, stride) } else { (c_out, 1) };
                let shape = BlockShape {
                    kernel,
                    stride,
                    expand,
                    c_in,
                    c_out,
                };
                let index = blocks.len();
                blocks.push(Self::block(o, weights, index, shape, eps)?);
            }
        }
        let head = o.conv_bn(weights, &spec("_conv_head", "_bn1", same(1, 1), relu6))?;
        let fc = O::linear_of(
            weights,
            "_fc.weight",
            "_fc.bias",
            config.num_classes,
            config.head_channels,
        )?;
        Ok(EfficientNet {
            stem,
            blocks,
            head,
            fc,
        })
    }

    /// Block `index`'s convolutions (`_blocks.{index}.*`), each with its batch norm folded in.
    fn block(
        o: &mut O,
        weights: &O::Weights,
        index: usize,
        shape: BlockShape,
        eps: f32,
    ) -> Result<Block<O>> {
        let BlockShape {
            kernel,
            stride,
            expand,
            c_in,
            c_out,
        } = shape;
        let relu6 = Some(Activation::Relu6);
        let p = format!("_blocks.{index}");
        let hidden = c_in * expand;
        let mut conv = |conv: &str, bn: &str, c: Conv2d, act| {
            let (conv_name, bn_name) = (format!("{p}.{conv}"), format!("{p}.{bn}"));
            let spec = ConvBnSpec {
                conv_name: &conv_name,
                bn_name: &bn_name,
                eps,
                conv: c,
                act,
            };
            o.conv_bn(weights, &spec)
        };
        let expand_conv = if expand == 1 {
            None
        } else {
            Some(conv("_expand_conv", "_bn0", same(1, 1), relu6)?)
        };
        let depthwise = conv("_depthwise_conv", "_bn1", same(stride, hidden), relu6)?;
        let project = conv("_project_conv", "_bn2", same(1, 1), None)?;
        let shape = O::conv_shape(&depthwise);
        if shape != [hidden, 1, kernel, kernel] {
            return Err(Error::Model {
                source_name: "config.json".into(),
                message: format!(
                    "{p}._depthwise_conv.weight is {shape:?}, the config implies [{hidden}, 1, \
                     {kernel}, {kernel}]"
                ),
            });
        }
        Ok(Block {
            expand: expand_conv,
            depthwise,
            project,
            skip: stride == 1 && c_in == c_out,
        })
    }

    /// Logits `[N, classes]` for preprocessed images `x [N, size, size, 3]`.
    pub fn forward(&self, o: &mut O, x: &O::Tensor) -> Result<O::Tensor> {
        let mut h = o.conv(x, &self.stem, None)?;
        for b in &self.blocks {
            let mut y = match &b.expand {
                Some(e) => o.conv(&h, e, None)?,
                None => h.clone(),
            };
            y = o.conv(&y, &b.depthwise, None)?;
            y = o.conv(&y, &b.project, b.skip.then_some(&h))?;
            h = y;
        }
        let h = o.conv(&h, &self.head, None)?;
        let pooled = o.global_avg_pool(&h)?;
        o.linear(&pooled, &self.fc, None)
    }
}

/// Where a [`Classifier`]'s network runs.
enum Engine {
    Gpu {
        gpu: Gpu,
        net: EfficientNet<Recorder>,
    },
    Cpu {
        cpu: Cpu,
        net: EfficientNet<Cpu>,
    },
}

/// An EfficientNet-Lite classifier, on the GPU or the CPU.
pub struct Classifier {
    engine: Engine,
    config: Config,
    labels: Vec<String>,
}

impl Classifier {
    /// Builds the classifier from loaded weights (f32) and `config.json`, folding every batch norm into
    /// its convolution on the GPU (one submit). `weights` can be dropped afterwards.
    pub fn new(gpu: &Gpu, weights: &Weights, config_json: &[u8]) -> Result<Classifier> {
        let config = Config::from_json("config.json", config_json)?;
        let mut rec = gpu.recorder();
        let net = EfficientNet::load(&mut rec, weights, &config)?;
        rec.submit();
        Ok(Classifier::with_engine(
            Engine::Gpu {
                gpu: gpu.clone(),
                net,
            },
            config,
        ))
    }

    /// Builds the classifier on the CPU backend from weights in host memory (f32), batch norms
    /// folded on the host.
    pub fn new_cpu(cpu: &Cpu, weights: &HostWeights, config_json: &[u8]) -> Result<Classifier> {
        let config = Config::from_json("config.json", config_json)?;
        let mut c = cpu.clone();
        let net = EfficientNet::load(&mut c, weights, &config)?;
        Ok(Classifier::with_engine(
            Engine::Cpu {
                cpu: cpu.clone(),
                net,
            },
            config,
        ))
    }

    fn with_engine(engine: Engine, config: Config) -> Classifier {
        let labels = (0..config.num_classes)
            .map(|i| {
                config
                    .id2label
                    .get(&i.to_string())
                    .cloned()
                    .unwrap_or_else(|| format!("class {i}"))
            })
            .collect();
        Classifier {
            engine,
            config,
            labels,
        }
    }

    /// Loads `model.safetensors` and `config.json` from a folder.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(gpu: &Gpu, dir: &std::path::Path) -> Result<Classifier> {
        let (config, weights) = crate::models::read_folder(gpu, dir)?;
        Classifier::new(gpu, &weights, &config)
    }

    /// [`Classifier::from_dir`] on the CPU backend (the weights read into host memory).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir_cpu(cpu: &Cpu, dir: &std::path::Path) -> Result<Classifier> {
        let config = std::fs::read(dir.join("config.json"))
            .map_err(|e| Error::Input(format!("{}: {e}", dir.join("config.json").display())))?;
        let weights = cpu.load(&dir.join("model.safetensors"))?;
        Classifier::new_cpu(cpu, &weights, &config)
    }

    /// `"gpu"` or `"cpu"`: where the network runs.
    pub fn backend(&self) -> &'static str {
        match self.engine {
            Engine::Gpu { .. } => "gpu",
            Engine::Cpu { .. } => "cpu",
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Class names, in class order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// How a `width × height` image becomes the network's input, from `config.json`: the centred
    /// square of `crop_pct` of the shorter side, resized to `image_size` by `interpolation`
    /// (antialiased when `antialias` says so, or with `auto` when the square is more than twice the
    /// input size), then `(x − mean) / std`.
    pub fn preprocess(&self, width: u32, height: u32) -> Preprocess {
        let c = &self.config;
        let crop = Crop::CenterFraction(c.crop_pct);
        let side = crop.rect(width, height)[2];
        let antialias = match &c.antialias {
            serde_json::Value::Bool(b) => *b,
            _ => side > 2 * c.image_size,
        };
        Preprocess {
            size: [c.image_size; 2],
            crop,
            mean: c.mean,
            std: c.std,
            // Checked when the config was read.
            interpolation: c.interpolation_mode().unwrap_or_default(),
            antialias,
            bgr: c.channel_order == "bgr",
        }
    }

    /// Logits `[N, classes]` for preprocessed images `x [N, size, size, 3]`, recorded into `rec`
    /// (GPU classifiers only).
    pub fn forward(&self, rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
        match &self.engine {
            Engine::Gpu { net, .. } => net.forward(rec, x),
            Engine::Cpu { .. } => Err(Self::not_on_gpu("forward")),
        }
    }

    fn not_on_gpu(what: &str) -> Error {
        Error::Input(format!(
            "Classifier::{what} takes GPU tensors; this classifier runs on the CPU backend (use \
             classify_rgba)"
        ))
    }

    /// Classifies `image` (a texture on this classifier's GPU): the `top_k` classes with softmax
    /// scores, and all logits. GPU classifiers only; [`Classifier::classify_rgba`] takes pixels on
    /// either backend.
    pub async fn classify(&self, image: &GpuImage, top_k: usize) -> Result<Classification> {
        let Engine::Gpu { gpu, net } = &self.engine else {
            return Err(Self::not_on_gpu("classify"));
        };
        let mut rec = gpu.recorder();
        let pre = self.preprocess(image.width(), image.height());
        let x = image_to_tensor(&mut rec, image, &pre, DType::F32)?;
        let logits = net.forward(&mut rec, &x)?;
        let logits = rec.submit_and_read(&logits).bytes().await?;
        let logits: Vec<f32> = bytemuck::pod_collect_to_vec(&logits);
        Ok(self.result(logits, top_k))
    }

    /// Classifies an RGBA8 image (`width × height × 4` bytes, rows top to bottom) on either backend:
    /// on the GPU it is uploaded as a texture and goes through [`Classifier::classify`]; on the CPU it
    /// is preprocessed the same way on the host (`cpu::image::preprocess`).
    pub async fn classify_rgba(
        &self,
        rgba: &[u8],
        width: u32,
        height: u32,
        top_k: usize,
    ) -> Result<Classification> {
        match &self.engine {
            Engine::Gpu { gpu, .. } => {
                let image = GpuImage::from_rgba8(gpu, rgba, width, height)?;
                self.classify(&image, top_k).await
            }
            Engine::Cpu { cpu, net } => {
                let pre = self.preprocess(width, height);
                let x = crate::cpu::image::preprocess(rgba, width, height, &pre)?;
                let mut c = cpu.clone();
                let logits = crate::cpu::par::with_team(|| net.forward(&mut c, &x))?;
                Ok(self.result(logits.to_vec()?, top_k))
            }
        }
    }

    fn result(&self, logits: Vec<f32>, top_k: usize) -> Classification {
        Classification {
            top: top_k_softmax(&logits, top_k, &self.labels),
            logits,
        }
    }
}

/// The `k` most probable classes under softmax (computed in f64), most probable first.
pub fn top_k_softmax(logits: &[f32], k: usize, labels: &[String]) -> Vec<Prediction> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&v| f64::from(v - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|i| Prediction {
            index: i,
            label: labels
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("class {i}")),
            score: (exps[i] / sum) as f32,
        })
        .collect()
}
