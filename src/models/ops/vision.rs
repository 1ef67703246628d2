//! [`VisionOps`]: what the image models ask of a backend beyond [`Ops`]: convolutions (with their
//! batch norms folded in at load, or with their own bias), global average pooling, channel
//! concatenation and nearest-neighbour upsampling. The GPU records its kernels
//! (`kernels::conv`, `kernels::image`); the CPU computes them (`cpu::image`).

use super::Ops;
use crate::cpu::image::{HostBatchNorm, HostConv, global_avg_pool as host_pool};
use crate::cpu::{Cpu, HostTensor, HostWeights};
use crate::error::{Error, Result};
use crate::kernels::activation::Activation;
use crate::kernels::conv::{Conv2d, ConvEpilogue, conv2d};
use crate::kernels::image::{
    BatchNorm, concat_channels, fold_batchnorm, global_avg_pool, upsample_nearest,
};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

/// A convolution `conv_name` followed by the batch norm `bn_name` (PyTorch names: `.weight`,
/// `.bias`, `.running_mean`, `.running_var`).
pub struct ConvBnSpec<'a> {
    pub conv_name: &'a str,
    pub bn_name: &'a str,
    pub eps: f32,
    pub conv: Conv2d,
    pub act: Option<Activation>,
}

/// A backend's convolution operations, as the image models use them.
pub trait VisionOps: Ops {
    /// A convolution with its batch norm folded in, and its activation.
    type Conv;

    /// Loads and folds a convolution and its batch norm (f32 weights).
    fn conv_bn(&mut self, w: &Self::Weights, spec: &ConvBnSpec<'_>) -> Result<Self::Conv>;
    /// PyTorch's weight shape `[out, in / groups, kh, kw]`.
    fn conv_shape(c: &Self::Conv) -> [usize; 4];
    /// `act(conv(x) + bias) (+ residual)` for NHWC `x`.
    fn conv(
        &mut self,
        x: &Self::Tensor,
        c: &Self::Conv,
        residual: Option<&Self::Tensor>,
    ) -> Result<Self::Tensor>;
    /// `[n, h, w, c]` → `[n, c]`.
    fn global_avg_pool(&mut self, x: &Self::Tensor) -> Result<Self::Tensor>;
    /// A convolution with its own bias and no batch norm: `{name}.weight` (`[out, in / groups, kh,
    /// kw]`, f32) and `{name}.bias`, then `act`.
    fn conv_bias(
        &mut self,
        w: &Self::Weights,
        name: &str,
        conv: Conv2d,
        act: Option<Activation>,
    ) -> Result<Self::Conv>;
    /// Concatenation along the channels (the last axis).
    fn concat_channels(&mut self, xs: &[&Self::Tensor]) -> Result<Self::Tensor>;
    /// Nearest-neighbour upsampling of NHWC `x` by `[vertical, horizontal]` factors.
    fn upsample_nearest(&mut self, x: &Self::Tensor, factor: [usize; 2]) -> Result<Self::Tensor>;
}

fn f32_only(name: &str) -> Error {
    Error::Model {
        source_name: "model.safetensors".into(),
        message: format!("{name}: the image models take f32 weights"),
    }
}

/// A convolution on the GPU: the folded weight and bias, the geometry and the activation.
pub struct GpuConv {
    weight: Tensor,
    bias: Tensor,
    conv: Conv2d,
    act: Option<Activation>,
}

impl VisionOps for Recorder {
    type Conv = GpuConv;

