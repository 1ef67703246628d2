//! Image-model helpers over NHWC tensors, `shaders/image.wgsl`: global and windowed average pooling,
//! nearest upsampling, channel concatenation, batch-norm folding into convolution weights, and packing
//! to RGBA8.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::{Gpu, KernelSource};
use crate::kernels::{check_dtypes, grid_1d, to_u32};
use crate::recorder::Recorder;
use crate::runtime::buffer::GpuBuffer;
use crate::tensor::{DType, Tensor};

/// The shaders' bindings by name (`@binding(N) var … name`; tests/params.rs checks each against the WGSL).
mod slot {
    pub const X: u32 = 0;
    pub const OUT: u32 = 1;
    pub const PARAMS: u32 = 2;
    /// The batch norm's statistics, stacked (fold_batchnorm).
    pub const BN: u32 = 3;
    pub const OUT_BIAS: u32 = 4;
    pub const RGBA: u32 = 5;
}

const SHADER: &str = include_str!("../../shaders/image.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    out_h: u32,
    out_w: u32,
    out_c: u32,
    k_h: u32,
    k_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    c_offset: u32,
    x_offset: u32,
    out_offset: u32,
    len: u32,
    eps: f32,
    _pad: [u32; 2],
}

impl Params {
    /// The sliding window of a pooling or convolution: `kernel`, `stride`, leading `pad`, each
    /// `[vertical, horizontal]`.
    fn set_window(
        &mut self,
        op: &'static str,
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
    ) -> Result<()> {
        self.k_h = to_u32(op, "kernel", kernel[0])?;
        self.k_w = to_u32(op, "kernel", kernel[1])?;
        self.stride_h = to_u32(op, "stride", stride[0])?;
        self.stride_w = to_u32(op, "stride", stride[1])?;
        self.pad_top = to_u32(op, "padding", pad[0])?;
        self.pad_left = to_u32(op, "padding", pad[1])?;
        Ok(())
    }
}

fn nhwc(op: &'static str, x: &Tensor) -> Result<[usize; 4]> {
    match *x.shape() {
        [n, h, w, c] => Ok([n, h, w, c]),
        _ => Err(Error::shape(
            op,
            format!(
                "x must be NHWC [batch, height, width, channels], got {:?}",
                x.shape()
            ),
        )),
    }
}

fn params_of(op: &'static str, x: &Tensor, out: &Tensor, len: usize) -> Result<Params> {
    let [n, h, w, c] = nhwc(op, x)?;
    let mut p = Params {
        batch: to_u32(op, "batch", n)?,
        in_h: to_u32(op, "height", h)?,
        in_w: to_u32(op, "width", w)?,
        in_c: to_u32(op, "channels", c)?,
        x_offset: x.offset_elements(),
        out_offset: out.offset_elements(),
        len: to_u32(op, "elements", len)?,
        ..Params::default()
    };
    if let [_, oh, ow, oc] = *out.shape() {
        p.out_h = to_u32(op, "output height", oh)?;
        p.out_w = to_u32(op, "output width", ow)?;
        p.out_c = to_u32(op, "output channels", oc)?;
    }
    to_u32(
        op,
        "input elements",
        x.numel() + x.offset_elements() as usize,
    )?;
    Ok(p)
}

fn run(
    rec: &mut Recorder,
    op: &'static str,
    entry: &'static str,
    dtype: DType,
    bindings: &[(u32, &Arc<GpuBuffer>)],
    params: &Params,
) -> Result<()> {
    let gpu: Gpu = rec.gpu().clone();
    let grid = grid_1d(&gpu, op, params.len.div_ceil(256))?;
    let pipeline = gpu.pipeline(&KernelSource {
        name: "image",
        body: SHADER,
        dtype,
        entry,
        constants: &[],
    });
    rec.dispatch_at(&pipeline, bindings, slot::PARAMS, params, grid);
    Ok(())
}

/// Mean over height and width: `x [N, H, W, C]` → `[N, C]`.
pub fn global_avg_pool(rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
    const OP: &str = "global_avg_pool";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[x])?;
    let [n, h, w, c] = nhwc(OP, x)?;
    if h * w == 0 {
        return Err(Error::shape(OP, "the image is empty (height or width 0)"));
    }
    let out = Tensor::empty(&gpu, &[n, c], dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let p = params_of(OP, x, &out, n * c)?;
    run(
        rec,
        OP,
        "global_avg_pool",
        dtype,
        &[(slot::X, x.buffer()), (slot::OUT, out.buffer())],
        &p,
    )?;
    Ok(out)
}

