//! Image models on the CPU: preprocessing (crop, resize, normalise: the GPU's
//! `shaders/preprocess.wgsl`, PyTorch's `F.interpolate`, computed the same way), NHWC convolutions
//! (1×1 ones as one product, other dense ones through im2col and the sgemm, depthwise ones as
//! channel-vectorized loops over output rows), batch norms folded into convolutions, and global
//! average pooling. Rows of output are split over threads (`cpu::par`).

use crate::cpu::HostTensor;
use crate::cpu::math::activate;
use crate::error::{Error, Result};
use crate::kernels::activation::Activation;
use crate::kernels::conv::{Conv2d, Padding};
use crate::kernels::preprocess::{Interpolation, Preprocess};

/// An RGBA8 image (`width × height × 4` bytes, rows top to bottom) to the model input
/// `[1, size[0], size[1], 3]` (`size` is `[height, width]`) as [`Preprocess`] says: what `kernels::preprocess::image_to_tensor`
/// computes on the GPU, computed here in f32 the same way.
pub fn preprocess(rgba: &[u8], width: u32, height: u32, pre: &Preprocess) -> Result<HostTensor> {
    const OP: &str = "cpu::image::preprocess";
    if width == 0 || height == 0 || rgba.len() != width as usize * height as usize * 4 {
        return Err(Error::shape(
            OP,
            format!(
                "{} bytes for a {width}×{height} RGBA image (want width·height·4, both ≥ 1)",
                rgba.len()
            ),
        ));
    }
    // `size` is [height, width], as the GPU kernel reads it.
    let [out_h, out_w] = pre.size;
    let [cx, cy, cw, ch] = pre.crop.rect(width, height);
    if out_w == 0 || out_h == 0 || cw == 0 || ch == 0 || cx + cw > width || cy + ch > height {
        return Err(Error::shape(
            OP,
            format!(
                "crop {:?} of a {width}×{height} image to {out_w}×{out_h}: the crop must be non-empty \
                 and inside the image, the size at least 1×1",
                [cx, cy, cw, ch]
            ),
        ));
    }
    let texel = |x: u32, y: u32| -> [f32; 3] {
        let i = (((cy + y) * width + cx + x) * 4) as usize;
        [0, 1, 2].map(|c| f32::from(rgba[i + c]) / 255.0)
    };
    let texel_i = |x: i64, y: i64| {
        texel(
            x.clamp(0, i64::from(cw) - 1) as u32,
            y.clamp(0, i64::from(ch) - 1) as u32,
        )
    };
    let axes = [(out_w, cw), (out_h, ch)];
    let mut out = vec![0f32; out_w as usize * out_h as usize * 3];
    let inv_std = pre.std.map(|s| 1.0 / s);
    match (pre.interpolation, pre.antialias) {
        (Interpolation::Nearest, _) => {
            let idx = |o: u32, (n, len): (u32, u32)| {
                ((o as f32 * (len as f32 / n as f32)).floor() as u32).min(len - 1)
            };
            fill(&mut out, out_w, |x, y| {
                texel(idx(x, axes[0]), idx(y, axes[1]))
            });
        }
        (mode, true) => {
            let wx: Vec<Window> = (0..out_w)
                .map(|o| Window::new(mode, o, cw, out_w))
                .collect();
            let wy: Vec<Window> = (0..out_h)
                .map(|o| Window::new(mode, o, ch, out_h))
                .collect();
            fill(&mut out, out_w, |x, y| {
                let (wx, wy) = (&wx[x as usize], &wy[y as usize]);
                let mut acc = [0f32; 3];
                for j in 0..wy.n {
                    let mut row = [0f32; 3];
                    for i in 0..wx.n {
                        let t = texel_i(i64::from(wx.lo + i), i64::from(wy.lo + j));
                        let w = wx.weight(mode, i);
                        (0..3).for_each(|c| row[c] += w * t[c]);
                    }
                    let w = wy.weight(mode, j);
                    (0..3).for_each(|c| acc[c] += w * row[c]);
                }
                acc
            });
        }
        (Interpolation::Bicubic, false) => {
            let src =
                |o: u32, (n, len): (u32, u32)| (o as f32 + 0.5) * (len as f32 / n as f32) - 0.5;
            fill(&mut out, out_w, |x, y| {
                let (sx, sy) = (src(x, axes[0]), src(y, axes[1]));
                let (fx, fy) = (sx.floor(), sy.floor());
                let (wx, wy) = (cubic4(sx - fx), cubic4(sy - fy));
                let (x0, y0) = (fx as i64 - 1, fy as i64 - 1);
                let mut acc = [0f32; 3];
                for (j, wyj) in wy.iter().enumerate() {
                    let mut row = [0f32; 3];
                    for (i, wxi) in wx.iter().enumerate() {
                        let t = texel_i(x0 + i as i64, y0 + j as i64);
                        (0..3).for_each(|c| row[c] += wxi * t[c]);
                    }
                    (0..3).for_each(|c| acc[c] += wyj * row[c]);
                }
                acc
            });
        }
        (Interpolation::Bilinear, false) => {
            let src = |o: u32, (n, len): (u32, u32)| {
                let s = ((o as f32 + 0.5) * (len as f32 / n as f32) - 0.5).max(0.0);
                let i0 = (s as u32).min(len - 1);
                (i0, (i0 + 1).min(len - 1), s - i0 as f32)
            };
            let mix =
                |a: [f32; 3], b: [f32; 3], t: f32| [0, 1, 2].map(|c| a[c] + (b[c] - a[c]) * t);
            fill(&mut out, out_w, |x, y| {
                let (x0, x1, tx) = src(x, axes[0]);
                let (y0, y1, ty) = src(y, axes[1]);
                let top = mix(texel(x0, y0), texel(x1, y0), tx);
                let bottom = mix(texel(x0, y1), texel(x1, y1), tx);
                mix(top, bottom, ty)
            });
        }
    }
    for px in out.chunks_exact_mut(3) {
        if pre.bgr {
            px.swap(0, 2);
        }
        for c in 0..3 {
            px[c] = (px[c] - pre.mean[c]) * inv_std[c];
        }
    }
    HostTensor::from_f32(out, &[1, out_h as usize, out_w as usize, 3])
}

