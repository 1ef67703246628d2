//! 2-D convolution over NHWC tensors, `shaders/conv.wgsl`: stride, padding (explicit, TF's "SAME",
//! "VALID"), groups including depthwise, and a fused epilogue `act(conv + bias) + residual`.
//! Pointwise convolutions (1×1, stride 1, no padding, one group) run as a matrix product instead.

use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::activation::Activation;
use crate::kernels::{check_dtypes, elementwise, image, matmul, to_u32};
use crate::recorder::Recorder;
use crate::tensor::Tensor;

const SHADER: &str = concat!(
    include_str!("../../shaders/activation_fns.wgsl"),
    include_str!("../../shaders/conv.wgsl")
);

/// How the input is padded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Zeros on each side: `[top, bottom, left, right]` (PyTorch's `padding=p` is `[p, p, p, p]`).
    Explicit([usize; 4]),
    /// TensorFlow's "SAME": output size `ceil(in / stride)`, the padding split with the odd pixel at
    /// the bottom/right (what EfficientNet's TF-ported weights expect).
    Same,
    /// No padding.
    Valid,
}

/// A convolution's geometry (the kernel size comes from the weight's shape).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// `[vertical, horizontal]`.
    pub stride: [usize; 2],
    pub padding: Padding,
    /// Channel groups: 1 for a dense convolution, `in_channels` for a depthwise one.
    pub groups: usize,
}

impl Default for Conv2d {
    fn default() -> Self {
        Conv2d {
            stride: [1, 1],
            padding: Padding::Valid,
            groups: 1,
        }
    }
}

/// Which implementation runs a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kernel {
    /// `Direct` (pointwise convolutions are a matrix product either way). On the H100 `Im2col` is 2.6×
    /// faster for a 3×3, 64-channel f32 convolution on a 128² tile but 5× slower for a 5×5 one and
    /// slower in f16 (`bench-results/conv-h100-vulkan.jsonl`), and it needs a scratch matrix of
    /// pixels × C·KH·KW, so it is not chosen automatically yet.
    #[default]
    Auto,
    /// The direct kernel (`conv`, `depthwise` in `shaders/conv.wgsl`): no scratch memory.
    Direct,
    /// Unfold the input (`im2col`, `shaders/image.wgsl`) and multiply by the weight with the tiled
    /// matmul: more memory traffic, tensor-core-free GEMM speed. Dense (one group) only.
    Im2col,
}

/// The old name of [`Kernel`] (every kernel module names its choice of kernel `Kernel`, `Auto` first).
#[deprecated(
    since = "0.1.0",
    note = "renamed `Kernel`: one name for every module's choice of kernel"
)]
pub type ConvKernel = Kernel;

/// What happens to each output before it is stored: `activation(conv + bias) + residual`.
#[derive(Clone, Copy, Default)]
pub struct ConvEpilogue<'a> {
    /// `[out_channels]`.
    pub bias: Option<&'a Tensor>,
    pub activation: Option<Activation>,
    /// A tensor of the output's shape, added last (a residual connection).
    pub residual: Option<&'a Tensor>,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    out_h: u32,
    out_w: u32,
    out_c: u32,
    groups: u32,
    k_h: u32,
    k_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    cin_g: u32,
    cout_g: u32,
    x_offset: u32,
    out_offset: u32,
    res_offset: u32,
    has_bias: u32,
    has_res: u32,
    _pad: [u32; 3],
}

/// Output size and leading padding of one spatial axis.
fn axis(
    op: &'static str,
    input: usize,
    kernel: usize,
    stride: usize,
    padding: Padding,
    before_after: (usize, usize),
) -> Result<(usize, usize)> {
    let (out, before) = match padding {
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out.max(1) - 1) * stride + kernel).saturating_sub(input);
            (out, total / 2)
        }
        Padding::Valid | Padding::Explicit(_) => {
            let (before, after) = if padding == Padding::Valid {
                (0, 0)
            } else {
                before_after
            };
            let padded = input + before + after;
            if padded < kernel {
                return Err(Error::shape(
                    op,
                    format!(
                        "the padded input ({padded}) is smaller than the kernel ({kernel}): nothing to compute"
                    ),
                ));
            }
            ((padded - kernel) / stride + 1, before)
        }
    };
    if before >= kernel {
        return Err(Error::shape(
            op,
            format!("padding {before} must be smaller than the kernel ({kernel})"),
        ));
    }
    Ok((out, before))
}

