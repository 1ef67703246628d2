//! Flash-style attention, `shaders/attention.wgsl`: bidirectional with a padding mask (BERT) or causal
//! (LLaMA), grouped-query heads, a KV cache read in place, and a decode variant for few query rows;
//! the prefill also as tiled products (`attention_tiled.wgsl`) and, natively, on tensor cores
//! (`attention/coop.rs`: `attention_coop.wgsl`); the split decode in
//! `attention/split.rs`.

use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::{check_dtypes, check_view_offsets, to_u32};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

mod coop;
mod split;
pub use split::Partials;

/// The shaders' bindings by name (`@binding(N) var … name`; tests/params.rs checks each against the WGSL).
mod slot {
    pub const Q: u32 = 0;
    pub const K: u32 = 1;
    pub const V: u32 = 2;
    pub const MASK: u32 = 3;
    pub const OUT: u32 = 4;
    pub const PARAMS: u32 = 5;
    /// The split decode's partial softmax states.
    pub const PART: u32 = 6;
}

/// The prefill and decode kernels, the prefill's per-thread rows sized for head_dim ≤ 128 or ≤ 256
/// (Gemma's; larger private arrays cost the common sizes registers, hence two builds), with the
/// decode kernels' reductions as workgroup-memory trees or on subgroups.
macro_rules! attention_source {
    ($max:literal, $reduce:literal) => {
        concat!(
            "const MAX_HEAD_DIM: u32 = ",
            $max,
            "u;\n",
            include_str!("../../shaders/attention_common.wgsl"),
            include_str!("../../shaders/attention_bindings.wgsl"),
            include_str!("../../shaders/attention.wgsl"),
            include_str!($reduce)
        )
    };
}
const SHADER: &str = attention_source!("128", "../../shaders/attention_reduce.wgsl");
const SHADER_256: &str = attention_source!("256", "../../shaders/attention_reduce.wgsl");
/// The decode kernels with subgroup reductions (where subgroups are exactly 32 lanes).
const SHADER_SG: &str = attention_source!("128", "../../shaders/attention_reduce_sg.wgsl");

/// The decode kernels' shader for `gpu`: subgroup reductions where its subgroups are exactly 32
/// lanes (NVIDIA natively; browsers offer no subgroups), else the portable trees.
fn decode_shader(gpu: &crate::Gpu) -> (&'static str, &'static str) {
    let caps = gpu.capabilities();
    if caps.subgroups && caps.subgroup_min_size == 32 && caps.subgroup_max_size == 32 {
        ("attention_sg", SHADER_SG)
    } else {
        ("attention", SHADER)
    }
}
/// The tiled prefill for one head_dim: portable, or with subgroup shuffles (`_sg`).
macro_rules! tiled_source {
    ($hd:literal, $helpers:literal) => {
        concat!(
            "const HD: u32 = ",
            $hd,
            "u;\n",
            include_str!("../../shaders/attention_common.wgsl"),
            include_str!("../../shaders/attention_bindings.wgsl"),
            include_str!("../../shaders/attention_tiled.wgsl"),
            include_str!($helpers)
        )
    };
}
const TILED_64: &str = tiled_source!("64", "../../shaders/attention_tiled_wg.wgsl");
const TILED_32: &str = tiled_source!("32", "../../shaders/attention_tiled_wg.wgsl");
const TILED_64_SG: &str = tiled_source!("64", "../../shaders/attention_tiled_sg.wgsl");
const TILED_32_SG: &str = tiled_source!("32", "../../shaders/attention_tiled_sg.wgsl");
/// Query rows per tiled prefill workgroup (BR in the shader).
const TILED_ROWS: usize = 64;
/// Query rows per prefill workgroup.
const PREFILL_ROWS: usize = 64;
/// Largest head_dim the prefill kernel holds in registers (MAX_HEAD_DIM in the shader's larger build).
const MAX_HEAD_DIM: usize = 256;
/// Up to this many query rows, the decode kernel (threads over keys) is used.
const DECODE_MAX_ROWS: usize = 8;

