//! Kernels over GGML block-quantized matrices, `shaders/quant.wgsl` (after `quant_blocks.wgsl`, the
//! formats): a dequantizing GEMV (decoding), a fused SwiGLU GEMV, and dequantization of whole rows
//! (prefill's weights, embedding gathers).

use crate::dtype::QuantType;
use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::{check_dtypes, grid_1d, to_u32};
use crate::qtensor::QTensor;
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

/// The formats' decoding, the sums (`$reduce`: workgroup-memory trees or subgroups), then the
/// kernels (and `$extra`'s).
macro_rules! quant_source {
    ($reduce:literal $(, $extra:literal)?) => {
        concat!(
            include_str!("../../shaders/quant_blocks.wgsl"),
            include_str!($reduce),
            include_str!("../../shaders/quant.wgsl"),
            include_str!("../../shaders/quant_merged.wgsl"),
            include_str!("../../shaders/quant_norm.wgsl"),
            include_str!("../../shaders/quant_mm.wgsl"),
            $(include_str!($extra))?
        )
    };
}
const SHADER: &str = quant_source!("../../shaders/quant_reduce.wgsl");
/// The same with the sums on subgroups (32 lanes wide: a row's lanes are one subgroup).
const SHADER_SG: &str = quant_source!("../../shaders/quant_reduce_sg.wgsl");
/// [`SHADER_SG`] with the prompts' tensor-core matmul (`mm_coop`), for devices with f16 cooperative
/// matrices (which all have 32-wide subgroups).
const SHADER_COOP: &str = quant_source!(
    "../../shaders/quant_reduce_sg.wgsl",
    "../../shaders/quant_mm_coop.wgsl"
);

/// The shader's name and source for `gpu`: the subgroup sums where subgroups are exactly 32 lanes
/// (NVIDIA natively; browsers offer no subgroups), else the portable ones.
fn shader(gpu: &crate::Gpu) -> (&'static str, &'static str) {
    let caps = gpu.capabilities();
    if caps.subgroups && caps.subgroup_min_size == 32 && caps.subgroup_max_size == 32 {
        ("quant_sg", SHADER_SG)
    } else {
        ("quant", SHADER)
    }
}

/// The shader's bindings by name (`@binding(N) var … name` in shaders/quant.wgsl; tests/params.rs
/// checks each against the WGSL).
mod slot {
    /// The weight (the gate's in the gated GEMVs, q's in the QKV GEMV).
    pub const W: u32 = 0;
    pub const X: u32 = 1;
    pub const OUT: u32 = 2;
    pub const PARAMS: u32 = 3;
    pub const RESIDUAL: u32 = 4;
    /// The up projection's weight (k's in the QKV GEMV).
    pub const W_UP: u32 = 5;
    pub const IDS: u32 = 6;
    pub const W_V: u32 = 7;
    pub const OUT_K: u32 = 8;
    pub const OUT_V: u32 = 9;
    pub const NORM_W: u32 = 10;
    pub const ROPE_FACTORS: u32 = 11;
    /// A split decode's partial softmax states (`gemv_merged`).
    pub const PART: u32 = 12;
    /// The workgroups' maxima (`gemv_norm_argmax`).
    pub const PARTS: u32 = 13;
}

mod checks;
use checks::{check_norm, check_qkv, gemv_dims};
mod matmul;
pub use matmul::{MatmulKernel, matmul, matmul_with};
mod merged;
pub use merged::{gemv_merged, gemv_merged_fits};
mod norm;
pub use norm::{gemv_norm, gemv_norm_argmax};
mod tuning;
use tuning::{tuned, wide};

/// Weight rows one GEMV workgroup computes (ROWS in the shader).
const GEMV_ROWS: usize = 8;

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    x_offset: u32,
    out_offset: u32,
    res_offset: u32,
    ids_offset: u32,
    n_kv: u32,
    k_offset: u32,
    v_offset: u32,
    pos: u32,
    theta: f32,
    head_dim: u32,
    eps: f32,
    norm_offset: u32,
    factor_offset: u32,
    splits: u32,
    _pad: [u32; 3],
}

