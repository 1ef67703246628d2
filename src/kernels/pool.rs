//! Masked mean pooling, `shaders/pool.wgsl` (sentence-transformers' Pooling with mean mode).

use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::{check_dtypes, grid_1d, require_whole, to_u32};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

const SHADER: &str = include_str!("../../shaders/pool.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    seq: u32,
    hidden: u32,
    _pad: u32,
}

/// Mean of `x [batch, seq, hidden]` over the positions where the i32 `mask [batch, seq]` is 1:
/// `[batch, hidden]`. A row with no position (all 0) gives zeros.
pub fn mean_pool(rec: &mut Recorder, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    const OP: &str = "mean_pool";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[x])?;
    let &[batch, seq, hidden] = x.shape() else {
        return Err(Error::shape(
            OP,
            format!("x must be [batch, seq, hidden], got {:?}", x.shape()),
        ));
    };
    if mask.dtype() != DType::I32 || mask.shape() != [batch, seq] {
        return Err(Error::shape(
            OP,
            format!(
                "mask must be i32 [{batch}, {seq}], got {:?} {:?}",
                mask.dtype(),
                mask.shape()
            ),
        ));
    }
    require_whole(OP, &[x, mask])?;
    let out = Tensor::empty(&gpu, &[batch, hidden], dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let params = Params {
        batch: to_u32(OP, "batch", batch)?,
        seq: to_u32(OP, "seq", seq)?,
        hidden: to_u32(OP, "hidden", hidden)?,
        _pad: 0,
    };
    let pipeline = gpu.pipeline(&KernelSource {
        name: "pool",
        body: SHADER,
        dtype,
        entry: "main",
        constants: &[],
    });
    let grid = grid_1d(
        &gpu,
        OP,
        to_u32(OP, "elements", batch * hidden)?.div_ceil(256),
    )?;
    rec.dispatch(
        &pipeline,
        &[x.buffer(), mask.buffer(), out.buffer()],
        &params,
        grid,
    );
    Ok(out)
}