/// Which kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Chosen by shape: for at most 8 query rows (when head_dim divides 256) decode, or split decode
    /// past 128 cached keys; else for f16 with head_dim 64 on tensor cores where the device has
    /// them ([`Kernel::PrefillCoop`]); else on GPUs, for head_dim 32 or 64, the tiled prefill (with
    /// subgroups where the device has them); else prefill.
    Auto,
    /// One thread a query row, any head_dim up to 128 (and the pick on CPU adapters).
    Prefill,
    /// Q·Kᵀ and P·V as tiled products, 64 query rows × 32 keys a step, for head_dim 32 or 64; needs
    /// 32 KiB (head_dim 64) or 20 KiB (32) of workgroup memory.
    PrefillTiled,
    /// [`Kernel::PrefillTiled`] with subgroup shuffles for the row maxima and V in its own tile
    /// (one barrier fewer a key tile): native devices with subgroups of at least 8 lanes; 40 KiB
    /// (head_dim 64) or 24 KiB (32) of workgroup memory.
    PrefillTiledSubgroup,
    /// Flash attention on tensor cores: Q·Kᵀ and P·V as 16×16×16 f16 cooperative-matrix products
    /// with f32 accumulation, 16 query rows × 64 keys a subgroup and step, the online softmax in the
    /// lanes (probabilities rounded to f16 for P·V). head_dim 64 or 32, native devices with
    /// [`crate::Capabilities::cooperative_matrix`]; 44 KiB of workgroup memory. K and V staged in
    /// workgroup memory; f16 q, k, v, or f32 ones rounded to f16 as they are staged (output f32).
    /// `Auto` picks it for f16 only (for f32 the GPU encoder asks for it only when
    /// [`f32_on_tensor_cores`]).
    PrefillCoop,
    /// One workgroup a (row, head) walks every key.
    Decode,
    /// Split-K: one workgroup a (row, head, 64 keys), then a pass that merges the ranges.
    DecodeSplit,
}

/// The old name of [`Kernel`] (every kernel module names its choice of kernel `Kernel`, `Auto` first).
#[deprecated(
    since = "0.1.0",
    note = "renamed `Kernel`: one name for every module's choice of kernel"
)]
pub type Variant = Kernel;

/// Keys a workgroup of the split decode takes by default (`SPLIT_KEYS` in the shader): 64, four
/// rounds of 16 keys, so that a decoding step's attention is many short workgroups rather than a few
/// long ones (SmolLM2-135M on an H100, 512 new tokens: 806 tokens/s with 256 keys a workgroup, split
/// past 256 keys; 878 with 64, split past 128; `bench-results/h100-decode-split-size-2026-12-06.jsonl`).
const SPLIT_KEYS: usize = 64;

/// Cached keys past which `Kernel::Auto` splits the decode (below, one workgroup a row and head
/// walks them all: one dispatch fewer).
const SPLIT_PAST: usize = 128;

/// Whether the GPU encoder's f32 attention (BERT's) runs on tensor cores ([`Kernel::PrefillCoop`],
/// q, k and v rounded to f16 as they are staged, as its linears round their activations there):
/// only natively with `WEBGPU_INFER_ENCODER_COOP_ATTENTION=1`, where the device has cooperative
/// matrices and head_dim is 32 or 64. Off by default: on an H100 (2026-12-07) MiniLM 32 × 128 took
/// 4.12–4.25 ms with it against 3.93–3.99 with the tiled f32 kernel, its 6 attention dispatches 0.77
/// ms of GPU time against 0.59 (`bench-results/h100-minilm-ab-2026-12-07.jsonl`).
pub fn f32_on_tensor_cores(gpu: &crate::Gpu, head_dim: usize) -> bool {
    static ON: crate::kernels::Tuned =
        crate::kernels::Tuned::new("WEBGPU_INFER_ENCODER_COOP_ATTENTION");
    ON.get() == Some(1) && coop::fits(gpu, head_dim).is_ok()
}

/// Natively, `WEBGPU_INFER_DECODE_SPLIT_SIZE=N` (a power of two, 16..=4096) sets the keys a workgroup of
/// the split decode takes, for A/B runs on GPUs.
static DECODE_SPLIT_SIZE: crate::kernels::Tuned =
    crate::kernels::Tuned::new("WEBGPU_INFER_DECODE_SPLIT_SIZE");

/// Keys a workgroup of the split decode takes.
fn split_size() -> usize {
    DECODE_SPLIT_SIZE
        .get()
        .filter(|s| s.is_power_of_two() && (16..=4096).contains(s))
        .unwrap_or(SPLIT_KEYS)
}

