//! Flash-style attention, `shaders/attention.wgsl`: bidirectional with a padding mask (BERT) or causal
//! (LLaMA), grouped-query heads, a KV cache read in place, and a decode variant for few query rows.

use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::{check_dtypes, require_whole, to_u32};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

const SHADER: &str = include_str!("../../shaders/attention.wgsl");
/// Query rows per prefill workgroup.
const PREFILL_ROWS: usize = 64;
/// Largest head_dim the prefill kernel holds in registers (MAX_HEAD_DIM in the shader).
const MAX_HEAD_DIM: usize = 128;
/// Up to this many query rows, the decode kernel (threads over keys) is used.
const DECODE_MAX_ROWS: usize = 8;

/// Which kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Chosen by shape: decode for at most 8 query rows (when head_dim divides 256), else prefill.
    Auto,
    Prefill,
    Decode,
}

/// Options of [`attention`].
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Query i (of q_len) sees only keys up to its position kv_len - q_len + i.
    pub causal: bool,
    /// Defaults to 1/sqrt(head_dim).
    pub scale: Option<f32>,
    /// Valid keys in the cache (defaults to all of k's second axis).
    pub kv_len: Option<usize>,
    /// i32 `[batch, kv_cap]`: 1 where a key may be attended, 0 for padding.
    pub mask: Option<&'a Tensor>,
    pub variant: Variant,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            causal: false,
            scale: None,
            kv_len: None,
            mask: None,
            variant: Variant::Auto,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    q_len: u32,
    kv_len: u32,
    kv_cap: u32,
    n_heads: u32,
    n_kv_heads: u32,
    head_dim: u32,
    causal: u32,
    has_mask: u32,
    scale: f32,
    _pad: [u32; 2],
}

/// `softmax(q·kᵀ·scale + mask)·v` for `q [batch, q_len, n_heads, head_dim]` and a cache
/// `k, v [batch, kv_cap, n_kv_heads, head_dim]`; `n_heads` a multiple of `n_kv_heads`.
/// Returns `[batch, q_len, n_heads, head_dim]`.
pub fn attention(
    rec: &mut Recorder,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    opts: Options<'_>,
) -> Result<Tensor> {
    const OP: &str = "attention";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[q, k, v])?;
    let &[batch, q_len, n_heads, head_dim] = q.shape() else {
        return Err(Error::shape(
            OP,
            format!(
                "q must be [batch, q_len, heads, head_dim], got {:?}",
                q.shape()
            ),
        ));
    };
    let &[kb, kv_cap, n_kv_heads, kd] = k.shape() else {
        return Err(Error::shape(
            OP,
            format!(
                "k must be [batch, kv_cap, kv_heads, head_dim], got {:?}",
                k.shape()
            ),
        ));
    };
    if v.shape() != k.shape() || kb != batch || kd != head_dim {
        return Err(Error::shape(
            OP,
            format!(
                "q {:?}, k {:?} and v {:?} disagree on batch or head_dim",
                q.shape(),
                k.shape(),
                v.shape()
            ),
        ));
    }
    if n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
        return Err(Error::shape(
            OP,
            format!("{n_heads} query heads are not a multiple of {n_kv_heads} KV heads"),
        ));
    }
    let kv_len = opts.kv_len.unwrap_or(kv_cap);
    if kv_len > kv_cap || (opts.causal && q_len > kv_len) {
        return Err(Error::shape(
            OP,
            format!(
                "kv_len {kv_len} must be ≤ the cache's {kv_cap} (and ≥ q_len {q_len} when causal)"
            ),
        ));
    }
    if let Some(m) = opts.mask
        && (m.dtype() != DType::I32 || m.shape() != [batch, kv_cap])
    {
        return Err(Error::shape(
            OP,
            format!(
                "mask must be i32 [{batch}, {kv_cap}], got {:?} {:?}",
                m.dtype(),
                m.shape()
            ),
        ));
    }
    require_whole(OP, &[q, k, v])?;
    if let Some(m) = opts.mask {
        require_whole(OP, &[m])?;
    }
    let decode_ok = head_dim <= 256 && 256 % head_dim == 0;
    let variant = match opts.variant {
        Variant::Auto if q_len <= DECODE_MAX_ROWS && decode_ok => Variant::Decode,
        Variant::Auto => Variant::Prefill,
        v => v,
    };
    if variant == Variant::Decode && !decode_ok {
        return Err(Error::shape(
            OP,
            format!("the decode kernel needs head_dim dividing 256, got {head_dim}"),
        ));
    }
    if variant == Variant::Prefill && (head_dim > MAX_HEAD_DIM || head_dim == 0) {
        return Err(Error::shape(
            OP,
            format!("head_dim {head_dim} is past the prefill kernel's {MAX_HEAD_DIM}"),
        ));
    }
    let out = Tensor::empty(&gpu, q.shape(), dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let params = Params {
        batch: to_u32(OP, "batch", batch)?,
        q_len: to_u32(OP, "q_len", q_len)?,
        kv_len: to_u32(OP, "kv_len", kv_len)?,
        kv_cap: to_u32(OP, "kv_cap", kv_cap)?,
        n_heads: to_u32(OP, "heads", n_heads)?,
        n_kv_heads: to_u32(OP, "kv heads", n_kv_heads)?,
        head_dim: head_dim as u32,
        causal: u32::from(opts.causal),
        has_mask: u32::from(opts.mask.is_some()),
        scale: opts.scale.unwrap_or(1.0 / (head_dim as f32).sqrt()),
        _pad: [0; 2],
    };
    let (entry, rows_x) = match variant {
        Variant::Decode => ("decode", q_len),
        _ => ("prefill", q_len.div_ceil(PREFILL_ROWS)),
    };
    let groups = [
        to_u32(OP, "row groups", rows_x)?,
        params.n_heads,
        params.batch,
    ];
    for (what, n) in [
        ("attention query rows", groups[0]),
        ("attention heads", groups[1]),
        ("attention batch", groups[2]),
    ] {
        gpu.check_workgroups(what, n)?;
    }
    let pipeline = gpu.pipeline(&KernelSource {
        name: "attention",
        body: SHADER,
        dtype,
        entry,
        constants: &[],
    });
    let mask = opts.mask.unwrap_or(q);
    rec.dispatch(
        &pipeline,
        &[
            q.buffer(),
            k.buffer(),
            v.buffer(),
            mask.buffer(),
            out.buffer(),
        ],
        &params,
        groups,
    );
    Ok(out)
}

/// Floating-point operations of one attention call (QKᵀ and PV, causal halving ignored):
/// 4·batch·heads·q_len·kv_len·head_dim.
pub fn flops(batch: usize, heads: usize, q_len: usize, kv_len: usize, head_dim: usize) -> f64 {
    4.0 * (batch * heads * q_len) as f64 * kv_len as f64 * head_dim as f64
}
