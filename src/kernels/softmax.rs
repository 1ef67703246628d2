//! Softmax over the last axis, `shaders/softmax.wgsl`: one workgroup a row, f32 statistics.

use crate::error::{Error, Result};
use crate::kernels::{check_dtypes, grid_1d, to_u32};
use crate::recorder::Recorder;
use crate::tensor::Tensor;

const SHADER: &str = include_str!("../../shaders/softmax.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    in_offset: u32,
    out_offset: u32,
}

/// Softmax of `x` along its last axis; every other axis is a batch of independent rows.
///
/// ```no_run
/// # async fn demo(gpu: &webgpu_infer::Gpu) -> webgpu_infer::Result<()> {
/// use webgpu_infer::{Tensor, kernels::softmax::softmax};
/// let x = Tensor::from_f32(gpu, &[0.0, 0.0, 0.0, 0.0], &[2, 2])?;
/// let mut rec = gpu.recorder();
/// let y = softmax(&mut rec, &x)?;
/// rec.submit();
/// assert_eq!(y.to_f32_vec().await?, vec![0.5; 4]);
/// # Ok(()) }
/// ```
pub fn softmax(rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
    const OP: &str = "softmax";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[x])?;
    let Some(&cols) = x.shape().last() else {
        return Err(Error::shape(OP, "a scalar has no last axis to normalise"));
    };
    let out = Tensor::empty(&gpu, x.shape(), dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let rows = to_u32(OP, "rows", x.numel() / cols)?;
    let params = Params {
        rows,
        cols: to_u32(OP, "columns", cols)?,
        in_offset: x.offset_elements(),
        out_offset: out.offset_elements(),
    };
    let grid = grid_1d(&gpu, OP, rows)?;
    let pipeline = gpu.pipeline(&crate::gpu::KernelSource {
        name: "softmax",
        body: SHADER,
        dtype,
        entry: "main",
        constants: &[],
    });
    rec.dispatch(&pipeline, &[x.buffer(), out.buffer()], &params, grid);
    Ok(out)
}
