//! Element-wise activations (GELU in the erf form, SiLU/Swish, ReLU, ReLU6, sigmoid),
//! `shaders/activation.wgsl`. The same functions are fused into the epilogues of `matmul` and `conv`.

use crate::error::Result;
use crate::gpu::KernelSource;
use crate::kernels::{check_dtypes, grid_1d, to_u32};
use crate::recorder::Recorder;
use crate::tensor::Tensor;

const SHADER: &str = concat!(
    include_str!("../../shaders/activation_fns.wgsl"),
    include_str!("../../shaders/activation.wgsl")
);

/// An element-wise activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `0.5·x·(1 + erf(x/√2))`, as BERT's `gelu` (not the tanh approximation).
    Gelu = 0,
    /// `x·sigmoid(x)` (also called Swish).
    Silu = 1,
    /// `max(x, 0)`.
    Relu = 2,
    /// `min(max(x, 0), 6)`, as MobileNet and EfficientNet-Lite use.
    Relu6 = 3,
    /// `1 / (1 + e^-x)`.
    Sigmoid = 4,
}

impl Activation {
    /// The code the kernels' `ACT` override takes: 0 for none, else the variant's number + 1
    /// (`shaders/activation_fns.wgsl`).
    pub(crate) fn code(f: Option<Activation>) -> u32 {
        f.map_or(0, |f| f as u32 + 1)
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    x_offset: u32,
    out_offset: u32,
    _pad: u32,
}

/// `f(x)` element by element.
pub fn activation(rec: &mut Recorder, x: &Tensor, f: Activation) -> Result<Tensor> {
    const OP: &str = "activation";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[x])?;
    let out = Tensor::empty(&gpu, x.shape(), dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let len = to_u32(OP, "elements", x.numel())?;
    let params = Params {
        len,
        x_offset: x.offset_elements(),
        out_offset: out.offset_elements(),
        _pad: 0,
    };
    let pipeline = gpu.pipeline(&KernelSource {
        name: "activation",
        body: SHADER,
        dtype,
        entry: "main",
        constants: &[("ACT", f64::from(Activation::code(Some(f))))],
    });
    let grid = grid_1d(&gpu, OP, len.div_ceil(256))?;
    rec.dispatch(&pipeline, &[x.buffer(), out.buffer()], &params, grid);
    Ok(out)
}

/// GELU, erf form.
pub fn gelu(rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
    activation(rec, x, Activation::Gelu)
}

/// SiLU.
pub fn silu(rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
    activation(rec, x, Activation::Silu)
}

/// ReLU.
pub fn relu(rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
    activation(rec, x, Activation::Relu)
}