/// `out[y][x] = f(x, y)` for an `out_w`-wide RGB image.
fn fill(out: &mut [f32], out_w: u32, f: impl Fn(u32, u32) -> [f32; 3]) {
    for (i, px) in out.chunks_exact_mut(3).enumerate() {
        let (x, y) = (i as u32 % out_w, i as u32 / out_w);
        px.copy_from_slice(&f(x, y));
    }
}

/// Keys' cubic convolution kernel with parameter `a`.
fn cubic(x: f32, a: f32) -> f32 {
    let t = x.abs();
    if t < 1.0 {
        ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
    } else if t < 2.0 {
        ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
    } else {
        0.0
    }
}

/// upsample_bicubic2d's 4 weights for fraction `t` (taps floor(s) − 1 .. floor(s) + 2).
fn cubic4(t: f32) -> [f32; 4] {
    let a = -0.75;
    [
        cubic(t + 1.0, a),
        cubic(t, a),
        cubic(1.0 - t, a),
        cubic(2.0 - t, a),
    ]
}

/// One output index's antialiased window along an axis (Pillow's resampling, as PyTorch's `_aa`).
struct Window {
    lo: i32,
    n: i32,
    center: f32,
    inv: f32,
    norm: f32,
}

impl Window {
    fn filter(mode: Interpolation, x: f32) -> f32 {
        if mode == Interpolation::Bicubic {
            cubic(x, -0.5)
        } else {
            (1.0 - x.abs()).max(0.0)
        }
    }

    fn new(mode: Interpolation, o: u32, in_len: u32, out_len: u32) -> Window {
        let scale = in_len as f32 / out_len as f32;
        let mut support = if mode == Interpolation::Bicubic {
            2.0
        } else {
            1.0
        };
        let mut inv = 1.0;
        if scale >= 1.0 {
            support *= scale;
            inv = 1.0 / scale;
        }
        let center = scale * (o as f32 + 0.5);
        let lo = ((center - support + 0.5) as i32).max(0);
        let n = (((center + support + 0.5) as i32).min(in_len as i32) - lo).max(0);
        let total: f32 = (0..n)
            .map(|j| Window::filter(mode, ((j + lo) as f32 - center + 0.5) * inv))
            .sum();
        Window {
            lo,
            n,
            center,
            inv,
            norm: if total != 0.0 { 1.0 / total } else { 0.0 },
        }
    }