/// Which GEMV kernel runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kernel {
    /// Cooperative on GPUs, one thread a row on CPU adapters ([`crate::Capabilities::cpu_kernels`]).
    #[default]
    Auto,
    /// 32 threads a row and a workgroup reduction (GPUs).
    Cooperative,
    /// One thread a row, no barriers (CPU adapters).
    Rows,
}

/// The old name of [`Kernel`] (every kernel module names its choice of kernel `Kernel`, `Auto` first).
#[deprecated(
    since = "0.1.0",
    note = "renamed `Kernel`: one name for every module's choice of kernel"
)]
pub type Variant = Kernel;

/// What a GEMV fuses around the product.
#[derive(Clone, Copy, Default)]
pub struct GemvOptions<'a> {
    /// Added to the result (the residual stream).
    pub residual: Option<&'a Tensor>,
    /// Written here (a view of the result's size and type, such as a KV cache's next rows) rather than
    /// into a new tensor.
    pub out: Option<&'a Tensor>,
    pub variant: Kernel,
}

/// QTYPE in the shader.
fn qtype_constant(q: QuantType) -> f64 {
    match q {
        QuantType::Q4_0 => 0.0,
        QuantType::Q4_1 => 1.0,
        QuantType::Q8_0 => 2.0,
        QuantType::Q5_0 => 3.0,
        QuantType::Q5_1 => 4.0,
        QuantType::Q4_K => 5.0,
        QuantType::Q5_K => 6.0,
        QuantType::Q6_K => 7.0,
        QuantType::IQ4_NL => 8.0,
        QuantType::Q2_K => 9.0,
        QuantType::Q3_K => 10.0,
    }
}

/// The GEMV entry point and grid: 32 threads an output and a reduction in workgroup memory on GPUs;
/// one thread an output (no barriers) on CPU adapters, where that is several times faster.
fn layout(
    gpu: &crate::Gpu,
    op: &'static str,
    entry: &'static str,
    m: usize,
    n: usize,
    variant: Kernel,
) -> Result<(&'static str, [u32; 3])> {
    let rows = match variant {
        Kernel::Auto => gpu.capabilities().cpu_kernels,
        v => v == Kernel::Rows,
    };
    let swiglu = entry == "gemv_swiglu";
    // GPUs, more than one row of x: 4 rows a workgroup (`gemv4`), each weight read once for them.
    let (entry, per_group, x_rows) = match (rows, swiglu, m > 1) {
        (true, false, _) => ("gemv_rows", 64, 1),
        (true, true, _) => ("gemv_swiglu_rows", 64, 1),
        (false, false, false) => ("gemv", GEMV_ROWS, 1),
        (false, true, false) => ("gemv_swiglu", GEMV_ROWS, 1),
        (false, false, true) => ("gemv4", GEMV_ROWS, 4),
        (false, true, true) => ("gemv_swiglu4", GEMV_ROWS, 4),
    };
    Ok((
        entry,
        [
            to_u32(op, "row groups", n.div_ceil(per_group))?,
            to_u32(op, "row groups of x", m.div_ceil(x_rows))?,
            1,
        ],
    ))
}

/// `x · Wᵀ (+ residual)` for `x [.., k]` and a quantized `W [n, k]`: one workgroup per 8 outputs of
/// each row of `x` (decoding), or of 4 rows of `x` at once (short prompts), so meant for a few rows. Returns `[.., n]` in `x`'s type.
pub fn gemv(
    rec: &mut Recorder,
    x: &Tensor,
    w: &QTensor,
    residual: Option<&Tensor>,
) -> Result<Tensor> {
    gemv_with(
        rec,
        x,
        w,
        GemvOptions {
            residual,
            ..Default::default()
        },
    )
}

