//! Next-token choice on the GPU, `shaders/sample.wgsl`: argmax, and seeded temperature / top-k /
//! top-p sampling. Decoding then reads back one i32 a row.

use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::{check_dtypes, grid_1d, to_u32};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

const SHADER: &str = include_str!("../../shaders/sample.wgsl");

/// How to choose the next token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// ≤ 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens (0: all).
    pub top_k: u32,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p` (≥ 1: all).
    pub top_p: f32,
    /// With the step number, fixes the draw: the same seed and step give the same token.
    pub seed: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    vocab: u32,
    top_k: u32,
    seed: u32,
    temperature: f32,
    top_p: f32,
    step: u32,
    _pad: u32,
}

/// Index of the largest logit in each row of `logits [.., vocab]` (the first on ties): i32 `[..]`.
pub fn argmax(rec: &mut Recorder, logits: &Tensor) -> Result<Tensor> {
    run(rec, logits, &Sampling::default(), 0, "argmax")
}

/// A token drawn from each row of `logits [.., vocab]` as `sampling` says; `step` (the position being
/// generated) varies the draw from one token to the next. i32 `[..]`.
pub fn sample(
    rec: &mut Recorder,
    logits: &Tensor,
    sampling: &Sampling,
    step: u32,
) -> Result<Tensor> {
    run(rec, logits, sampling, step, "sample")
}

fn run(
    rec: &mut Recorder,
    logits: &Tensor,
    s: &Sampling,
    step: u32,
    entry: &'static str,
) -> Result<Tensor> {
    const OP: &str = "sample";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[logits])?;
    let Some((&vocab, lead)) = logits.shape().split_last() else {
        return Err(Error::shape(OP, "logits must have a vocabulary axis"));
    };
    if vocab == 0 || logits.offset() != 0 {
        return Err(Error::shape(
            OP,
            format!(
                "logits {:?} must be a whole tensor with a non-empty vocabulary",
                logits.shape()
            ),
        ));
    }
    if s.top_p.is_nan() || s.top_p <= 0.0 || s.temperature.is_nan() {
        return Err(Error::shape(
            OP,
            format!("top_p must be in (0, 1] and temperature a number, got {s:?}"),
        ));
    }
    let rows = lead.iter().product::<usize>();
    let out = Tensor::empty(&gpu, lead, DType::I32)?;
    if rows == 0 {
        return Ok(out);
    }
    let params = Params {
        rows: to_u32(OP, "rows", rows)?,
        vocab: to_u32(OP, "vocab", vocab)?,
        top_k: s.top_k,
        seed: s.seed,
        temperature: s.temperature,
        top_p: s.top_p,
        step,
        _pad: 0,
    };
    let pipeline = gpu.pipeline(&KernelSource {
        name: "sample",
        body: SHADER,
        dtype,
        entry,
        constants: &[],
    });
    let grid = grid_1d(&gpu, OP, params.rows)?;
    rec.dispatch(&pipeline, &[logits.buffer(), out.buffer()], &params, grid);
    Ok(out)
}
