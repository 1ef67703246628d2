//! Tiled matrix multiplication, `shaders/matmul.wgsl`: batched, with B as `[K, N]` or as `[N, K]` (the
//! `[out, in]` layout of linear-layer weights), f32 accumulation for f32 and f16 storage.

use crate::error::{Error, Result};
use crate::kernels::{check_dtypes, to_u32};
use crate::recorder::Recorder;
use crate::tensor::Tensor;

const SHADER: &str = include_str!("../../shaders/matmul.wgsl");
/// Rows and columns of C computed by one workgroup (BM and BN in the shader).
const TILE: usize = 64;

/// How the second operand is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BLayout {
    /// `b` is `[.., K, N]`: plain `a · b`.
    KN,
    /// `b` is `[.., N, K]`: `a · bᵀ`, as PyTorch's `Linear` stores its weight.
    NK,
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
    const OP: &str = "matmul";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[a, b])?;
    let dims = Dims::of(a.shape(), b.shape(), layout)?;
    let mut out_shape = a.shape()[..a.shape().len() - 2].to_vec();
    out_shape.extend([dims.m, dims.n]);
    let c = Tensor::empty(&gpu, &out_shape, dtype)?;
    if c.numel() == 0 {
        return Ok(c);
    }
    let params = Params {
        m: to_u32(OP, "M", dims.m)?,
        n: to_u32(OP, "N", dims.n)?,
        k: to_u32(OP, "K", dims.k)?,
        a_batch_stride: to_u32(OP, "M*K", dims.m * dims.k)?,
        b_batch_stride: if dims.b_batched {
            to_u32(OP, "K*N", dims.k * dims.n)?
        } else {
            0
        },
        a_offset: a.offset_elements(),
        b_offset: b.offset_elements(),
        c_offset: c.offset_elements(),
    };
    let groups = [
        dims.n.div_ceil(TILE) as u32,
        dims.m.div_ceil(TILE) as u32,
        to_u32(OP, "batch", dims.batch)?,
    ];
    gpu.check_workgroups("matmul columns / 64", groups[0])?;
    gpu.check_workgroups("matmul rows / 64", groups[1])?;
    gpu.check_workgroups("matmul batch", groups[2])?;
    let pipeline = gpu.pipeline(&crate::gpu::KernelSource {
        name: "matmul",
        body: SHADER,
        dtype,
        entry: "main",
        constants: &[("TRANS_B", f64::from(u8::from(layout == BLayout::NK)))],
    });
    rec.dispatch(
        &pipeline,
        &[a.buffer(), b.buffer(), c.buffer()],
        &params,
        groups,
    );
    Ok(c)
}

/// The sizes of one product, read off the operands' shapes.
#[derive(Debug, PartialEq, Eq)]
struct Dims {
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    b_batched: bool,
}

impl Dims {
    fn of(a: &[usize], b: &[usize], layout: BLayout) -> Result<Dims> {
        let err = |message: String| Err(Error::shape("matmul", message));
        if a.len() < 2 || b.len() < 2 {
            return err(format!(
                "operands must have at least 2 axes, got a {a:?} and b {b:?}"
            ));
        }
        let (m, k) = (a[a.len() - 2], a[a.len() - 1]);
        let (kb, n) = match layout {
            BLayout::KN => (b[b.len() - 2], b[b.len() - 1]),
            BLayout::NK => (b[b.len() - 1], b[b.len() - 2]),
        };
        if k != kb {
            return err(format!(
                "inner sizes differ: a {a:?} has K = {k}, b {b:?} ({layout:?}) has K = {kb}"
            ));
        }
        let a_batch = &a[..a.len() - 2];
        let b_batch = &b[..b.len() - 2];
        let b_batched = b_batch.iter().product::<usize>() > 1;
        if b_batched && a_batch != b_batch {
            return err(format!(
                "batch axes differ: a {a:?}, b {b:?}; b must be one matrix or have a's batch axes"
            ));
        }
        Ok(Dims {
            batch: a_batch.iter().product(),
            m,
            n,
            k,
            b_batched,
        })
    }
}

/// Floating-point operations of one product, for benchmarks: 2·batch·M·N·K.
pub fn flops(batch: usize, m: usize, n: usize, k: usize) -> f64 {
    2.0 * batch as f64 * m as f64 * n as f64 * k as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_follow_the_layout() {
        let d = Dims::of(&[2, 3, 5], &[7, 5], BLayout::NK).unwrap();
        assert_eq!((d.batch, d.m, d.n, d.k, d.b_batched), (2, 3, 7, 5, false));
        let d = Dims::of(&[2, 3, 5], &[2, 5, 7], BLayout::KN).unwrap();
        assert_eq!((d.batch, d.m, d.n, d.k, d.b_batched), (2, 3, 7, 5, true));
    }

    #[test]
    fn mismatched_shapes_are_refused() {
        assert!(Dims::of(&[3, 5], &[4, 7], BLayout::KN).is_err());
        assert!(Dims::of(&[2, 3, 5], &[3, 5, 7], BLayout::KN).is_err());
        assert!(Dims::of(&[5], &[5, 7], BLayout::KN).is_err());
    }
}
