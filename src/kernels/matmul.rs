//! Tiled matrix multiplication, `shaders/matmul.wgsl`: batched, with B as `[K, N]` or as `[N, K]` (the
//! `[out, in]` layout of linear-layer weights), f32 accumulation for f32 and f16 storage.

use crate::error::{Error, Result};
use crate::kernels::activation::Activation;
use crate::kernels::{check_dtypes, to_u32};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

mod dims;
mod split;
use dims::Dims;

const SHADER: &str = concat!(
    include_str!("../../shaders/activation_fns.wgsl"),
    include_str!("../../shaders/matmul_common.wgsl"),
    include_str!("../../shaders/matmul.wgsl"),
    include_str!("../../shaders/matmul_tiled_vec.wgsl")
);
const COOP_SHADER: &str = concat!(
    include_str!("../../shaders/activation_fns.wgsl"),
    include_str!("../../shaders/matmul_common.wgsl"),
    include_str!("../../shaders/matmul_coop.wgsl")
);
/// The tensor-core kernel for f32 activations times f16 weights: the module's `T` is f32 (bias and
/// output), so f16 is enabled here.
const COOP_MIXED_SHADER: &str = concat!(
    "enable f16;\n",
    include_str!("../../shaders/activation_fns.wgsl"),
    include_str!("../../shaders/matmul_common.wgsl"),
    include_str!("../../shaders/matmul_coop.wgsl")
);

/// The shaders' bindings (matmul.wgsl, matmul_tiled_vec.wgsl, matmul_coop.wgsl).
mod slot {
    pub const A: u32 = 0;
    pub const B: u32 = 1;
    pub const BIAS: u32 = 2;
    pub const C: u32 = 3;
    pub const PARAMS: u32 = 4;
    /// `a` and `b` as vec4s (Kernel::Tiled128's vec4 variant).
    pub const A_V: u32 = 5;
    pub const B_V: u32 = 6;
    /// The epilogue's residual.
    pub const RES: u32 = 7;
}

/// How the second operand is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BLayout {
    /// `b` is `[.., K, N]`: plain `a · b`.
    KN,
    /// `b` is `[.., N, K]`: `a · bᵀ`, as PyTorch's `Linear` stores its weight.
    NK,
}

/// Which kernel computes the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// By shape: [`Kernel::Gemv`] for one or two rows, [`Kernel::Tiled16`] up to 32 rows; then
    /// [`Kernel::Coop`] for f16 where the device has it and the shape allows; else
    /// [`Kernel::Tiled128`] when there are at least 64 such tiles to spread over the GPU,
    /// [`Kernel::Tiled16`] when there would be fewer than 64 tiles of 64×64 (a product of a short
    /// text's rows waits on memory with so few workgroups: MiniLM 1 × 128 3.1 → 2.3 ms on an H100),
    /// else [`Kernel::Tiled64`].
    Auto,
    /// 16×64 workgroup tiles, 1×4 outputs a thread: for a few rows (short texts).
    Tiled16,
    /// 64×64 workgroup tiles, 4×4 outputs a thread.
    Tiled64,
    /// 128×128 workgroup tiles, 8×8 outputs a thread held as vec4 accumulators; with vec4 reads
    /// and the next K step fetched during the current one's products where K (and N for
    /// [`BLayout::KN`]) and the offsets are multiples of 4.
    Tiled128,
    /// One workgroup per few outputs of one row of `a` (decoding).
    Gemv,
    /// f16 on tensor cores (native only, [`crate::Capabilities::cooperative_matrix`]): 128×128
    /// workgroup tiles of 16×16 cooperative-matrix products, f32 accumulation. Needs K, the operands'
    /// offsets (and N for [`BLayout::KN`]) to be multiples of 8. Also the mixed product of f32
    /// activations `a` and f16 weights `b` (f32 bias and output; `a` is rounded to f16 as it is
    /// staged): the only kernel that takes operands of two types. Under [`Kernel::Auto`] products
    /// with fewer than [`coop128_min_tiles`] such tiles take [`Kernel::Coop64`]. K steps of 64 for
    /// products of up to [`COOP_BK64_MAX_TILES`] tiles, else of 32.
    Coop,
    /// [`Kernel::Coop`] with 64×64 workgroup tiles (4 subgroups of 2×2 accumulators).
    Coop64,
    /// No workgroup memory and no barriers, 4×4 outputs a thread read straight from `a` and `b`:
    /// what [`Kernel::Auto`] picks on CPU adapters (SwiftShader, llvmpipe), where barriers are costly.
    Direct,
}