/// Natively, `WEBGPU_INFER_DECODE_SPLIT_KEYS=N` makes `Kernel::Auto` split the decode only past N
/// cached keys (default [`SPLIT_PAST`]), and `WEBGPU_INFER_DECODE_VEC_V=0` gives the decode kernels
/// their older output layout (a dimension a thread, `VEC_V` off): for A/B runs on GPUs.
static DECODE_SPLIT_KEYS: crate::kernels::Tuned =
    crate::kernels::Tuned::new("WEBGPU_INFER_DECODE_SPLIT_KEYS");
static DECODE_VEC_V: crate::kernels::Tuned =
    crate::kernels::Tuned::new("WEBGPU_INFER_DECODE_VEC_V");
/// `WEBGPU_INFER_DECODE_V_PREFETCH=N`: values of N keys a thread loaded before a tile's scores (0–8;
/// default 0: not yet timed on a GPU).
static DECODE_V_PREFETCH: crate::kernels::Tuned =
    crate::kernels::Tuned::new("WEBGPU_INFER_DECODE_V_PREFETCH");

/// The decode kernels' override constants: the head size, and VEC_V or V_PRE where a run set them.
fn decode_constants(head_dim: u32) -> Vec<(&'static str, f64)> {
    let mut c = vec![("HD", f64::from(head_dim))];
    if DECODE_VEC_V.get() == Some(0) {
        c.push(("VEC_V", 0.0));
    }
    if let Some(n) = DECODE_V_PREFETCH.get() {
        c.push(("V_PRE", n.min(8) as f64));
    }
    c
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
    /// A sliding window: the query at position t sees only keys at positions > t - window
    /// (transformers' `sliding_window`; Gemma 2/3, Phi-3, Mistral).
    pub window: Option<usize>,
    /// Soft-capped scores: `cap · tanh(score / cap)` after scaling, before the softmax (Gemma 2's
    /// `attn_logit_softcapping`).
    pub softcap: Option<f32>,
    pub variant: Kernel,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            causal: false,
            scale: None,
            kv_len: None,
            mask: None,
            window: None,
            softcap: None,
            variant: Kernel::Auto,
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
    n_splits: u32,
    window: u32,
    softcap: f32,
    _pad: [u32; 3],
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
    let dims = check_inputs(q, k, v, &opts)?;
    let (q_len, head_dim) = (dims.q_len, dims.head_dim);
    let variant = pick_variant(&gpu, opts.variant, dtype, (q_len, head_dim, dims.kv_len))?;
    let out = Tensor::empty(&gpu, q.shape(), dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let params = params_of(&dims, &opts)?;
    if variant == Kernel::DecodeSplit {
        split::split_decode(rec, [q, k, v, opts.mask.unwrap_or(q), &out], &params, dtype)?;
        return Ok(out);
    }
    let (mut name, mut body, mut entry, mut rows_x) = kernel_of(variant, head_dim, q_len);
    if variant == Kernel::Decode {
        (name, body) = decode_shader(&gpu);
    }
    // The decode kernel knows the head size at compile time (its loops over it unroll).
    let mut constants = match entry {
        "decode" => decode_constants(params.head_dim),
        _ => Vec::new(),
    };
    if variant == Kernel::PrefillCoop {
        let plan = coop::plan(dtype, q_len, head_dim);
        (name, body, entry, rows_x, constants) = (
            plan.name,
            plan.body,
            plan.entry,
            plan.groups_x,
            plan.constants,
        );
    }
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
        name,
        body,
        dtype,
        entry,
        constants: &constants,
    });
    let mask = opts.mask.unwrap_or(q);
    let views = [
        (slot::Q, q),
        (slot::K, k),
        (slot::V, v),
        (slot::MASK, mask),
        (slot::OUT, &out),
    ];
    rec.dispatch_views(&pipeline, &views, slot::PARAMS, &params, groups);
    Ok(out)
}

/// The kernels' parameters for checked sizes and options.
fn params_of(d: &Dims, opts: &Options<'_>) -> Result<Params> {
    const OP: &str = "attention";
    Ok(Params {
        batch: to_u32(OP, "batch", d.batch)?,
        q_len: to_u32(OP, "q_len", d.q_len)?,
        kv_len: to_u32(OP, "kv_len", d.kv_len)?,
        kv_cap: to_u32(OP, "kv_cap", d.kv_cap)?,
        n_heads: to_u32(OP, "heads", d.n_heads)?,
        n_kv_heads: to_u32(OP, "kv heads", d.n_kv_heads)?,
        head_dim: d.head_dim as u32,
        causal: u32::from(opts.causal),
        has_mask: u32::from(opts.mask.is_some()),
        scale: opts.scale.unwrap_or(1.0 / (d.head_dim as f32).sqrt()),
        n_splits: to_u32(OP, "key ranges", decode_ranges(d.kv_len))?,
        window: to_u32(OP, "window", opts.window.unwrap_or(0))?,
        softcap: opts.softcap.unwrap_or(0.0),
        _pad: [0; 3],
    })
}