/// Average over `kernel` windows moved by `stride`, with `padding = [top, left]` zeros not counted
/// (PyTorch's `count_include_pad=False`): `[N, OH, OW, C]` where `OH = (H + 2·top − KH) / SH + 1`.
pub fn avg_pool2d(
    rec: &mut Recorder,
    x: &Tensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Result<Tensor> {
    const OP: &str = "avg_pool2d";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[x])?;
    let [n, h, w, c] = nhwc(OP, x)?;
    if kernel.contains(&0)
        || stride.contains(&0)
        || padding[0] >= kernel[0]
        || padding[1] >= kernel[1]
    {
        return Err(Error::shape(
            OP,
            format!(
                "kernel {kernel:?} and stride {stride:?} must be ≥ 1, padding {padding:?} below the kernel"
            ),
        ));
    }
    let (ph, pw) = (h + 2 * padding[0], w + 2 * padding[1]);
    if ph < kernel[0] || pw < kernel[1] {
        return Err(Error::shape(
            OP,
            format!("the padded input {ph}x{pw} is smaller than the kernel {kernel:?}"),
        ));
    }
    let (oh, ow) = (
        (ph - kernel[0]) / stride[0] + 1,
        (pw - kernel[1]) / stride[1] + 1,
    );
    let out = Tensor::empty(&gpu, &[n, oh, ow, c], dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let mut p = params_of(OP, x, &out, out.numel())?;
    p.set_window(OP, kernel, stride, padding)?;
    run(
        rec,
        OP,
        "avg_pool",
        dtype,
        &[(slot::X, x.buffer()), (slot::OUT, out.buffer())],
        &p,
    )?;
    Ok(out)
}

/// Nearest-neighbour upsampling by integer factors `[vertical, horizontal]`: `[N, H·fh, W·fw, C]`.
pub fn upsample_nearest(rec: &mut Recorder, x: &Tensor, factor: [usize; 2]) -> Result<Tensor> {
    const OP: &str = "upsample_nearest";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[x])?;
    let [n, h, w, c] = nhwc(OP, x)?;
    if factor.contains(&0) {
        return Err(Error::shape(OP, "the factors must be at least 1"));
    }
    let out = Tensor::empty(&gpu, &[n, h * factor[0], w * factor[1], c], dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let mut p = params_of(OP, x, &out, out.numel())?;
    p.stride_h = to_u32(OP, "factor", factor[0])?;
    p.stride_w = to_u32(OP, "factor", factor[1])?;
    run(
        rec,
        OP,
        "upsample_nearest",
        dtype,
        &[(slot::X, x.buffer()), (slot::OUT, out.buffer())],
        &p,
    )?;
    Ok(out)
}

/// The shape of the concatenation of tensors shaped `shapes` along their last axis: an error naming
/// `op` unless there is at least one, none is a scalar, and they agree on every other axis. (The
/// GPU's and the CPU backend's `concat_channels` both check with it.)
pub(crate) fn concat_shape(op: &'static str, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let Some(first) = shapes.first() else {
        return Err(Error::shape(op, "nothing to concatenate"));
    };
    let lead = &first[..first.len().saturating_sub(1)];
    if first.is_empty()
        || shapes
            .iter()
            .any(|s| s.len() != first.len() || &s[..lead.len()] != lead)
    {
        return Err(Error::shape(
            op,
            format!("all inputs must agree on every axis but the last: {shapes:?}"),
        ));
    }
    let mut shape = lead.to_vec();
    shape.push(shapes.iter().map(|s| s[lead.len()]).sum());
    Ok(shape)
}