/// [`gemv`] with the fusions of [`GemvOptions`].
pub fn gemv_with(
    rec: &mut Recorder,
    x: &Tensor,
    w: &QTensor,
    opts: GemvOptions<'_>,
) -> Result<Tensor> {
    const OP: &str = "quant::gemv";
    let grid = |gpu: &crate::Gpu, m, n| {
        let (entry, groups) = layout(gpu, OP, "gemv", m, n, opts.variant)?;
        gpu.check_workgroups("quant::gemv output groups", groups[0])?;
        gpu.check_workgroups("quant::gemv rows of x", groups[1])?;
        Ok((entry, groups))
    };
    product(rec, OP, x, w, (opts.residual, opts.out), grid)
}

/// What [`gemv_with`] and [`matmul`] share: the checks, the output (a new tensor, or `out`), the
/// parameters and the dispatch of the entry point and grid `grid(gpu, m, n)` gives.
fn product(
    rec: &mut Recorder,
    op: &'static str,
    x: &Tensor,
    w: &QTensor,
    (residual, out): (Option<&Tensor>, Option<&Tensor>),
    grid: impl FnOnce(&crate::Gpu, usize, usize) -> Result<(&'static str, [u32; 3])>,
) -> Result<Tensor> {
    let gpu = rec.gpu().clone();
    let res = residual.unwrap_or(x); // placeholder when absent: bound, never read
    let dtype = check_dtypes(op, &gpu, &[x, res])?;
    let (m, n, k) = gemv_dims(op, x, w)?;
    let mut shape = x.shape().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = n;
    }
    if residual.is_some_and(|r| r.shape() != shape) {
        return Err(Error::shape(
            op,
            format!("residual {:?} must be {shape:?}", res.shape()),
        ));
    }
    let out = match out {
        Some(o) if o.numel() != shape.iter().product::<usize>() || o.dtype() != dtype => {
            return Err(Error::shape(
                op,
                format!(
                    "out {:?} {:?} must hold {shape:?} {dtype:?}",
                    o.shape(),
                    o.dtype()
                ),
            ));
        }
        Some(o) => o.clone(),
        None => Tensor::empty(&gpu, &shape, dtype)?,
    };
    if out.numel() == 0 {
        return Ok(out);
    }
    let (entry, groups) = grid(&gpu, m, n)?;
    let params = Params {
        m: to_u32(op, "rows of x", m)?,
        n: to_u32(op, "n", n)?,
        k: to_u32(op, "k", k)?,
        x_offset: x.offset_elements(),
        out_offset: out.offset_elements(),
        res_offset: res.offset_elements(),
        ..Params::default()
    };
    let (name, body) = if entry == "mm_coop" {
        ("quant_coop", SHADER_COOP)
    } else {
        shader(&gpu)
    };
    let pipeline = gpu.pipeline(&KernelSource {
        name,
        body,
        dtype,
        entry,
        constants: &wide(
            n,
            tuned(vec![
                ("QTYPE", qtype_constant(w.qtype())),
                ("HAS_RESIDUAL", f64::from(u8::from(residual.is_some()))),
            ]),
        ),
    });
    let bindings = [
        (slot::W, w.buffer()),
        (slot::X, x.buffer()),
        (slot::OUT, out.buffer()),
        (slot::RESIDUAL, res.buffer()),
    ];
    rec.dispatch_at(&pipeline, &bindings, slot::PARAMS, &params, groups);
    Ok(out)
}

/// `silu(x · Wgᵀ) ⊙ (x · Wuᵀ)`, LLaMA's gated MLP input, in one kernel for two quantized weights of
/// one shape and type.
pub fn gemv_swiglu(rec: &mut Recorder, x: &Tensor, gate: &QTensor, up: &QTensor) -> Result<Tensor> {
    gemv_swiglu_with(rec, x, gate, up, Kernel::Auto)
}

/// [`gemv_swiglu`] with a choice of kernel.
pub fn gemv_swiglu_with(
    rec: &mut Recorder,
    x: &Tensor,
    gate: &QTensor,
    up: &QTensor,
    variant: Kernel,
) -> Result<Tensor> {
    swiglu(rec, x, gate, up, variant, None, false)
}