/// What happens to each output before it is stored: `activation(c + bias) + residual`.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// `[N]`, added to every row.
    pub bias: Option<&'a Tensor>,
    pub activation: Option<Activation>,
    /// Of the output's shape and type, added after the activation (a residual connection: one
    /// kernel instead of a matmul and an add).
    pub residual: Option<&'a Tensor>,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    a_batch_stride: u32,
    b_batch_stride: u32,
    a_offset: u32,
    b_offset: u32,
    c_offset: u32,
    has_bias: u32,
    has_res: u32,
    res_offset: u32,
    bias_offset: u32,
    /// > 0: a bias a batch entry, this many elements apart ([`linear_stacked`]).
    bias_stride: u32,
    /// > 1: K split in this many parts, workgroup z = batch · k_split + part (`split`).
    k_split: u32,
    /// A part's length of K.
    k_chunk: u32,
}

/// `a · b` (or `a · bᵀ`) for `a` of shape `[.., M, K]`. `b` is a single matrix, shared by every batch
/// entry, or has the same leading (batch) axes as `a`. The result has shape `[.., M, N]` and `a`'s type.
///
/// ```no_run
/// # async fn demo(gpu: &webgpu_infer::Gpu) -> webgpu_infer::Result<()> {
/// use webgpu_infer::{Tensor, kernels::matmul::{matmul, BLayout}};
/// let x = Tensor::from_f32(gpu, &[1.0, 2.0], &[1, 2])?;           // [M=1, K=2]
/// let w = Tensor::from_f32(gpu, &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2])?; // [out=3, in=2]
/// let mut rec = gpu.recorder();
/// let y = matmul(&mut rec, &x, &w, BLayout::NK)?;                  // [1, 3]
/// rec.submit();
/// assert_eq!(y.to_f32_vec().await?, vec![1.0, 2.0, 3.0]);
/// # Ok(()) }
/// ```
pub fn matmul(rec: &mut Recorder, a: &Tensor, b: &Tensor, layout: BLayout) -> Result<Tensor> {
    matmul_with(rec, a, b, layout, Epilogue::default(), Kernel::Auto)
}

/// A linear layer: `activation(x · weightᵀ + bias)` for `weight [out, in]`, in one kernel.
pub fn linear(
    rec: &mut Recorder,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    activation: Option<Activation>,
) -> Result<Tensor> {
    let epilogue = Epilogue {
        bias,
        activation,
        residual: None,
    };
    matmul_with(rec, x, weight, BLayout::NK, epilogue, Kernel::Auto)
}

/// A kernel's entry point and its workgroup grid (column tiles, row tiles, batch).
fn grid_of(kernel: Kernel, dims: &Dims, layout: BLayout) -> (&'static str, [usize; 3]) {
    let tiles =
        |cols: usize, rows: usize| [dims.n.div_ceil(cols), dims.m.div_ceil(rows), dims.batch];
    match kernel {
        Kernel::Gemv => {
            let per_group = if layout == BLayout::NK { 4 } else { 256 };
            ("gemv", [dims.n.div_ceil(per_group), dims.m, dims.batch])
        }
        Kernel::Tiled16 => ("tiled16", tiles(64, 16)),
        Kernel::Direct => ("direct", tiles(32, 32)),
        Kernel::Tiled128 => ("tiled128", tiles(128, 128)),
        Kernel::Coop => ("coop", tiles(128, 128)),
        Kernel::Coop64 => ("coop64", tiles(64, 64)),
        _ => ("tiled", tiles(64, 64)),
    }
}

/// [`matmul`] with a fused epilogue and a choice of kernel.
pub fn matmul_with(
    rec: &mut Recorder,
    a: &Tensor,
    b: &Tensor,
    layout: BLayout,
    epilogue: Epilogue<'_>,
    kernel: Kernel,
) -> Result<Tensor> {
    let dims = Dims::of(a.shape(), b.shape(), layout)?;
    let mut out_shape = a.shape()[..a.shape().len() - 2].to_vec();
    out_shape.extend([dims.m, dims.n]);
    product(rec, [a, b], layout, epilogue, kernel, dims, out_shape)
}