/// `conv2d(x, weight)` for `x [N, H, W, C_in]` (NHWC) and `weight [C_out, C_in / groups, KH, KW]`
/// (PyTorch's layout): `[N, OH, OW, C_out]`, with the epilogue fused.
///
/// ```no_run
/// # async fn demo(gpu: &webgpu_infer::Gpu) -> webgpu_infer::Result<()> {
/// use webgpu_infer::{Tensor, kernels::conv::{conv2d, Conv2d, ConvEpilogue, Padding}};
/// let image = Tensor::from_f32(gpu, &[1.0; 4 * 4 * 3], &[1, 4, 4, 3])?;   // NHWC
/// let weight = Tensor::from_f32(gpu, &[1.0; 8 * 3 * 3 * 3], &[8, 3, 3, 3])?; // [out, in, kh, kw]
/// let conv = Conv2d { stride: [2, 2], padding: Padding::Same, groups: 1 };
/// let mut rec = gpu.recorder();
/// let y = conv2d(&mut rec, &image, &weight, &conv, ConvEpilogue::default())?; // [1, 2, 2, 8]
/// rec.submit();
/// # Ok(()) }
/// ```
pub fn conv2d(
    rec: &mut Recorder,
    x: &Tensor,
    weight: &Tensor,
    conv: &Conv2d,
    epilogue: ConvEpilogue<'_>,
) -> Result<Tensor> {
    conv2d_with(rec, x, weight, conv, epilogue, Kernel::Auto)
}

/// [`conv2d`] with a choice of implementation.
pub fn conv2d_with(
    rec: &mut Recorder,
    x: &Tensor,
    weight: &Tensor,
    conv: &Conv2d,
    epilogue: ConvEpilogue<'_>,
    kernel: Kernel,
) -> Result<Tensor> {
    let gpu = rec.gpu().clone();
    let bias = epilogue.bias.unwrap_or(x); // placeholders when absent: bound, never read
    let residual = epilogue.residual.unwrap_or(x);
    let dtype = check_dtypes(OP, &gpu, &[x, weight, bias, residual])?;
    let g = geometry(x, weight, conv, &epilogue)?;
    // Pointwise: a matrix product over the pixels, [N·H·W, C_in] · [C_out, C_in]ᵀ.
    let pointwise = g.k_h == 1
        && g.k_w == 1
        && g.groups == 1
        && conv.stride == [1, 1]
        && g.pad_top == 0
        && g.pad_left == 0;
    if pointwise || (kernel == Kernel::Im2col && g.groups == 1) {
        return as_matmul(rec, x, weight, conv, &epilogue, &g, pointwise);
    }
    direct(rec, [x, weight, bias, residual], conv, &epilogue, &g, dtype)
}

const OP: &str = "conv2d";

/// A convolution's sizes, checked.
struct Geometry {
    batch: usize,
    in_h: usize,
    in_w: usize,
    in_c: usize,
    out_c: usize,
    cin_g: usize,
    groups: usize,
    k_h: usize,
    k_w: usize,
    out_h: usize,
    out_w: usize,
    pad_top: usize,
    pad_left: usize,
}

impl Geometry {
    fn out_shape(&self) -> [usize; 4] {
        [self.batch, self.out_h, self.out_w, self.out_c]
    }
}