    fn weight(&self, mode: Interpolation, j: i32) -> f32 {
        Window::filter(mode, ((j + self.lo) as f32 - self.center + 0.5) * self.inv) * self.norm
    }
}

/// A convolution ready for the CPU: its batch norm folded in, the weight laid out for the kernel
/// (dense: `[out, kh, kw, in]`, rows of an im2col product; depthwise: `[kh, kw, channels]`).
#[derive(Clone)]
pub struct HostConv {
    weight: HostTensor,
    bias: HostTensor,
    /// PyTorch's `[out, in / groups, kh, kw]`.
    shape: [usize; 4],
    conv: Conv2d,
    act: Option<Activation>,
}

/// Batch-norm parameters, each `[out channels]`.
pub struct HostBatchNorm<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub mean: &'a [f32],
    pub var: &'a [f32],
    pub eps: f32,
}

impl HostConv {
    /// A convolution `weight` (`[out, in / groups, kh, kw]`, PyTorch's layout) followed by the batch
    /// norm `bn` (folded in: each output channel scaled by `gamma / √(var + eps)`, bias
    /// `beta − mean · scale`) and the activation `act`. Dense (`groups` 1) and depthwise (`groups` =
    /// in = out channels) convolutions.
    pub fn fold(
        weight: &HostTensor,
        bn: &HostBatchNorm<'_>,
        conv: Conv2d,
        act: Option<Activation>,
    ) -> Result<HostConv> {
        let out = weight.shape().first().copied().unwrap_or(0);
        let per_channel = [bn.gamma, bn.beta, bn.mean, bn.var];
        if per_channel.iter().any(|p| p.len() != out) {
            return Err(Error::shape(
                "cpu::image::HostConv",
                format!(
                    "batch-norm parameters must be [{out}] for a {:?} weight",
                    weight.shape()
                ),
            ));
        }
        let scale: Vec<f32> = (0..out)
            .map(|o| bn.gamma[o] / (bn.var[o] + bn.eps).sqrt())
            .collect();
        let bias: Vec<f32> = (0..out)
            .map(|o| bn.beta[o] - bn.mean[o] * scale[o])
            .collect();
        HostConv::laid_out(weight, Some(&scale), bias, conv, act)
    }

    /// A convolution `weight` (`[out, in / groups, kh, kw]`) with its own `bias` (`[out]`) and the
    /// activation `act`: no batch norm (the upscaler's convolutions).
    pub fn new(
        weight: &HostTensor,
        bias: &[f32],
        conv: Conv2d,
        act: Option<Activation>,
    ) -> Result<HostConv> {
        let out = weight.shape().first().copied().unwrap_or(0);
        if bias.len() != out {
            return Err(Error::shape(
                "cpu::image::HostConv",
                format!("bias must be [{out}] for a {:?} weight", weight.shape()),
            ));
        }
        HostConv::laid_out(weight, None, bias.to_vec(), conv, act)
    }

    /// The weight re-laid for the kernels, each output channel scaled by `scale` where given.
    fn laid_out(
        weight: &HostTensor,
        scale: Option<&[f32]>,
        bias: Vec<f32>,
        conv: Conv2d,
        act: Option<Activation>,
    ) -> Result<HostConv> {
        const OP: &str = "cpu::image::HostConv";
        let &[out, in_g, kh, kw] = weight.shape() else {
            return Err(Error::shape(
                OP,
                format!(
                    "a convolution weight is [out, in / groups, kh, kw], got {:?}",
                    weight.shape()
                ),
            ));
        };
        if out == 0 || kh == 0 || kw == 0 {
            return Err(Error::shape(
                OP,
                format!("an empty convolution weight {:?}", weight.shape()),
            ));
        }
        let depthwise = conv.groups > 1;
        if depthwise && !(conv.groups == out && in_g == 1) {
            return Err(Error::shape(
                OP,
                format!(
                    "grouped convolutions run on the CPU only as depthwise ones (groups = channels, \
                     one input channel a group): {} groups, weight {:?}",
                    conv.groups,
                    weight.shape()
                ),
            ));
        }
        if conv.groups == 0 || conv.stride.contains(&0) {
            return Err(Error::shape(OP, "groups and strides must be ≥ 1"));
        }
        let w = weight.f32s(OP)?;
        let mut laid = vec![0f32; w.len()];
        for o in 0..out {
            let s = scale.map_or(1.0, |s| s[o]);
            for i in 0..in_g {
                for y in 0..kh {
                    for x in 0..kw {
                        let v = w[((o * in_g + i) * kh + y) * kw + x] * s;
                        let at = if depthwise {
                            (y * kw + x) * out + o
                        } else {
                            ((o * kh + y) * kw + x) * in_g + i
                        };
                        laid[at] = v;
                    }
                }
            }
        }
        let rows = if depthwise { kh * kw } else { out };
        Ok(HostConv {
            weight: HostTensor::from_f32(laid, &[rows, w.len() / rows])?,
            bias: HostTensor::from_f32(bias, &[out])?,
            shape: [out, in_g, kh, kw],
            conv,
            act,
        })
    }