/// Several linear layers of one input in one product (BERT's Q, K and V): `x [.., K]` times each of
/// `w [P, N, K]`'s P weights, plus its row of `bias [P, N]`: `[P, .., N]`, the P results one after
/// another (each a view for [`Tensor::narrow`]). One dispatch whose workgroups cover the P products.
pub fn linear_stacked(
    rec: &mut Recorder,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    kernel: Kernel,
) -> Result<Tensor> {
    let (&[parts, n, k], Some(&xk)) = (w.shape(), x.shape().last()) else {
        return Err(Error::shape(
            "linear_stacked",
            format!("weights must be [P, N, K], got {:?}", w.shape()),
        ));
    };
    if xk != k || bias.is_some_and(|b| b.shape() != [parts, n]) {
        return Err(Error::shape(
            "linear_stacked",
            format!(
                "x {:?}, weights {:?} and bias {:?} must be [.., K], [P, N, K] and [P, N]",
                x.shape(),
                w.shape(),
                bias.map(Tensor::shape)
            ),
        ));
    }
    let m = x.numel() / k.max(1);
    let dims = Dims {
        batch: parts,
        m,
        n,
        k,
        b_batched: true,
        a_shared: true,
    };
    let mut out_shape = vec![parts];
    out_shape.extend(&x.shape()[..x.shape().len() - 1]);
    out_shape.push(n);
    let epilogue = Epilogue {
        bias,
        ..Default::default()
    };
    product(rec, [x, w], BLayout::NK, epilogue, kernel, dims, out_shape)
}

