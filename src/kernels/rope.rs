//! Rotary position embedding, `shaders/rope.wgsl`: Hugging Face's "rotate half" layout, or GGML's
//! interleaved pairs.

use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::{check_dtypes, grid_1d, to_u32};
use crate::recorder::Recorder;
use crate::tensor::Tensor;

/// The shaders' bindings by name (`@binding(N) var … name`; tests/params.rs checks each against the WGSL).
mod slot {
    pub const X: u32 = 0;
    pub const OUT: u32 = 1;
    pub const PARAMS: u32 = 2;
    pub const FREQ_FACTORS: u32 = 3;
}

const SHADER: &str = include_str!("../../shaders/rope.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    total_pairs: u32,
    seq: u32,
    heads: u32,
    head_dim: u32,
    pos0: u32,
    theta: f32,
    x_offset: u32,
    out_offset: u32,
    factor_offset: u32,
    _pad: [u32; 3],
}

/// Which elements of a head form the rotated pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// `(x[i], x[i + d/2])`: Hugging Face transformers.
    #[default]
    RotateHalf,
    /// `(x[2i], x[2i + 1])`: GGML (GGUF files of LLaMA-family models, whose query and key weights
    /// llama.cpp's converter permuted to match).
    Interleaved,
}

/// Rotates `x` of shape `[batch, seq, heads, head_dim]`; sequence index `s` is at position
/// `pos0 + s` (`pos0`: tokens already in the KV cache). `theta` is the config's `rope_theta`
/// (10 000 in LLaMA 2, 100 000 in SmolLM2, 500 000 in LLaMA 3).
pub fn rope(rec: &mut Recorder, x: &Tensor, pos0: usize, theta: f32) -> Result<Tensor> {
    rope_with(rec, x, None, pos0, theta, Layout::RotateHalf)
}

/// [`rope`] in either [`Layout`], written into `out` when given (a view of `x`'s shape, e.g. the
/// KV cache's next positions) rather than a new tensor.
pub fn rope_with(
    rec: &mut Recorder,
    x: &Tensor,
    out: Option<&Tensor>,
    pos0: usize,
    theta: f32,
    layout: Layout,
) -> Result<Tensor> {
    rope_scaled(rec, x, out, pos0, theta, layout, None)
}

/// [`rope_with`] with per-frequency factors (f32 `[head_dim / 2]`: pair i's frequency is divided by
/// `factors[i]`), as llama.cpp stores Llama 3's RoPE scaling (`rope_freqs.weight`).
pub fn rope_scaled(
    rec: &mut Recorder,
    x: &Tensor,
    out: Option<&Tensor>,
    pos0: usize,
    theta: f32,
    layout: Layout,
    factors: Option<&Tensor>,
) -> Result<Tensor> {
    const OP: &str = "rope";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[x])?;
    let &[batch, seq, heads, head_dim] = x.shape() else {
        return Err(Error::shape(
            OP,
            format!(
                "x must be [batch, seq, heads, head_dim], got {:?}",
                x.shape()
            ),
        ));
    };
    if head_dim % 2 != 0 {
        return Err(Error::shape(
            OP,
            format!("head_dim {head_dim} must be even"),
        ));
    }
    check_factors(OP, factors, head_dim)?;
    let out = match out {
        Some(o) if o.shape() != x.shape() || o.dtype() != dtype => {
            return Err(Error::shape(
                OP,
                format!(
                    "out {:?} {:?} must match x {:?} {dtype:?}",
                    o.shape(),
                    o.dtype(),
                    x.shape()
                ),
            ));
        }
        Some(o) => o.clone(),
        None => Tensor::empty(&gpu, x.shape(), dtype)?,
    };
    if out.numel() == 0 {
        return Ok(out);
    }
    let pairs = to_u32(OP, "pairs", batch * seq * heads * head_dim / 2)?;
    let params = Params {
        total_pairs: pairs,
        seq: seq as u32,
        heads: heads as u32,
        head_dim: head_dim as u32,
        pos0: to_u32(OP, "pos0", pos0)?,
        theta,
        x_offset: x.offset_elements(),
        out_offset: out.offset_elements(),
        factor_offset: factors.map_or(0, Tensor::offset_elements),
        _pad: [0; 3],
    };
    let pipeline = gpu.pipeline(&KernelSource {
        name: "rope",
        body: SHADER,
        dtype,
        entry: "main",
        constants: &[
            (
                "INTERLEAVED",
                f64::from(u8::from(layout == Layout::Interleaved)),
            ),
            ("HAS_FACTORS", f64::from(u8::from(factors.is_some()))),
        ],
    });
    let grid = grid_1d(&gpu, OP, pairs.div_ceil(256))?;
    // Without factors x stands in for them (bound, never read).
    let factors = factors.unwrap_or(x);
    let bindings = [
        (slot::X, x.buffer()),
        (slot::OUT, out.buffer()),
        (slot::FREQ_FACTORS, factors.buffer()),
    ];
    rec.dispatch_at(&pipeline, &bindings, slot::PARAMS, &params, grid);
    Ok(out)
}

/// Checks RoPE frequency factors: f32 `[head_dim / 2]`.
pub(crate) fn check_factors(
    op: &'static str,
    factors: Option<&Tensor>,
    head_dim: usize,
) -> Result<()> {
    match factors {
        Some(f) if f.dtype() != crate::tensor::DType::F32 || f.numel() != head_dim / 2 => {
            Err(Error::shape(
                op,
                format!(
                    "RoPE frequency factors must be f32 [{}] (head_dim / 2), got {:?} {:?}",
                    head_dim / 2,
                    f.dtype(),
                    f.shape()
                ),
            ))
        }
        _ => Ok(()),
    }
}
