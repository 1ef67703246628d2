//! A plain device-to-device copy kernel, `shaders/copy.wgsl`: the benchmarks' bandwidth yardstick.

use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::{grid_1d, to_u32};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

const SHADER: &str = include_str!("../../shaders/copy.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    words4: u32,
    _pad: [u32; 3],
}

/// A copy of `x` made by a compute kernel (16 bytes a thread). `x`'s size must be a multiple of 16
/// bytes.
pub fn copy(rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
    const OP: &str = "copy";
    let gpu = rec.gpu().clone();
    if !x.size_in_bytes().is_multiple_of(16) || x.offset() != 0 {
        return Err(Error::shape(
            OP,
            format!("{} bytes is not a multiple of 16", x.size_in_bytes()),
        ));
    }
    let out = Tensor::empty(&gpu, x.shape(), x.dtype())?;
    let words4 = to_u32(OP, "16-byte words", (x.size_in_bytes() / 16) as usize)?;
    if words4 == 0 {
        return Ok(out);
    }
    let pipeline = gpu.pipeline(&KernelSource {
        name: "copy",
        body: SHADER,
        dtype: DType::F32,
        entry: "main",
        constants: &[],
    });
    let grid = grid_1d(&gpu, OP, words4.div_ceil(256))?;
    let params = Params {
        words4,
        _pad: [0; 3],
    };
    rec.dispatch(&pipeline, &[x.buffer(), out.buffer()], &params, grid);
    Ok(out)
}