/// Concatenation along the last axis (channels, in NHWC) of tensors that agree on every other axis.
pub fn concat_channels(rec: &mut Recorder, xs: &[&Tensor]) -> Result<Tensor> {
    const OP: &str = "concat_channels";
    let gpu = rec.gpu().clone();
    let shape = concat_shape(OP, &xs.iter().map(|t| t.shape()).collect::<Vec<_>>())?;
    let dtype = check_dtypes(OP, &gpu, xs)?;
    let lead = &shape[..shape.len() - 1];
    let total = shape[lead.len()];
    let out = Tensor::empty(&gpu, &shape, dtype)?;
    let mut c_offset = 0;
    for x in xs {
        let c = x.shape()[lead.len()];
        if x.numel() > 0 {
            let p = Params {
                in_c: to_u32(OP, "channels", c)?,
                out_c: to_u32(OP, "channels", total)?,
                c_offset: to_u32(OP, "channels", c_offset)?,
                x_offset: x.offset_elements(),
                out_offset: out.offset_elements(),
                len: to_u32(OP, "elements", x.numel())?,
                ..Params::default()
            };
            to_u32(OP, "output elements", out.numel())?;
            run(
                rec,
                OP,
                "concat",
                dtype,
                &[(slot::X, x.buffer()), (slot::OUT, out.buffer())],
                &p,
            )?;
        }
        c_offset += c;
    }
    Ok(out)
}

/// Batch-norm parameters of one layer, each `[C]`: `gamma·(x − mean)/√(var + eps) + beta`.
pub struct BatchNorm<'a> {
    pub gamma: &'a Tensor,
    pub beta: &'a Tensor,
    pub mean: &'a Tensor,
    pub var: &'a Tensor,
    pub eps: f32,
}

/// Folds a batch norm that follows a convolution into it, on the GPU: returns the new weight (the
/// same shape, each output channel scaled by `gamma/√(var + eps)`) and bias (`beta − mean·scale`, plus
/// the convolution's own `bias·scale`). The originals are left as they are.
pub fn fold_batchnorm(
    rec: &mut Recorder,
    weight: &Tensor,
    bias: Option<&Tensor>,
    bn: &BatchNorm<'_>,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "fold_batchnorm";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[weight, bn.gamma, bn.beta, bn.mean, bn.var])?;
    let Some(&c) = weight.shape().first() else {
        return Err(Error::shape(OP, "the weight has no output-channel axis"));
    };
    let per_channel = [
        Some(bn.gamma),
        Some(bn.beta),
        Some(bn.mean),
        Some(bn.var),
        bias,
    ];
    if let Some(t) = per_channel.iter().flatten().find(|t| t.shape() != [c]) {
        return Err(Error::shape(
            OP,
            format!(
                "batch-norm parameters and bias must be [{c}], got {:?}",
                t.shape()
            ),
        ));
    }
    if c == 0 || weight.numel() == 0 {
        return Err(Error::shape(OP, "the weight is empty"));
    }
    // The five per-channel vectors side by side, so the kernel binds one buffer for them.
    let zeros;
    let conv_bias = match bias {
        Some(b) => {
            check_dtypes(OP, &gpu, &[weight, b])?;
            b
        }
        None => {
            zeros = match dtype {
                DType::F16 => Tensor::from_f16(&gpu, &vec![half::f16::ZERO; c], &[c])?,
                _ => Tensor::from_f32(&gpu, &vec![0.0; c], &[c])?,
            };
            &zeros
        }
    };
    let stacked = concat_channels(
        rec,
        &[
            &bn.gamma.reshape(&[1, c])?,
            &bn.beta.reshape(&[1, c])?,
            &bn.mean.reshape(&[1, c])?,
            &bn.var.reshape(&[1, c])?,
            &conv_bias.reshape(&[1, c])?,
        ],
    )?;
    let folded = Tensor::empty(&gpu, weight.shape(), dtype)?;
    let new_bias = Tensor::empty(&gpu, &[c], dtype)?;
    if weight.offset() != 0 {
        return Err(Error::shape(
            OP,
            "the weight must start at its buffer's beginning",
        ));
    }
    let p = Params {
        in_c: to_u32(OP, "weights per channel", weight.numel() / c)?,
        out_c: to_u32(OP, "channels", c)?,
        len: to_u32(OP, "elements", weight.numel())?,
        eps: bn.eps,
        ..Params::default()
    };
    run(
        rec,
        OP,
        "fold_batchnorm",
        dtype,
        &[
            (slot::X, weight.buffer()),
            (slot::OUT, folded.buffer()),
            (slot::BN, stacked.buffer()),
            (slot::OUT_BIAS, new_bias.buffer()),
        ],
        &p,
    )?;
    Ok((folded, new_bias))
}