/// Whether the decode kernels take this head size (one dividing 256).
fn decode_fits(head_dim: usize) -> bool {
    head_dim <= 256 && 256 % head_dim == 0
}

/// Cached keys past which `Kernel::Auto` (and [`decode_partials`]) split the decode.
fn split_past() -> usize {
    DECODE_SPLIT_KEYS.get().unwrap_or(SPLIT_PAST)
}

/// Ranges of keys a head the split decode takes over `kv_len` cached keys (what [`Partials`] hold).
pub fn decode_ranges(kv_len: usize) -> usize {
    kv_len.div_ceil(split_size()).max(1)
}

/// The split decode's first pass alone, for a kernel that merges its ranges as it reads them
/// ([`crate::kernels::quant::gemv_merged`]): one query row of batch 1 (`q [1, 1, heads, head_dim]`)
/// over the cache, as [`attention`] computes it. `None` (nothing recorded) where that is not the
/// split decode: more rows, a kernel asked for by name, a head_dim not dividing 256, or no more
/// cached keys than [`attention`] splits past (128). Bad inputs are refused as [`attention`] refuses
/// them.
pub fn decode_partials(
    rec: &mut Recorder,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    opts: Options<'_>,
) -> Result<Option<Partials>> {
    const OP: &str = "attention";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[q, k, v])?;
    let dims = check_inputs(q, k, v, &opts)?;
    if dims.batch != 1
        || dims.q_len != 1
        || opts.variant != Kernel::Auto
        || !decode_fits(dims.head_dim)
        || dims.kv_len <= split_past()
    {
        return Ok(None);
    }
    let params = params_of(&dims, &opts)?;
    let part = split::split_pass(rec, [q, k, v, opts.mask.unwrap_or(q)], &params, dtype)?;
    Ok(Some(Partials {
        part,
        heads: dims.n_heads,
        head_dim: dims.head_dim,
        splits: params.n_splits as usize,
        dtype,
    }))
}

/// The sizes of an attention call, checked against each other.
struct Dims {
    batch: usize,
    q_len: usize,
    n_heads: usize,
    head_dim: usize,
    kv_cap: usize,
    n_kv_heads: usize,
    kv_len: usize,
}

/// Checks q, k, v and the options against each other (shapes, head counts, kv_len, mask, window,
/// soft cap, whole buffers) and returns the sizes.
fn check_inputs(q: &Tensor, k: &Tensor, v: &Tensor, opts: &Options<'_>) -> Result<Dims> {
    const OP: &str = "attention";
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
    if opts.window == Some(0) || opts.softcap.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
        return Err(Error::shape(
            OP,
            format!(
                "a sliding window must be ≥ 1 key and a soft cap finite and > 0, got {:?} and {:?}",
                opts.window, opts.softcap
            ),
        ));
    }
    // Views (Q, K and V of one stacked product) are bound from their first element.
    check_view_offsets(OP, q.gpu(), &[q, k, v])?;
    if let Some(m) = opts.mask {
        check_view_offsets(OP, q.gpu(), &[m])?;
    }
    Ok(Dims {
        batch,
        q_len,
        n_heads,
        head_dim,
        kv_cap,
        n_kv_heads,
        kv_len,
    })
}