/// Checks the shapes (x NHWC, weight PyTorch's, groups, stride, padding, bias, residual) and works
/// out the output's size and padding.
fn geometry(
    x: &Tensor,
    weight: &Tensor,
    conv: &Conv2d,
    epilogue: &ConvEpilogue<'_>,
) -> Result<Geometry> {
    let &[batch, in_h, in_w, in_c] = x.shape() else {
        return Err(Error::shape(
            OP,
            format!(
                "x must be NHWC [batch, height, width, channels], got {:?}",
                x.shape()
            ),
        ));
    };
    let &[out_c, cin_g, k_h, k_w] = weight.shape() else {
        return Err(Error::shape(
            OP,
            format!(
                "weight must be [out_channels, in_channels / groups, kh, kw], got {:?}",
                weight.shape()
            ),
        ));
    };
    let groups = conv.groups;
    if groups == 0 || in_c % groups != 0 || out_c % groups != 0 || cin_g != in_c / groups {
        return Err(Error::shape(
            OP,
            format!(
                "{groups} groups need in ({in_c}) and out ({out_c}) channels divisible by them and a \
                 weight with in_channels / groups = {} (its shape is {:?})",
                in_c.checked_div(groups).unwrap_or(0),
                weight.shape()
            ),
        ));
    }
    if conv.stride.contains(&0) || k_h == 0 || k_w == 0 {
        return Err(Error::shape(
            OP,
            "stride and kernel size must be at least 1",
        ));
    }
    if weight.offset() != 0 {
        return Err(Error::shape(
            OP,
            "the weight must start at its buffer's beginning",
        ));
    }
    let (pad_v, pad_h) = match conv.padding {
        Padding::Explicit([t, b, l, r]) => ((t, b), (l, r)),
        _ => ((0, 0), (0, 0)),
    };
    let (out_h, pad_top) = axis(OP, in_h, k_h, conv.stride[0], conv.padding, pad_v)?;
    let (out_w, pad_left) = axis(OP, in_w, k_w, conv.stride[1], conv.padding, pad_h)?;
    let out_shape = [batch, out_h, out_w, out_c];
    if let Some(bias) = epilogue.bias
        && bias.shape() != [out_c]
    {
        return Err(Error::shape(
            OP,
            format!("bias {:?} must be [{out_c}]", bias.shape()),
        ));
    }
    if let Some(residual) = epilogue.residual
        && residual.shape() != out_shape
    {
        return Err(Error::shape(
            OP,
            format!(
                "residual {:?} must have the output's shape {out_shape:?}",
                residual.shape()
            ),
        ));
    }
    Ok(Geometry {
        batch,
        in_h,
        in_w,
        in_c,
        out_c,
        cin_g,
        groups,
        k_h,
        k_w,
        out_h,
        out_w,
        pad_top,
        pad_left,
    })
}

/// The convolution as a matrix product: the pixels' channels (`pointwise`) or their im2col patches
/// times the weight's rows, then the residual.
fn as_matmul(
    rec: &mut Recorder,
    x: &Tensor,
    weight: &Tensor,
    conv: &Conv2d,
    epilogue: &ConvEpilogue<'_>,
    g: &Geometry,
    pointwise: bool,
) -> Result<Tensor> {
    let pixels = g.batch * g.out_h * g.out_w;
    let rows = if pointwise {
        x.reshape(&[pixels, g.in_c])?
    } else {
        let pad = [g.pad_top, g.pad_left];
        image::im2col(rec, x, [g.k_h, g.k_w], conv.stride, pad, [g.out_h, g.out_w])?
    };
    let w2 = weight.reshape(&[g.out_c, g.in_c * g.k_h * g.k_w])?;
    let y = matmul::linear(rec, &rows, &w2, epilogue.bias, epilogue.activation)?;
    let y = match epilogue.residual {
        Some(r) => elementwise::add(rec, &y, &r.reshape(&[pixels, g.out_c])?)?,
        None => y,
    };
    y.reshape(&g.out_shape())
}