/// `gelu_tanh(x · Wgᵀ) ⊙ (x · Wuᵀ)`: Gemma's gated MLP input (GeGLU), as [`gemv_swiglu`].
pub fn gemv_geglu(rec: &mut Recorder, x: &Tensor, gate: &QTensor, up: &QTensor) -> Result<Tensor> {
    gemv_geglu_with(rec, x, gate, up, Kernel::Auto)
}

/// [`gemv_geglu`] with a choice of kernel.
pub fn gemv_geglu_with(
    rec: &mut Recorder,
    x: &Tensor,
    gate: &QTensor,
    up: &QTensor,
    variant: Kernel,
) -> Result<Tensor> {
    swiglu(rec, x, gate, up, variant, None, true)
}

/// [`gemv_swiglu`] of `norm(x)` for one row `x [1, k]`, the RMSNorm folded in ([`Norm`]; GPU kernel).
pub fn gemv_swiglu_norm(
    rec: &mut Recorder,
    x: &Tensor,
    gate: &QTensor,
    up: &QTensor,
    norm: Norm<'_>,
) -> Result<Tensor> {
    swiglu(rec, x, gate, up, Kernel::Cooperative, Some(norm), false)
}

fn swiglu(
    rec: &mut Recorder,
    x: &Tensor,
    gate: &QTensor,
    up: &QTensor,
    variant: Kernel,
    norm: Option<Norm<'_>>,
    gelu: bool,
) -> Result<Tensor> {
    const OP: &str = "quant::gemv_swiglu";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[x])?;
    let (m, n, k) = gemv_dims(OP, x, gate)?;
    if up.shape() != gate.shape() || up.qtype() != gate.qtype() {
        return Err(Error::shape(
            OP,
            format!(
                "gate {:?} {:?} and up {:?} {:?} must have one shape and type",
                gate.shape(),
                gate.qtype(),
                up.shape(),
                up.qtype()
            ),
        ));
    }
    let mut shape = x.shape().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = n;
    }
    let out = Tensor::empty(&gpu, &shape, dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    check_norm(OP, norm, x, m, k)?;
    let (entry, groups) = layout(&gpu, OP, "gemv_swiglu", m, n, variant)?;
    gpu.check_workgroups("quant::gemv_swiglu output groups", groups[0])?;
    gpu.check_workgroups("quant::gemv_swiglu rows of x", groups[1])?;
    let params = Params {
        m: to_u32(OP, "rows of x", m)?,
        n: to_u32(OP, "n", n)?,
        k: to_u32(OP, "k", k)?,
        x_offset: x.offset_elements(),
        eps: norm.map_or(0.0, |n| n.eps),
        norm_offset: norm.map_or(0, |n| n.weight.offset_elements()),
        ..Params::default()
    };
    let mut constants = vec![("QTYPE", qtype_constant(gate.qtype()))];
    if gelu {
        constants.push(("GELU", 1.0));
    }
    if entry == "gemv_swiglu" {
        constants.push(("NORM", f64::from(u8::from(norm.is_some()))));
    }
    let (name, body) = shader(&gpu);
    let pipeline = gpu.pipeline(&KernelSource {
        name,
        body,
        dtype,
        entry,
        constants: &tuned(constants),
    });
    let mut bindings = vec![
        (slot::W, gate.buffer()),
        (slot::X, x.buffer()),
        (slot::OUT, out.buffer()),
        (slot::W_UP, up.buffer()),
    ];
    // gemv_swiglu reads the norm weight (x stands in when there is none: bound, never read).
    if entry == "gemv_swiglu" {
        bindings.push((slot::NORM_W, norm.map_or(x, |n| n.weight).buffer()));
    }
    rec.dispatch_at(&pipeline, &bindings, slot::PARAMS, &params, groups);
    Ok(out)
}

