//! LayerNorm, RMSNorm and L2 normalisation over the last axis, `shaders/norm.wgsl`.

use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::{check_dtypes, grid_1d, to_u32};
use crate::recorder::Recorder;
use crate::tensor::Tensor;

const SHADER: &str = include_str!("../../shaders/norm.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    eps: f32,
    x_offset: u32,
    w_offset: u32,
    b_offset: u32,
    out_offset: u32,
    _pad: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Layer = 0,
    Rms = 1,
    L2 = 2,
}

/// `(x - mean) / sqrt(var + eps) · weight + bias` over the last axis (BERT's LayerNorm; variance
/// without Bessel's correction, as PyTorch).
pub fn layer_norm(
    rec: &mut Recorder,
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f32,
) -> Result<Tensor> {
    run(rec, "layer_norm", Mode::Layer, x, Some((weight, bias)), eps)
}

/// `x / sqrt(mean(x²) + eps) · weight` over the last axis (LLaMA's RMSNorm).
pub fn rms_norm(rec: &mut Recorder, x: &Tensor, weight: &Tensor, eps: f32) -> Result<Tensor> {
    run(rec, "rms_norm", Mode::Rms, x, Some((weight, weight)), eps)
}

/// `x / max(‖x‖₂, eps)` over the last axis (`torch.nn.functional.normalize`, eps 1e-12 there).
pub fn l2_normalize(rec: &mut Recorder, x: &Tensor, eps: f32) -> Result<Tensor> {
    run(rec, "l2_normalize", Mode::L2, x, None, eps)
}

fn run(
    rec: &mut Recorder,
    op: &'static str,
    mode: Mode,
    x: &Tensor,
    affine: Option<(&Tensor, &Tensor)>,
    eps: f32,
) -> Result<Tensor> {
    let gpu = rec.gpu().clone();
    let (w, b) = affine.unwrap_or((x, x)); // placeholders for L2: bound, never read
    let dtype = check_dtypes(op, &gpu, &[x, w, b])?;
    let Some(&cols) = x.shape().last() else {
        return Err(Error::shape(op, "a scalar has no last axis to normalise"));
    };
    if affine.is_some() && (w.shape() != [cols] || b.shape() != [cols]) {
        return Err(Error::shape(
            op,
            format!(
                "weight {:?} and bias {:?} must both be [{cols}] for x {:?}",
                w.shape(),
                b.shape(),
                x.shape()
            ),
        ));
    }
    let out = Tensor::empty(&gpu, x.shape(), dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let rows = to_u32(op, "rows", x.numel() / cols)?;
    let params = Params {
        rows,
        cols: to_u32(op, "columns", cols)?,
        eps,
        x_offset: x.offset_elements(),
        w_offset: w.offset_elements(),
        b_offset: b.offset_elements(),
        out_offset: out.offset_elements(),
        _pad: 0,
    };
    let pipeline = gpu.pipeline(&KernelSource {
        name: "norm",
        body: SHADER,
        dtype,
        entry: "main",
        constants: &[("MODE", f64::from(mode as u8))],
    });
    let grid = grid_1d(&gpu, op, rows)?;
    rec.dispatch(
        &pipeline,
        &[x.buffer(), w.buffer(), b.buffer(), out.buffer()],
        &params,
        grid,
    );
    Ok(out)
}