/// One product of checked sizes: `dims.batch` products into `out_shape`. With `dims.a_shared`
/// ([`linear_stacked`]) one `a` serves every entry and the bias is `[batch, N]`.
fn product(
    rec: &mut Recorder,
    [a, b]: [&Tensor; 2],
    layout: BLayout,
    epilogue: Epilogue<'_>,
    kernel: Kernel,
    dims: Dims,
    out_shape: Vec<usize>,
) -> Result<Tensor> {
    const OP: &str = "matmul";
    let gpu = rec.gpu().clone();
    let bias = epilogue.bias.unwrap_or(a); // placeholder when absent: bound, never read
    // f32 activations times f16 weights: tensor cores only.
    let mixed = a.dtype() == DType::F32 && b.dtype() == DType::F16;
    let dtype = if mixed {
        check_dtypes(OP, &gpu, &[a, bias])?;
        check_dtypes(OP, &gpu, &[b])?;
        if !gpu.capabilities().cooperative_matrix {
            return Err(Error::DType {
                op: OP,
                message: "f32 activations times f16 weights run only on tensor cores \
                          (wgpu-cooperative-matrix, native), which this device lacks; give both \
                          operands one type"
                    .into(),
                got: DType::F16,
            });
        }
        if !matches!(kernel, Kernel::Auto | Kernel::Coop | Kernel::Coop64) {
            return Err(Error::DType {
                op: OP,
                message: format!(
                    "f32 activations times f16 weights run only on tensor cores (Kernel::Auto or \
                     Kernel::Coop), not {kernel:?}"
                ),
                got: DType::F16,
            });
        }
        DType::F32
    } else {
        check_dtypes(OP, &gpu, &[a, b, bias])?
    };
    let bias_shape = if dims.a_shared {
        vec![dims.batch, dims.n]
    } else {
        vec![dims.n]
    };
    if epilogue.bias.is_some() && bias.shape() != bias_shape.as_slice() {
        return Err(Error::shape(
            OP,
            format!("bias {:?} must be {bias_shape:?}", bias.shape()),
        ));
    }
    if let Some(r) = epilogue.residual
        && (r.shape() != out_shape.as_slice() || r.dtype() != dtype)
    {
        return Err(Error::shape(
            OP,
            format!(
                "residual {:?} {:?} must have the output's shape and type, {out_shape:?} {dtype:?}",
                r.shape(),
                r.dtype()
            ),
        ));
    }
    let c = Tensor::empty(&gpu, &out_shape, dtype)?;
    if c.numel() == 0 {
        return Ok(c);
    }
    let params = Params {
        m: to_u32(OP, "M", dims.m)?,
        n: to_u32(OP, "N", dims.n)?,
        k: to_u32(OP, "K", dims.k)?,
        a_batch_stride: if dims.a_shared {
            0
        } else {
            to_u32(OP, "M*K", dims.m * dims.k)?
        },
        b_batch_stride: if dims.b_batched {
            to_u32(OP, "K*N", dims.k * dims.n)?
        } else {
            0
        },
        a_offset: a.offset_elements(),
        b_offset: b.offset_elements(),
        c_offset: c.offset_elements(),
        has_bias: u32::from(epilogue.bias.is_some()),
        has_res: u32::from(epilogue.residual.is_some()),
        res_offset: epilogue.residual.map_or(0, Tensor::offset_elements),
        bias_offset: epilogue.bias.map_or(0, Tensor::offset_elements),
        bias_stride: if dims.a_shared && epilogue.bias.is_some() {
            to_u32(OP, "N", dims.n)?
        } else {
            0
        },
        k_split: 1,
        k_chunk: 0,
    };
    let coop = coop_fits(&gpu, b.dtype(), &dims, layout, &params);
    let kernel = match kernel {
        Kernel::Auto if mixed => {
            // No other kernel takes mixed operands: say so rather than point at Kernel::Auto.
            coop.map_err(|_| {
                Error::shape(
                    OP,
                    format!(
                        "f32 activations times f16 weights run only on tensor cores, which need K \
                         ({}), the operands' offsets (and N for BLayout::KN) to be multiples of 8; \
                         give both operands one type for other shapes",
                        dims.k
                    ),
                )
            })?;
            dims.coop_kernel()
        }
        Kernel::Auto if gpu.capabilities().cpu_kernels && dims.m > 2 => Kernel::Direct,
        Kernel::Auto if dims.m > 32 && coop.is_ok() => dims.coop_kernel(),
        Kernel::Auto => dims.auto_kernel(),
        Kernel::Coop | Kernel::Coop64 => {
            coop?;
            kernel
        }
        k => k,
    };
    let (mut entry, groups) = grid_of(kernel, &dims, layout);
    // A variant that reads `a` and `b` through other views (bindings 5 and 6).
    let variant = match kernel {
        Kernel::Tiled128 => tiled128_vec_entry(&dims, layout, &params),
        _ => None,
    };
    let vec4 = variant.is_some();
    entry = variant.unwrap_or(entry);
    let tiles: usize = groups.iter().product();
    let coop_kernel = matches!(kernel, Kernel::Coop | Kernel::Coop64);
    let coop_bk = if coop_kernel {
        coop_k_step(&gpu, tiles)
    } else {
        0
    };
    // Few tiles and a long K: the parts of K on workgroups of their own (f32 results only: the
    // partial sums are f32), added up with the epilogue by a second dispatch.
    let (parts, chunk) = match kernel {
        Kernel::Coop64 if dtype == DType::F32 => split::plan(tiles, dims.k, coop_bk as usize),
        Kernel::Tiled16 | Kernel::Tiled64 if dtype == DType::F32 => split::plan(tiles, dims.k, 16),
        _ => (1, dims.k),
    };
    let groups = [
        to_u32(OP, "columns", groups[0])?,
        to_u32(OP, "rows", groups[1])?,
        to_u32(OP, "batch", groups[2] * parts)?,
    ];
    gpu.check_workgroups("matmul column tiles", groups[0])?;
    gpu.check_workgroups("matmul row tiles", groups[1])?;
    gpu.check_workgroups("matmul batch", groups[2])?;
    let act = Activation::code(if parts > 1 { None } else { epilogue.activation });
    let (name, body) = match kernel {
        Kernel::Coop | Kernel::Coop64 if mixed => ("matmul_coop", COOP_MIXED_SHADER),
        Kernel::Coop | Kernel::Coop64 => ("matmul_coop", COOP_SHADER),
        _ => ("matmul", SHADER),
    };
    let mut constants = vec![
        ("TRANS_B", f64::from(u8::from(layout == BLayout::NK))),
        ("ACT", f64::from(act)),
    ];
    let band = SWIZZLE.get().unwrap_or(SWIZZLE_BAND);
    if vec4 && band > 0 {
        constants.push(("SWIZZLE", band as f64));
    }
    if coop_kernel {
        // Only the tensor-core module declares them.
        constants.push(("A_F32", f64::from(u8::from(mixed))));
        if coop_bk == 64 {
            constants.push(("BK", 64.0));
        }
    }
    let pipeline = gpu.pipeline(&crate::gpu::KernelSource {
        name,
        body,
        dtype,
        entry,
        constants: &constants,
    });
    // The residual's placeholder when there is none: bound, never read.
    let res = epilogue.residual.unwrap_or(a);
    // The vec4 variant reads `a` and `b` through their vec4 views (bindings 5 and 6).
    let (a_at, b_at) = if vec4 {
        (slot::A_V, slot::B_V)
    } else {
        (slot::A, slot::B)
    };
    // Split K: the parts' sums go to a partial buffer, then the reduction writes `c`.
    let partial = (parts > 1)
        .then(|| split::partial(&gpu, &dims, &params, parts, chunk))
        .transpose()?;
    let (target, run_params) = partial.as_ref().map_or((&c, params), |(t, p)| (t, *p));
    let bindings = [
        (a_at, a.buffer()),
        (b_at, b.buffer()),
        (slot::BIAS, bias.buffer()),
        (slot::C, target.buffer()),
        (slot::RES, res.buffer()),
    ];
    rec.dispatch_at(&pipeline, &bindings, slot::PARAMS, &run_params, groups);
    if let Some((partial, _)) = partial {
        let act = epilogue.activation;
        split::reduce(rec, &partial, &c, &params, parts, act, [bias, res])?;
    }
    Ok(c)
}