/// An RMSNorm folded into a one-row GEMV ([`gemv_qkv`], [`gemv_swiglu_norm`]): `x` is used as
/// `x / sqrt(mean(x²) + eps) · weight`, as `kernels::norm::rms_norm` computes it, without a dispatch of
/// its own. Each workgroup reduces the row itself.
#[derive(Clone, Copy)]
pub struct Norm<'a> {
    /// `[k]`, `x`'s type.
    pub weight: &'a Tensor,
    pub eps: f32,
}

/// RoPE for [`gemv_qkv`]: GGML's interleaved layout (adjacent pairs), as `kernels::rope` computes it.
#[derive(Clone, Copy, Debug)]
pub struct Rope<'a> {
    /// The token's position.
    pub pos: usize,
    pub theta: f32,
    pub head_dim: usize,
    /// Per-frequency factors (f32 `[head_dim / 2]`, Llama 3's scaling: `kernels::rope::rope_scaled`).
    pub factors: Option<&'a Tensor>,
    /// Rotate-half pairs `(i, i + head_dim / 2)` (`kernels::rope::Layout::RotateHalf`); otherwise
    /// GGML's interleaved `(2i, 2i + 1)`.
    pub rotate_half: bool,
}

/// One token's attention inputs in one dispatch: `q = x · Wqᵀ`, `k = x · Wkᵀ` and `v = x · Wvᵀ` for
/// `x [1, k]` (three quantized weights, q and k of one type, v of that or another as Q4_K_M files
/// have them; q `[nq, k]`, k and v `[nkv, k]`, row counts multiples of 8), with `rope` applied to q and k
/// (GGML's interleaved pairs, or rotate-half: [`Rope::rotate_half`]), k and v written into
/// `k_out` and `v_out` (`nkv` elements each: a KV cache's next row). Returns q `[1, nq]`.
/// Cooperative (GPU) kernel only: CPU adapters run the three GEMVs and `rope` apart.
#[allow(clippy::too_many_arguments)]
pub fn gemv_qkv(
    rec: &mut Recorder,
    x: &Tensor,
    wq: &QTensor,
    wk: &QTensor,
    wv: &QTensor,
    k_out: &Tensor,
    v_out: &Tensor,
    rope: Option<Rope<'_>>,
    norm: Option<Norm<'_>>,
) -> Result<Tensor> {
    const OP: &str = "quant::gemv_qkv";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[x, k_out, v_out])?;
    let (nq, nkv, k) = check_qkv(OP, x, [wq, wk, wv], [k_out, v_out], rope, norm)?;
    let factors = rope.and_then(|r| r.factors);
    let q = Tensor::empty(&gpu, &[1, nq], dtype)?;
    let groups = to_u32(OP, "row groups", (nq + 2 * nkv) / GEMV_ROWS)?;
    gpu.check_workgroups("quant::gemv_qkv output groups", groups)?;
    let params = Params {
        m: 1,
        n: to_u32(OP, "n", nq)?,
        k: to_u32(OP, "k", k)?,
        x_offset: x.offset_elements(),
        out_offset: q.offset_elements(),
        n_kv: to_u32(OP, "n_kv", nkv)?,
        k_offset: k_out.offset_elements(),
        v_offset: v_out.offset_elements(),
        pos: rope.map_or(Ok(0), |r| to_u32(OP, "position", r.pos))?,
        theta: rope.map_or(0.0, |r| r.theta),
        head_dim: rope.map_or(Ok(0), |r| to_u32(OP, "head_dim", r.head_dim))?,
        eps: norm.map_or(0.0, |n| n.eps),
        norm_offset: norm.map_or(0, |n| n.weight.offset_elements()),
        factor_offset: factors.map_or(0, Tensor::offset_elements),
        ..Params::default()
    };
    let (name, body) = shader(&gpu);
    let pipeline = gpu.pipeline(&KernelSource {
        name,
        body,
        dtype,
        entry: "gemv_qkv",
        constants: &tuned(vec![
            ("QTYPE", qtype_constant(wq.qtype())),
            ("QTYPE_V", qtype_constant(wv.qtype())),
            ("NORM", f64::from(u8::from(norm.is_some()))),
            ("HAS_FACTORS", f64::from(u8::from(factors.is_some()))),
            (
                "NEOX",
                f64::from(u8::from(rope.is_some_and(|r| r.rotate_half))),
            ),
        ]),
    });
    let bindings = [
        (slot::W, wq.buffer()),
        (slot::X, x.buffer()),
        (slot::OUT, q.buffer()),
        (slot::W_UP, wk.buffer()),
        (slot::W_V, wv.buffer()),
        (slot::OUT_K, k_out.buffer()),
        (slot::OUT_V, v_out.buffer()),
        // The norm weight and RoPE's factors; x stands in for either when there is none (bound,
        // never read).
        (slot::NORM_W, norm.map_or(x, |n| n.weight).buffer()),
        (slot::ROPE_FACTORS, factors.unwrap_or(x).buffer()),
    ];
    rec.dispatch_at(&pipeline, &bindings, slot::PARAMS, &params, [groups, 1, 1]);
    Ok(q)
}

