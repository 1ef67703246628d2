//! GELU (erf form) and SiLU, `shaders/activation.wgsl`.

use crate::error::Result;
use crate::gpu::KernelSource;
use crate::kernels::{check_dtypes, grid_1d, to_u32};
use crate::recorder::Recorder;
use crate::tensor::Tensor;

const SHADER: &str = include_str!("../../shaders/activation.wgsl");

/// An element-wise activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `0.5·x·(1 + erf(x/√2))`, as BERT's `gelu` (not the tanh approximation).
    Gelu = 0,
    /// `x·sigmoid(x)`.
    Silu = 1,
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
        constants: &[("OP", f64::from(f as u8))],
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
