//! Next-token choice on the GPU, `shaders/sample.wgsl`: argmax, and seeded temperature / top-k /
//! top-p sampling. Decoding then reads back one i32 a row.

use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::{check_dtypes, grid_1d, to_u32};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

/// The shaders' bindings by name (`@binding(N) var … name`; tests/params.rs checks each against the WGSL).
mod slot {
    pub const LOGITS: u32 = 0;
    /// The chosen ids (the output).
    pub const IDS: u32 = 1;
    pub const PARAMS: u32 = 2;
    pub const SEEN: u32 = 3;
    pub const ALLOWED: u32 = 4;
    /// `argmax_parts`' (value, index) pairs.
    pub const PARTS: u32 = 5;
}

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
    penalty: f32,
}

/// transformers' repetition penalty, applied on the GPU before the choice.
#[derive(Clone, Copy)]
pub struct Penalty<'a> {
    /// i32 `[rows, ceil(vocab / 32)]`: a bitset a row of the tokens to penalize (the prompt's, see
    /// [`seen_tokens`]); the kernel marks each token it chooses.
    pub seen: &'a Tensor,
    /// > 1 discourages repeats (transformers' `repetition_penalty`; 1.0 is off).
    pub repetition_penalty: f32,
}

/// The bitset of [`Penalty::seen`] or of a [`sample_masked`] mask for one row with `ids` marked, uploaded.
pub fn seen_tokens(gpu: &crate::Gpu, ids: &[u32], vocab: usize) -> Result<Tensor> {
    let mut words = vec![0u32; vocab.div_ceil(32)];
    for &id in ids {
        if let Some(w) = words.get_mut(id as usize / 32) {
            *w |= 1 << (id % 32);
        }
    }
    Tensor::from_bytes(
        gpu,
        bytemuck::cast_slice(&words),
        &[1, words.len()],
        DType::I32,
    )
}

/// Index of the largest logit in each row of `logits [.., vocab]` (the first on ties): i32 `[..]`.
pub fn argmax(rec: &mut Recorder, logits: &Tensor) -> Result<Tensor> {
    run(rec, logits, &Sampling::default(), 0, "argmax", None, None)
}

/// The first maximum of (value, index) pairs, i32 `[n, 2]` (an f32's bits, then its index; -1: none)
/// in index order, as [`crate::kernels::quant::gemv_norm_argmax`] writes them: the argmax of the
/// values they were taken from, i32 `[1]`.
pub fn argmax_parts(rec: &mut Recorder, parts: &Tensor) -> Result<Tensor> {
    let gpu = rec.gpu().clone();
    let &[n, 2] = parts.shape() else {
        return Err(Error::shape(
            OP,
            format!("parts {:?} must be [n, 2]", parts.shape()),
        ));
    };
    if n == 0 || parts.dtype() != DType::I32 || parts.offset() != 0 {
        return Err(Error::shape(
            OP,
            format!(
                "parts must be a whole, non-empty i32 tensor, got {:?} {:?}",
                parts.shape(),
                parts.dtype()
            ),
        ));
    }
    let params = Params {
        rows: 1,
        vocab: to_u32(OP, "parts", n)?,
        top_k: 0,
        seed: 0,
        temperature: 0.0,
        top_p: 1.0,
        step: 0,
        penalty: 1.0,
    };
    let pipeline = gpu.pipeline(&KernelSource {
        name: "sample",
        body: SHADER,
        dtype: DType::F32,
        entry: "argmax_parts",
        constants: &[],
    });
    let out = Tensor::empty(&gpu, &[1], DType::I32)?;
    let bindings = [(slot::IDS, out.buffer()), (slot::PARTS, parts.buffer())];
    rec.dispatch_at(&pipeline, &bindings, slot::PARAMS, &params, [1, 1, 1]);
    Ok(out)
}

/// A token drawn from each row of `logits [.., vocab]` as `sampling` says; `step` (the position being
/// generated) varies the draw from one token to the next. i32 `[..]`.
pub fn sample(
    rec: &mut Recorder,
    logits: &Tensor,
    sampling: &Sampling,
    step: u32,
) -> Result<Tensor> {
    run(rec, logits, sampling, step, "sample", None, None)
}

/// [`sample`] after a repetition [`Penalty`].
pub fn sample_with(
    rec: &mut Recorder,
    logits: &Tensor,
    sampling: &Sampling,
    step: u32,
    penalty: Option<Penalty<'_>>,
) -> Result<Tensor> {
    run(rec, logits, sampling, step, "sample", penalty, None)
}