    /// PyTorch's weight shape, `[out, in / groups, kh, kw]`.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// `act(conv(x) + bias) (+ residual)` for `x` `[n, h, w, in]` (NHWC), as `[n, h', w', out]`.
    pub fn forward(&self, x: &HostTensor, residual: Option<&HostTensor>) -> Result<HostTensor> {
        const OP: &str = "cpu::image::conv2d";
        let [out, in_g, kh, kw] = self.shape;
        let c_in = in_g * self.conv.groups;
        let &[n, h, w, c] = x.shape() else {
            return Err(Error::shape(
                OP,
                format!("x must be [n, h, w, c], got {:?}", x.shape()),
            ));
        };
        if c != c_in {
            return Err(Error::shape(
                OP,
                format!(
                    "x has {c} channels, the weight {:?} takes {c_in}",
                    self.shape
                ),
            ));
        }
        let (oh, top) = geometry(h, kh, self.conv.stride[0], self.conv.padding, 0)?;
        let (ow, left) = geometry(w, kw, self.conv.stride[1], self.conv.padding, 2)?;
        let g = Geometry {
            h,
            w,
            oh,
            ow,
            top,
            left,
            stride: self.conv.stride,
        };
        let m = n * oh * ow;
        let y = if self.conv.groups > 1 {
            let mut y = vec![0f32; m * out];
            self.depthwise(x.f32s(OP)?, &mut y, &g)?;
            HostTensor::from_f32(y, &[m, out])?
        } else if kh == 1 && kw == 1 && g.stride == [1, 1] && top == 0 && left == 0 {
            // 1×1: one product of every pixel's channels with the weight.
            self.product(&x.reshape(&[m, c])?)?
        } else {
            let cols = im2col(x.f32s(OP)?, n, c, [kh, kw], &g);
            self.product(&HostTensor::from_f32(cols, &[m, kh * kw * c])?)?
        };
        let y = y.reshape(&[n, oh, ow, out])?;
        match residual {
            Some(r) if r.shape() != y.shape() => Err(Error::shape(
                OP,
                format!("residual {:?} must be {:?}", r.shape(), y.shape()),
            )),
            Some(r) => crate::cpu::ops::add(&y, r),
            None => Ok(y),
        }
    }

    /// `act(rows · weightᵀ + bias)` for `rows` `[m, kh·kw·in]` (the sgemm, split over threads).
    fn product(&self, rows: &HostTensor) -> Result<HostTensor> {
        crate::cpu::matmul::linear(rows, &self.weight, Some(&self.bias), self.act)
    }

    /// Depthwise: each output row of each image a task; channels innermost (vectorized).
    fn depthwise(&self, xs: &[f32], y: &mut [f32], g: &Geometry) -> Result<()> {
        const OP: &str = "cpu::image::conv2d";
        let c = self.shape[0];
        let [_, _, kh, kw] = self.shape;
        let (weight, bias) = (self.weight.f32s(OP)?, self.bias.f32s(OP)?);
        crate::cpu::par::chunks_mut(y, g.ow * c, |task, row| {
            let (img, oy) = (task / g.oh, task % g.oh);
            for ox in 0..g.ow {
                let acc = &mut row[ox * c..(ox + 1) * c];
                acc.copy_from_slice(bias);
                g.taps(img, oy, ox, [kh, kw], |tap, at| {
                    let src = &xs[at * c..(at + 1) * c];
                    let wk = &weight[tap * c..(tap + 1) * c];
                    for ((a, &s), &k) in acc.iter_mut().zip(src).zip(wk) {
                        *a += s * k;
                    }
                });
                if let Some(act) = self.act {
                    activate(acc, act);
                }
            }
        });
        Ok(())
    }
}