/// Whether [`Kernel::Coop`] can run this product, or why not.
fn coop_fits(
    gpu: &crate::Gpu,
    dtype: crate::DType,
    dims: &Dims,
    layout: BLayout,
    params: &Params,
) -> Result<()> {
    const OP: &str = "matmul (Kernel::Coop)";
    if !gpu.capabilities().cooperative_matrix {
        return Err(Error::MissingFeature {
            op: OP,
            feature: "wgpu-cooperative-matrix (16x16x16 f16, 32-wide subgroups; native only)",
        });
    }
    if dtype != crate::DType::F16 {
        return Err(Error::shape(
            OP,
            format!("runs f16 weights (b), got {dtype:?}"),
        ));
    }
    if !vectors_fit(dims, layout, params, 8) {
        return Err(Error::shape(
            OP,
            format!(
                "K ({}), the operands' offsets (and N for BLayout::KN) must be multiples of 8; use \
                 Kernel::Auto to fall back",
                dims.k
            ),
        ));
    }
    Ok(())
}

/// The 128×128 tiles from this many of them (fewer: 64×64). Natively 64. In browsers 256: through
/// Dawn (Chrome's WebGPU) on an H100 the 64×64 tiles took 0.185 ms of GPU time at 1024³ against
/// 0.223 (64 tiles of 128) and tied on MiniLM's products; through Deno's wgpu the kernel benchmark
/// favoured 128×128 at 1024³ (0.121 against 0.166 ms) while MiniLM 32 × 128's summed kernel time fell
/// 12.9 → 10.1 ms with this choice (`bench-results/web-h100-tiles-ab-2026-12-05.jsonl`).
const TILED128_MIN_TILES: usize = if cfg!(target_arch = "wasm32") {
    256
} else {
    64
};

/// [`Kernel::Coop`]'s 128×128 tiles from this many of them; fewer take [`Kernel::Coop64`]. Timed
/// alone, the 128×128 tiles won at every MiniLM-shaped product on an H200 (even 128 × 384 × 384, 3
/// tiles: 1.32 against 1.70 µs of GPU time; `bench-results/h200-tensor-cores-ab-2026-12-06.jsonl`).
/// In the forward pass on an H100 (`bench-results/h100-coop-tiles-ab-2026-12-06.jsonl`, two rounds,
/// this threshold at 128 / 32 / 0): MiniLM 32 × 128 (products of 96–384 tiles) took 4.8–5.1 / 3.6–3.7
/// / 3.6–3.8 ms, 8 × 128 (24–96 tiles) 2.2–2.3 / 2.0–2.2 / 2.1–2.3, 1 × 128 (3–12 tiles) 1.46 / 1.57–1.61
/// / 1.65–1.68 (at 1 × 128, 128 and 32 choose the same kernels: that spread is run order, not the
/// kernel). Natively `WEBGPU_INFER_COOP128_MIN_TILES` moves it (read once), for such measurements.
pub fn coop128_min_tiles() -> usize {
    static TILES: super::Tuned = super::Tuned::new("WEBGPU_INFER_COOP128_MIN_TILES");
    TILES.get().unwrap_or(32)
}