/// Packs `x [N, H, W, 3 or 4]` with values on 0..255 into RGBA8 pixels, one `u32` each (R in the low
/// byte; alpha 255 for 3 channels), rounded and clamped: an `i32` tensor `[N, H, W]` holding the bytes.
pub fn to_rgba8(rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
    const OP: &str = "to_rgba8";
    let gpu = rec.gpu().clone();
    let [n, h, w, _] = nhwc(OP, x)?;
    let out = Tensor::empty(&gpu, &[n, h, w], DType::I32)?;
    if out.numel() > 0 {
        // The batch's images stacked are one image of n·h rows.
        let stacked = x.reshape(&[1, n * h, w, x.shape()[3]])?;
        let rect = [0, 0, w, n * h];
        to_rgba8_into(rec, &stacked, rect, &out.reshape(&[n * h, w])?, [0, 0])?;
    }
    Ok(out)
}

/// Packs the rectangle `src = [x, y, width, height]` of `x [1, H, W, 3 or 4]` (values on 0..255) as
/// [`to_rgba8`] does, into `image` (an `i32` tensor `[rows, row_stride]` of RGBA8 pixels) at `at = [x, y]`:
/// how a tile's output lands in the whole picture.
pub fn to_rgba8_into(
    rec: &mut Recorder,
    x: &Tensor,
    src: [usize; 4],
    image: &Tensor,
    at: [usize; 2],
) -> Result<()> {
    const OP: &str = "to_rgba8";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[x])?;
    let [n, h, w, c] = nhwc(OP, x)?;
    let &[rows, stride] = image.shape() else {
        return Err(Error::shape(
            OP,
            format!("image must be [rows, row stride], got {:?}", image.shape()),
        ));
    };
    let [sx, sy, rw, rh] = src;
    if n != 1 || (c != 3 && c != 4) || image.dtype() != DType::I32 {
        return Err(Error::shape(
            OP,
            format!(
                "x must be [1, H, W, 3 or 4] (got {:?}) and image i32",
                x.shape()
            ),
        ));
    }
    if sx + rw > w || sy + rh > h || at[0] + rw > stride || at[1] + rh > rows {
        return Err(Error::shape(
            OP,
            format!(
                "rectangle {src:?} of a {w}x{h} input does not fit a {stride}x{rows} image at {at:?}"
            ),
        ));
    }
    if rw * rh == 0 {
        return Ok(());
    }
    let mut p = params_of(OP, x, x, rw * rh)?;
    p.out_h = to_u32(OP, "rows", rh)?;
    p.out_w = to_u32(OP, "columns", rw)?;
    p.pad_top = to_u32(OP, "y", sy)?;
    p.pad_left = to_u32(OP, "x", sx)?;
    p.k_h = to_u32(OP, "y", at[1])?;
    p.k_w = to_u32(OP, "x", at[0])?;
    p.c_offset = to_u32(OP, "row stride", stride)?;
    p.out_offset = image.offset_elements();
    to_u32(OP, "image pixels", image.numel())?;
    run(
        rec,
        OP,
        "to_rgba8",
        dtype,
        &[(slot::X, x.buffer()), (slot::RGBA, image.buffer())],
        &p,
    )?;
    Ok(())
}

/// im2col of `x [N, H, W, C]` for a dense `kernel = [KH, KW]` convolution with `stride` and leading
/// padding `pad = [top, left]` giving an `[OH, OW]` output: `[N·OH·OW, C·KH·KW]`, columns in the order of
/// a flattened PyTorch weight. The convolution is then `im2col · weightᵀ`.
pub(crate) fn im2col(
    rec: &mut Recorder,
    x: &Tensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    out_size: [usize; 2],
) -> Result<Tensor> {
    const OP: &str = "im2col";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[x])?;
    let [n, _, _, c] = nhwc(OP, x)?;
    let rows = n * out_size[0] * out_size[1];
    let cols = c * kernel[0] * kernel[1];
    let out = Tensor::empty(&gpu, &[rows, cols], dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let mut p = params_of(OP, x, &out, rows * cols)?;
    p.out_h = to_u32(OP, "output height", out_size[0])?;
    p.out_w = to_u32(OP, "output width", out_size[1])?;
    p.set_window(OP, kernel, stride, pad)?;
    run(
        rec,
        OP,
        "im2col",
        dtype,
        &[(slot::X, x.buffer()), (slot::OUT, out.buffer())],
        &p,
    )?;
    Ok(out)
}