/// [`sample_with`] among the tokens `allowed` marks only: an i32 bitset `[rows, ceil(vocab / 32)]`
/// (bit `i % 32` of word `i / 32` set: token i may be chosen; see [`seen_tokens`]), e.g. what a
/// grammar allows at this step. Each row must allow at least one token (else the choice is
/// unspecified).
pub fn sample_masked(
    rec: &mut Recorder,
    logits: &Tensor,
    sampling: &Sampling,
    step: u32,
    penalty: Option<Penalty<'_>>,
    allowed: Option<&Tensor>,
) -> Result<Tensor> {
    run(rec, logits, sampling, step, "sample", penalty, allowed)
}

const OP: &str = "sample";

/// Checks the logits (a vocabulary axis, whole), the sampling numbers, the penalty's factor and
/// bitset, and the mask; returns (vocabulary size, rows).
fn check(
    logits: &Tensor,
    s: &Sampling,
    penalty: Option<Penalty<'_>>,
    allowed: Option<&Tensor>,
) -> Result<(usize, usize)> {
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
    if let Some(pen) = penalty {
        if !(pen.repetition_penalty.is_finite() && pen.repetition_penalty > 0.0) {
            return Err(Error::shape(
                OP,
                format!(
                    "the repetition penalty needs a positive factor, got {}",
                    pen.repetition_penalty
                ),
            ));
        }
        check_bitset("the repetition penalty's `seen`", pen.seen, rows, vocab)?;
    }
    if let Some(bits) = allowed {
        check_bitset("the mask of allowed tokens", bits, rows, vocab)?;
    }
    Ok((vocab, rows))
}

/// Checks that `bits` is an i32 bitset `[rows, ceil(vocab / 32)]`, whole.
fn check_bitset(what: &str, bits: &Tensor, rows: usize, vocab: usize) -> Result<()> {
    if bits.dtype() == DType::I32
        && bits.shape() == [rows, vocab.div_ceil(32)]
        && bits.offset() == 0
    {
        return Ok(());
    }
    Err(Error::shape(
        OP,
        format!(
            "{what} must be an i32 bitset [{rows}, {}] (got {:?} {:?})",
            vocab.div_ceil(32),
            bits.shape(),
            bits.dtype()
        ),
    ))
}

/// Natively, `WEBGPU_INFER_ARGMAX_LOADS=16`: the argmax's threads keep 16 loads in flight rather
/// than 8 (`ARGMAX_WIDE`), for A/B runs on GPUs.
static ARGMAX_LOADS: crate::kernels::Tuned =
    crate::kernels::Tuned::new("WEBGPU_INFER_ARGMAX_LOADS");

fn run(
    rec: &mut Recorder,
    logits: &Tensor,
    s: &Sampling,
    step: u32,
    entry: &'static str,
    penalty: Option<Penalty<'_>>,
    allowed: Option<&Tensor>,
) -> Result<Tensor> {
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[logits])?;
    let (vocab, rows) = check(logits, s, penalty, allowed)?;
    let lead = &logits.shape()[..logits.shape().len() - 1];
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
        penalty: penalty.map_or(1.0, |p| p.repetition_penalty),
    };
    let pipeline = gpu.pipeline(&KernelSource {
        name: "sample",
        body: SHADER,
        dtype,
        entry,
        constants: &[
            ("PENALTY", f64::from(u8::from(penalty.is_some()))),
            ("MASK", f64::from(u8::from(allowed.is_some()))),
            (
                "ARGMAX_WIDE",
                f64::from(u8::from(ARGMAX_LOADS.get() == Some(16))),
            ),
        ],
    });
    let grid = grid_1d(&gpu, OP, params.rows)?;
    // Without a penalty or a mask the kernel never reads `seen` / `allowed`, but their bindings must
    // be filled (two buffers: one is written, the other read).
    let (no_seen, no_mask);
    let seen = match penalty {
        Some(p) => p.seen,
        None => {
            no_seen = Tensor::empty(&gpu, &[1], DType::I32)?;
            &no_seen
        }
    };
    let allowed = match allowed {
        Some(bits) => bits,
        None => {
            no_mask = Tensor::empty(&gpu, &[1], DType::I32)?;
            &no_mask
        }
    };
    let bindings = [
        (slot::LOGITS, logits.buffer()),
        (slot::IDS, out.buffer()),
        (slot::SEEN, seen.buffer()),
        (slot::ALLOWED, allowed.buffer()),
    ];
    rec.dispatch_at(&pipeline, &bindings, slot::PARAMS, &params, grid);
    Ok(out)
}