/// The direct kernels: `depthwise` (one input channel a group) or `conv`, 4 channels × 4 pixels a
/// thread, the epilogue fused.
fn direct(
    rec: &mut Recorder,
    [x, weight, bias, residual]: [&Tensor; 4],
    conv: &Conv2d,
    epilogue: &ConvEpilogue<'_>,
    g: &Geometry,
    dtype: crate::tensor::DType,
) -> Result<Tensor> {
    let gpu = rec.gpu().clone();
    let out = Tensor::empty(&gpu, &g.out_shape(), dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    to_u32(
        OP,
        "input elements",
        x.numel() + x.offset_elements() as usize,
    )?;
    to_u32(OP, "weight elements", weight.numel())?;
    let params = Params {
        batch: to_u32(OP, "batch", g.batch)?,
        in_h: to_u32(OP, "height", g.in_h)?,
        in_w: to_u32(OP, "width", g.in_w)?,
        in_c: to_u32(OP, "in channels", g.in_c)?,
        out_h: to_u32(OP, "output height", g.out_h)?,
        out_w: to_u32(OP, "output width", g.out_w)?,
        out_c: to_u32(OP, "out channels", g.out_c)?,
        groups: to_u32(OP, "groups", g.groups)?,
        k_h: to_u32(OP, "kernel height", g.k_h)?,
        k_w: to_u32(OP, "kernel width", g.k_w)?,
        stride_h: to_u32(OP, "stride", conv.stride[0])?,
        stride_w: to_u32(OP, "stride", conv.stride[1])?,
        pad_top: to_u32(OP, "padding", g.pad_top)?,
        pad_left: to_u32(OP, "padding", g.pad_left)?,
        cin_g: to_u32(OP, "in channels per group", g.cin_g)?,
        cout_g: to_u32(OP, "out channels per group", g.out_c / g.groups)?,
        x_offset: x.offset_elements(),
        out_offset: out.offset_elements(),
        res_offset: residual.offset_elements(),
        has_bias: u32::from(epilogue.bias.is_some()),
        has_res: u32::from(epilogue.residual.is_some()),
        _pad: [0; 3],
    };
    to_u32(OP, "output elements", out.numel())?;
    let (entry, channel_blocks) = if g.cin_g == 1 {
        ("depthwise", g.out_c.div_ceil(4))
    } else {
        ("conv", g.groups * (g.out_c / g.groups).div_ceil(4))
    };
    let pixel_blocks = g.batch * g.out_h * g.out_w.div_ceil(4);
    let x_groups = to_u32(OP, "channel blocks", channel_blocks.div_ceil(16))?;
    let pixel_groups = to_u32(OP, "pixel blocks", pixel_blocks.div_ceil(4))?;
    gpu.check_workgroups("conv2d channel blocks", x_groups)?;
    // Pixel blocks: y, folded into z past the limit (the shader's index is y + z·groups.y·4).
    let max = gpu.limits().max_compute_workgroups_per_dimension;
    let z = pixel_groups.div_ceil(max);
    gpu.check_workgroups("conv2d pixel blocks", z)?;
    let y = pixel_groups.div_ceil(z);
    let pipeline = gpu.pipeline(&KernelSource {
        name: "conv",
        body: SHADER,
        dtype,
        entry,
        constants: &[("ACT", f64::from(Activation::code(epilogue.activation)))],
    });
    rec.dispatch(
        &pipeline,
        &[
            x.buffer(),
            weight.buffer(),
            bias.buffer(),
            residual.buffer(),
            out.buffer(),
        ],
        &params,
        [x_groups, y, z],
    );
    Ok(out)
}

/// Multiply-adds of a convolution, times 2: its FLOPs, for benchmarks.
pub fn flops(out_shape: &[usize], weight_shape: &[usize]) -> f64 {
    let outputs: usize = out_shape.iter().product();
    let per_output: usize = weight_shape[1..].iter().product();
    2.0 * outputs as f64 * per_output as f64
}

#[cfg(test)]
mod tests {
    use super::{Padding, axis};

    #[test]
    fn output_sizes() {
        // TF SAME: 224 -> 112 at stride 2 with a 3x3 kernel, padding 0 before / 1 after.
        assert_eq!(
            axis("t", 224, 3, 2, Padding::Same, (0, 0)).unwrap(),
            (112, 0)
        );
        // 225 -> 113: total padding 2, 1 before.
        assert_eq!(
            axis("t", 225, 3, 2, Padding::Same, (0, 0)).unwrap(),
            (113, 1)
        );
        assert_eq!(axis("t", 7, 5, 1, Padding::Same, (0, 0)).unwrap(), (7, 2));
        assert_eq!(axis("t", 7, 3, 1, Padding::Valid, (0, 0)).unwrap(), (5, 0));
        assert_eq!(
            axis("t", 7, 3, 2, Padding::Explicit([1, 1, 0, 0]), (1, 1)).unwrap(),
            (4, 1)
        );
        assert!(axis("t", 2, 3, 1, Padding::Valid, (0, 0)).is_err());
        assert!(axis("t", 8, 3, 1, Padding::Explicit([3, 3, 0, 0]), (3, 3)).is_err());
    }
}