/// The kernel for `requested` (Auto: by rows, head size, keys and adapter), refused where it cannot
/// run this head size on this device.
fn pick_variant(
    gpu: &crate::Gpu,
    requested: Kernel,
    dtype: DType,
    (q_len, head_dim, kv_len): (usize, usize, usize),
) -> Result<Kernel> {
    const OP: &str = "attention";
    let decode_ok = decode_fits(head_dim);
    let variant = match requested {
        Kernel::Auto if q_len <= DECODE_MAX_ROWS && decode_ok && kv_len > split_past() => {
            Kernel::DecodeSplit
        }
        Kernel::Auto if q_len <= DECODE_MAX_ROWS && decode_ok => Kernel::Decode,
        Kernel::Auto if dtype == DType::F16 && coop::fits(gpu, head_dim).is_ok() => {
            Kernel::PrefillCoop
        }
        Kernel::Auto if !gpu.capabilities().cpu_kernels => {
            if tiled_fits(gpu, head_dim, true).is_ok() {
                Kernel::PrefillTiledSubgroup
            } else if tiled_fits(gpu, head_dim, false).is_ok() {
                Kernel::PrefillTiled
            } else {
                Kernel::Prefill
            }
        }
        Kernel::Auto => Kernel::Prefill,
        v => v,
    };
    let subgroup = variant == Kernel::PrefillTiledSubgroup;
    if subgroup || variant == Kernel::PrefillTiled {
        tiled_fits(gpu, head_dim, subgroup)?;
    }
    if variant == Kernel::PrefillCoop {
        coop::fits(gpu, head_dim)?;
    }
    let is_decode = matches!(variant, Kernel::Decode | Kernel::DecodeSplit);
    if is_decode && !decode_ok {
        return Err(Error::shape(
            OP,
            format!("the decode kernel needs head_dim dividing 256, got {head_dim}"),
        ));
    }
    if variant == Kernel::Prefill && (head_dim > MAX_HEAD_DIM || head_dim == 0) {
        return Err(Error::shape(
            OP,
            format!("head_dim {head_dim} is past the prefill kernel's {MAX_HEAD_DIM}"),
        ));
    }
    Ok(variant)
}

/// The shader, entry point and row groups of a (non-split) variant (the tensor cores' are
/// `coop::plan`'s).
fn kernel_of(
    variant: Kernel,
    head_dim: usize,
    q_len: usize,
) -> (&'static str, &'static str, &'static str, usize) {
    let subgroup = variant == Kernel::PrefillTiledSubgroup;
    match variant {
        Kernel::Decode | Kernel::DecodeSplit => ("attention", SHADER, "decode", q_len),
        Kernel::PrefillTiled | Kernel::PrefillTiledSubgroup => {
            let (name, body) = match (head_dim, subgroup) {
                (64, false) => ("attention_tiled64", TILED_64),
                (64, true) => ("attention_tiled64_sg", TILED_64_SG),
                (_, false) => ("attention_tiled32", TILED_32),
                (_, true) => ("attention_tiled32_sg", TILED_32_SG),
            };
            (name, body, "prefill_tiled", q_len.div_ceil(TILED_ROWS))
        }
        _ if head_dim > 128 => (
            "attention_hd256",
            SHADER_256,
            "prefill",
            q_len.div_ceil(PREFILL_ROWS),
        ),
        _ => ("attention", SHADER, "prefill", q_len.div_ceil(PREFILL_ROWS)),
    }
}

/// Whether [`Kernel::PrefillTiled`] (or with `subgroup`, [`Kernel::PrefillTiledSubgroup`]) can run
/// this head_dim on this device, or why not.
fn tiled_fits(gpu: &crate::Gpu, head_dim: usize, subgroup: bool) -> Result<()> {
    const OP: &str = "attention (tiled prefill)";
    // Q (64 rows), K (32 rows), P (64 × 32 f32), and V (32 rows) apart with subgroups.
    let row_bytes = head_dim as u32 * 4;
    let needed = 64 * row_bytes + 32 * row_bytes + 8192 + if subgroup { 32 * row_bytes } else { 0 };
    if head_dim != 32 && head_dim != 64 {
        return Err(Error::shape(
            OP,
            format!(
                "the tiled prefill takes head_dim 32 or 64, got {head_dim}; use Kernel::Prefill"
            ),
        ));
    }
    let caps = gpu.capabilities();
    if subgroup && !(caps.subgroups && caps.subgroup_min_size >= 8) {
        return Err(Error::MissingFeature {
            op: OP,
            feature: "subgroups of at least 8 lanes (native only)",
        });
    }
    let limit = gpu.limits().max_compute_workgroup_storage_size;
    if limit < needed {
        return Err(Error::LimitExceeded {
            what: format!("the tiled attention's workgroup memory for head_dim {head_dim}"),
            value: u64::from(needed),
            limit_name: "maxComputeWorkgroupStorageSize",
            limit: u64::from(limit),
        });
    }
    Ok(())
}

/// Floating-point operations of one attention call (QKᵀ and PV, causal halving ignored):
/// 4·batch·heads·q_len·kv_len·head_dim.
pub fn flops(batch: usize, heads: usize, q_len: usize, kv_len: usize, head_dim: usize) -> f64 {
    4.0 * (batch * heads * q_len) as f64 * kv_len as f64 * head_dim as f64
}