/// Products of at most this many workgroup tiles step K 64 at a time on tensor cores, larger ones 32.
/// On an H100 (2026-12-07, one call, the same binary with `WEBGPU_INFER_COOP_BK=64` and without;
/// `bench-results/h100-matmul-bk-ab-2026-12-07.jsonl`, `h100-minilm-bk-ab-2026-12-07.jsonl`): GPU
/// time of f16 products 512³ 41.3 → 48.1 TFLOP/s, 1024³ 114.2 → 118.9, 2048³ (256 tiles) 145.5 →
/// 149.4, MiniLM's 128 × 1536 × 384 36.8 → 48.3, but 4096³ (1 024 tiles) 157.8 → 149.1; MiniLM 1 /
/// 8 / 32 × 128 1.75–1.81 / 2.49–2.61 / 4.14–4.20 → 1.60–1.65 / 2.15–2.41 / 4.00–4.08 ms.
pub const COOP_BK64_MAX_TILES: usize = 512;

/// The tensor-core kernels' K step (the shader's BK) for a product of `tiles` workgroup tiles: 64
/// (half the K steps and barriers; the tiles in workgroup memory twice as long, 44 KiB of it, where
/// the device allows that much) up to [`COOP_BK64_MAX_TILES`], else 32. Natively
/// `WEBGPU_INFER_COOP_BK=32|64` sets it for every product, for A/B runs.
fn coop_k_step(gpu: &crate::Gpu, tiles: usize) -> u32 {
    static BK: super::Tuned = super::Tuned::new("WEBGPU_INFER_COOP_BK");
    let fits = gpu.limits().max_compute_workgroup_storage_size >= 2 * 128 * 72 * 2 + 2048 * 4;
    match BK.get() {
        Some(32) => 32,
        Some(64) if fits => 64,
        _ if fits && tiles <= COOP_BK64_MAX_TILES => 64,
        _ => 32,
    }
}

/// [`Kernel::Tiled128`]'s vec4 variant walks its tiles in bands of this many row tiles (`SWIZZLE` in
/// `shaders/matmul_tiled_vec.wgsl`): workgroups running together share rows of `a` and columns of `b`
/// in the L2 cache. On an H100 (Vulkan, 2026-12-07, one call, `bench_kernels --ops matmul` with bands
/// of 0 (grid order) / 8 / 4; `bench-results/h100-matmul-swizzle-ab-2026-12-07.jsonl`) f32 GPU time
/// at 4096³ went 33.6 → 37.1 / 37.2 TFLOP/s, 2048³ 33.4 → 36.5 / 36.2, 1024³ 32.7 → 35.6 / 35.9.
/// Natively `WEBGPU_INFER_MATMUL_SWIZZLE=G` sets the band (0: grid order), for A/B runs.
const SWIZZLE_BAND: usize = 4;
static SWIZZLE: super::Tuned = super::Tuned::new("WEBGPU_INFER_MATMUL_SWIZZLE");

/// [`Kernel::Tiled128`] with vec4 reads and the next K step fetched into registers during the
/// current one's products (`shaders/matmul_tiled_vec.wgsl`), where K, the offsets and batch strides
/// (and N for [`BLayout::KN`]) are multiples of 4. On an H100 (Vulkan, 2026-12-07, `bench_kernels
/// --ops matmul` with and without it in one call, `bench-results/h100-kernels-ab-2026-12-07.jsonl`)
/// f32 at 4096³ went 26.2 → 34.0 TFLOP/s of wall time, 1024³ 25.4 → 32.2 (cuBLAS: 50.6, 24.2).
/// Natively `WEBGPU_INFER_TILED128_VEC=0` turns it off, for A/B runs.
fn tiled128_vec_entry(dims: &Dims, layout: BLayout, params: &Params) -> Option<&'static str> {
    static VEC: super::Tuned = super::Tuned::new("WEBGPU_INFER_TILED128_VEC");
    (VEC.get() != Some(0) && vectors_fit(dims, layout, params, 4)).then_some("tiled128v")
}

/// Whether vectors of `width` elements read along K (and along N for [`BLayout::KN`]) are whole and
/// aligned: K, the operands' offsets and batch strides (and N for `KN`) are multiples of `width`.
fn vectors_fit(dims: &Dims, layout: BLayout, params: &Params, width: u32) -> bool {
    let aligned = [
        params.k,
        params.a_offset,
        params.b_offset,
        params.a_batch_stride,
        params.b_batch_stride,
    ]
    .iter()
    .all(|v| v.is_multiple_of(width));
    aligned && (layout == BLayout::NK || dims.n.is_multiple_of(width as usize))
}

/// Floating-point operations of one product, for benchmarks: 2·batch·M·N·K.
pub fn flops(batch: usize, m: usize, n: usize, k: usize) -> f64 {
    2.0 * batch as f64 * m as f64 * n as f64 * k as f64
}
