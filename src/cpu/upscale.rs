//! The upscaler's (RDN's) host operations beyond convolutions: channel concatenation,
//! nearest-neighbour upsampling, and packing a tile's output into RGBA8 pixels, each what the GPU
//! kernel of the same name in `kernels::image` computes.

use crate::cpu::HostTensor;
use crate::error::{Error, Result};
use crate::kernels::image::concat_shape;

/// Concatenation along the last axis (channels, in NHWC) of tensors that agree on every other axis.
pub fn concat_channels(xs: &[&HostTensor]) -> Result<HostTensor> {
    const OP: &str = "cpu::upscale::concat_channels";
    let shape = concat_shape(OP, &xs.iter().map(|t| t.shape()).collect::<Vec<_>>())?;
    let lead = &shape[..shape.len() - 1];
    let rows: usize = lead.iter().product();
    let widths: Vec<usize> = xs.iter().map(|t| t.shape()[lead.len()]).collect();
    let total = shape[lead.len()];
    let parts = xs.iter().map(|t| t.f32s(OP)).collect::<Result<Vec<_>>>()?;
    let mut out = vec![0f32; rows * total];
    crate::cpu::par::chunks_mut(&mut out, total.max(1) * 256, |task, chunk| {
        for (r, row) in chunk.chunks_exact_mut(total.max(1)).enumerate() {
            let r = task * 256 + r;
            let mut at = 0;
            for (part, &w) in parts.iter().zip(&widths) {
                row[at..at + w].copy_from_slice(&part[r * w..(r + 1) * w]);
                at += w;
            }
        }
    });
    HostTensor::from_f32(out, &shape)
}

/// Nearest-neighbour upsampling of `x [n, h, w, c]` by integer factors `[vertical, horizontal]`.
pub fn upsample_nearest(x: &HostTensor, factor: [usize; 2]) -> Result<HostTensor> {
    const OP: &str = "cpu::upscale::upsample_nearest";
    let &[n, h, w, c] = x.shape() else {
        return Err(Error::shape(
            OP,
            format!("x must be [n, h, w, c], got {:?}", x.shape()),
        ));
    };
    if factor.contains(&0) {
        return Err(Error::shape(OP, "the factors must be at least 1"));
    }
    let [fh, fw] = factor;
    let xs = x.f32s(OP)?;
    let row = w * fw * c;
    let mut out = vec![0f32; n * h * fh * row];
    crate::cpu::par::chunks_mut(&mut out, row.max(1), |task, dst| {
        let (img, oy) = (task / (h * fh), task % (h * fh));
        let src = &xs[((img * h + oy / fh) * w) * c..][..w * c];
        for (ox, px) in dst.chunks_exact_mut(c.max(1)).enumerate() {
            px.copy_from_slice(&src[(ox / fw) * c..][..c]);
        }
    });
    HostTensor::from_f32(out, &[n, h * fh, w * fw, c])
}

/// Packs the rectangle `src = [x, y, width, height]` of `x [1, H, W, 3]` (values on 0..255) into
/// `rgba` (an image `stride` pixels wide, RGBA8) at `at = [x, y]`: each value rounded and clamped to
/// 0..255, alpha 255, as `kernels::image::to_rgba8_into` packs it on the GPU.
pub fn to_rgba8_into(
    x: &HostTensor,
    src: [usize; 4],
    rgba: &mut [u8],
    stride: usize,
    at: [usize; 2],
) -> Result<()> {
    const OP: &str = "cpu::upscale::to_rgba8_into";
    let &[1, h, w, 3] = x.shape() else {
        return Err(Error::shape(
            OP,
            format!("x must be [1, H, W, 3], got {:?}", x.shape()),
        ));
    };
    let [sx, sy, rw, rh] = src;
    let rows = rgba.len() / (stride * 4).max(1);
    if sx + rw > w || sy + rh > h || at[0] + rw > stride || at[1] + rh > rows {
        return Err(Error::shape(
            OP,
            format!(
                "the rectangle {src:?} of a {w}×{h} tile at {at:?} does not fit (image {stride}×{rows})"
            ),
        ));
    }
    let xs = x.f32s(OP)?;
    for y in 0..rh {
        let from = &xs[((sy + y) * w + sx) * 3..][..rw * 3];
        let to = &mut rgba[((at[1] + y) * stride + at[0]) * 4..][..rw * 4];
        for (px, v) in to.chunks_exact_mut(4).zip(from.chunks_exact(3)) {
            for (d, &s) in px.iter_mut().zip(v) {
                // `as u8` saturates (NaN to 0), as the shader's clamp of round() does.
                *d = s.round().clamp(0.0, 255.0) as u8;
            }
            px[3] = 255;
        }
    }
    Ok(())
}