/// The whole matrix dequantized to `dtype` (f32, or f16 on adapters with `shader-f16`): `[n, k]`.
pub fn dequantize(rec: &mut Recorder, w: &QTensor, dtype: DType) -> Result<Tensor> {
    rows(rec, w, None, dtype)
}

/// Rows of `w` picked by `ids` (i32, any shape): `[..ids, k]`, as an embedding lookup does. Ids out of
/// range give rows of zeros (callers check token ids on the CPU; sampled ids are in range).
pub fn gather(rec: &mut Recorder, w: &QTensor, ids: &Tensor, dtype: DType) -> Result<Tensor> {
    rows(rec, w, Some(ids), dtype)
}

fn rows(rec: &mut Recorder, w: &QTensor, ids: Option<&Tensor>, dtype: DType) -> Result<Tensor> {
    const OP: &str = "quant::dequantize";
    let gpu = rec.gpu().clone();
    if dtype == DType::I32 || (dtype == DType::F16 && !gpu.capabilities().shader_f16) {
        return Err(Error::DType {
            op: OP,
            message: "dequantizes to f32, or to f16 on adapters with shader-f16".into(),
            got: dtype,
        });
    }
    let &[n, k] = w.shape() else {
        return Err(Error::shape(
            OP,
            format!("weight {:?} must be 2-D", w.shape()),
        ));
    };
    let (shape, m) = match ids {
        Some(ids) => {
            if ids.dtype() != DType::I32 {
                return Err(Error::DType {
                    op: OP,
                    message: "ids must be i32".into(),
                    got: ids.dtype(),
                });
            }
            let mut shape = ids.shape().to_vec();
            shape.push(k);
            (shape, ids.numel())
        }
        None => (vec![n, k], n),
    };
    let out = Tensor::empty(&gpu, &shape, dtype)?;
    let threads = to_u32(OP, "blocks", m * (k / 32))?;
    if threads == 0 {
        return Ok(out);
    }
    let params = Params {
        m: to_u32(OP, "rows", m)?,
        n: to_u32(OP, "n", n)?,
        k: to_u32(OP, "k", k)?,
        out_offset: 0,
        ids_offset: ids.map_or(0, Tensor::offset_elements),
        ..Params::default()
    };
    let entry = if ids.is_some() { "gather" } else { "dequant" };
    let (name, body) = shader(&gpu);
    let pipeline = gpu.pipeline(&KernelSource {
        name,
        body,
        dtype,
        entry,
        constants: &[("QTYPE", qtype_constant(w.qtype()))],
    });
    let grid = grid_1d(&gpu, OP, threads.div_ceil(256))?;
    let mut bindings = vec![(slot::W, w.buffer()), (slot::OUT, out.buffer())];
    if let Some(ids) = ids {
        bindings.push((slot::IDS, ids.buffer()));
    }
    rec.dispatch_at(&pipeline, &bindings, slot::PARAMS, &params, grid);
    Ok(out)
}