    fn conv_bn(&mut self, w: &crate::bridge::Weights, spec: &ConvBnSpec<'_>) -> Result<GpuConv> {
        let get = |suffix: &str| w.get(&format!("{}.{suffix}", spec.bn_name));
        let weight = w.get(&format!("{}.weight", spec.conv_name))?;
        if weight.dtype() != DType::F32 {
            return Err(f32_only(spec.conv_name));
        }
        let bn = BatchNorm {
            gamma: get("weight")?,
            beta: get("bias")?,
            mean: get("running_mean")?,
            var: get("running_var")?,
            eps: spec.eps,
        };
        let (weight, bias) = fold_batchnorm(self, weight, None, &bn)?;
        Ok(GpuConv {
            weight,
            bias,
            conv: spec.conv,
            act: spec.act,
        })
    }
    fn conv_shape(c: &GpuConv) -> [usize; 4] {
        let s = c.weight.shape();
        [s[0], s[1], s[2], s[3]]
    }
    fn conv(&mut self, x: &Tensor, c: &GpuConv, residual: Option<&Tensor>) -> Result<Tensor> {
        let epilogue = ConvEpilogue {
            bias: Some(&c.bias),
            activation: c.act,
            residual,
        };
        conv2d(self, x, &c.weight, &c.conv, epilogue)
    }
    fn global_avg_pool(&mut self, x: &Tensor) -> Result<Tensor> {
        global_avg_pool(self, x)
    }
    fn conv_bias(
        &mut self,
        w: &crate::bridge::Weights,
        name: &str,
        conv: Conv2d,
        act: Option<Activation>,
    ) -> Result<GpuConv> {
        let weight = w.get(&format!("{name}.weight"))?.clone();
        let bias = w.get(&format!("{name}.bias"))?.clone();
        if weight.dtype() != DType::F32 || bias.dtype() != DType::F32 {
            return Err(f32_only(name));
        }
        if weight.shape().len() != 4 || bias.shape() != [weight.shape()[0]] {
            return Err(Error::Model {
                source_name: "model.safetensors".into(),
                message: format!(
                    "{name}: a convolution weight is [out, in / groups, kh, kw] with a bias [out], \
                     got {:?} and {:?}",
                    weight.shape(),
                    bias.shape()
                ),
            });
        }
        Ok(GpuConv {
            weight,
            bias,
            conv,
            act,
        })
    }
    fn concat_channels(&mut self, xs: &[&Tensor]) -> Result<Tensor> {
        concat_channels(self, xs)
    }
    fn upsample_nearest(&mut self, x: &Tensor, factor: [usize; 2]) -> Result<Tensor> {
        upsample_nearest(self, x, factor)
    }
}

impl VisionOps for Cpu {
    type Conv = HostConv;

    fn conv_bn(&mut self, w: &HostWeights, spec: &ConvBnSpec<'_>) -> Result<HostConv> {
        let get = |suffix: &str| -> Result<&[f32]> {
            let name = format!("{}.{suffix}", spec.bn_name);
            w.get(&name)?.f32s("conv_bn").map_err(|_| f32_only(&name))
        };
        let weight = w.get(&format!("{}.weight", spec.conv_name))?;
        if weight.dtype() != DType::F32 {
            return Err(f32_only(spec.conv_name));
        }
        let bn = HostBatchNorm {
            gamma: get("weight")?,
            beta: get("bias")?,
            mean: get("running_mean")?,
            var: get("running_var")?,
            eps: spec.eps,
        };
        HostConv::fold(weight, &bn, spec.conv, spec.act)
    }
    fn conv_shape(c: &HostConv) -> [usize; 4] {
        c.shape()
    }
    fn conv(
        &mut self,
        x: &HostTensor,
        c: &HostConv,
        residual: Option<&HostTensor>,
    ) -> Result<HostTensor> {
        c.forward(x, residual)
    }
    fn global_avg_pool(&mut self, x: &HostTensor) -> Result<HostTensor> {
        host_pool(x)
    }
    fn conv_bias(
        &mut self,
        w: &HostWeights,
        name: &str,
        conv: Conv2d,
        act: Option<Activation>,
    ) -> Result<HostConv> {
        let weight = w.get(&format!("{name}.weight"))?;
        let bias_name = format!("{name}.bias");
        let bias = w.get(&bias_name)?.f32s("conv_bias");
        if weight.dtype() != DType::F32 || bias.is_err() {
            return Err(f32_only(name));
        }
        HostConv::new(weight, bias?, conv, act)
    }
    fn concat_channels(&mut self, xs: &[&HostTensor]) -> Result<HostTensor> {
        crate::cpu::upscale::concat_channels(xs)
    }
    fn upsample_nearest(&mut self, x: &HostTensor, factor: [usize; 2]) -> Result<HostTensor> {
        crate::cpu::upscale::upsample_nearest(x, factor)
    }
}