/// A convolution's input and output extents, padding and stride.
struct Geometry {
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    top: usize,
    left: usize,
    stride: [usize; 2],
}

impl Geometry {
    /// `f(tap, pixel)` for each kernel tap `dy·kw + dx` of output pixel (`oy`, `ox`) of image `img`
    /// that falls inside the input (padding contributes nothing), with the input pixel's index
    /// `(img·h + iy)·w + ix`.
    fn taps(
        &self,
        img: usize,
        oy: usize,
        ox: usize,
        [kh, kw]: [usize; 2],
        mut f: impl FnMut(usize, usize),
    ) {
        for dy in 0..kh {
            let Some(iy) = (oy * self.stride[0] + dy)
                .checked_sub(self.top)
                .filter(|&iy| iy < self.h)
            else {
                continue;
            };
            for dx in 0..kw {
                let Some(ix) = (ox * self.stride[1] + dx)
                    .checked_sub(self.left)
                    .filter(|&ix| ix < self.w)
                else {
                    continue;
                };
                f(dy * kw + dx, (img * self.h + iy) * self.w + ix);
            }
        }
    }
}

/// Output length and leading padding along one axis (`side` 0: vertical, 2: horizontal, indexing
/// [`Padding::Explicit`]'s `[top, bottom, left, right]`).
fn geometry(
    len: usize,
    k: usize,
    stride: usize,
    padding: Padding,
    side: usize,
) -> Result<(usize, usize)> {
    let (lead, total) = match padding {
        Padding::Valid => (0, 0),
        Padding::Explicit(p) => (p[side], p[side] + p[side + 1]),
        Padding::Same => {
            let out = len.div_ceil(stride);
            let total = ((out.max(1) - 1) * stride + k).saturating_sub(len);
            (total / 2, total)
        }
    };
    if len + total < k {
        return Err(Error::shape(
            "cpu::image::conv2d",
            format!("a {k}-wide kernel does not fit {len} pixels with {total} of padding"),
        ));
    }
    Ok(((len + total - k) / stride + 1, lead))
}

/// Rows `[n·oh·ow, kh·kw·c]` of the input patches (zeros outside the image), in the weight's
/// `[kh, kw, in]` order.
fn im2col(xs: &[f32], n: usize, c: usize, [kh, kw]: [usize; 2], g: &Geometry) -> Vec<f32> {
    let k = kh * kw * c;
    let mut cols = vec![0f32; n * g.oh * g.ow * k];
    crate::cpu::par::chunks_mut(&mut cols, g.ow * k, |task, row| {
        let (img, oy) = (task / g.oh, task % g.oh);
        for ox in 0..g.ow {
            g.taps(img, oy, ox, [kh, kw], |tap, at| {
                let to = ox * k + tap * c;
                row[to..to + c].copy_from_slice(&xs[at * c..(at + 1) * c]);
            });
        }
    });
    cols
}

/// The mean over each image's pixels: `[n, h, w, c]` → `[n, c]`.
pub fn global_avg_pool(x: &HostTensor) -> Result<HostTensor> {
    const OP: &str = "cpu::image::global_avg_pool";
    let &[n, h, w, c] = x.shape() else {
        return Err(Error::shape(
            OP,
            format!("x must be [n, h, w, c], got {:?}", x.shape()),
        ));
    };
    let xs = x.f32s(OP)?;
    let mut out = vec![0f32; n * c];
    let pixels = h * w;
    for (img, o) in out.chunks_exact_mut(c.max(1)).enumerate() {
        for px in xs[img * pixels * c..(img + 1) * pixels * c].chunks_exact(c) {
            o.iter_mut().zip(px).for_each(|(a, &b)| *a += b);
        }
        let inv = 1.0 / pixels.max(1) as f32;
        o.iter_mut().for_each(|v| *v *= inv);
    }
    HostTensor::from_f32(out, &[n, c])
}
