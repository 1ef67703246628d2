//! Load-time conversions on the GPU, `shaders/cast.wgsl`: bf16 → f32, f16 → f32 (for adapters without
//! `shader-f16`), i64 → i32. Sources are raw buffers straight from the weight file.

use std::sync::Arc;

use crate::bridge::buffer::GpuBuffer;
use crate::error::Result;
use crate::kernels::{grid_1d, to_u32};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor, numel};

const SHADER: &str = include_str!("../../shaders/cast.wgsl");
const WORKGROUP: u32 = 256;

/// A conversion from a stored element type to one kernels compute with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cast {
    Bf16ToF32,
    F16ToF32,
    I64ToI32,
}

impl Cast {
    fn entry(self) -> &'static str {
        match self {
            Cast::Bf16ToF32 => "bf16_to_f32",
            Cast::F16ToF32 => "f16_to_f32",
            Cast::I64ToI32 => "i64_to_i32",
        }
    }

    /// The type of the converted tensor.
    pub fn output(self) -> DType {
        match self {
            Cast::Bf16ToF32 | Cast::F16ToF32 => DType::F32,
            Cast::I64ToI32 => DType::I32,
        }
    }

    /// Source words one thread reads (two 16-bit values a word; one thread an i64).
    fn elements_per_thread(self) -> usize {
        match self {
            Cast::Bf16ToF32 | Cast::F16ToF32 => 2,
            Cast::I64ToI32 => 1,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    count: u32,
    _pad: [u32; 3],
}

/// Converts the `shape` elements stored raw in `src` into a new tensor of `cast.output()`.
pub fn cast(
    rec: &mut Recorder,
    src: &Arc<GpuBuffer>,
    shape: &[usize],
    cast: Cast,
) -> Result<Tensor> {
    const OP: &str = "cast";
    let gpu = rec.gpu().clone();
    let out = Tensor::empty(&gpu, shape, cast.output())?;
    let count = numel(shape);
    if count == 0 {
        return Ok(out);
    }
    let threads = to_u32(OP, "elements", count.div_ceil(cast.elements_per_thread()))?;
    let grid = grid_1d(&gpu, OP, threads.div_ceil(WORKGROUP))?;
    let pipeline = gpu.pipeline(&crate::gpu::KernelSource {
        name: "cast",
        body: SHADER,
        dtype: DType::F32,
        entry: cast.entry(),
        constants: &[],
    });
    let params = Params {
        count: to_u32(OP, "elements", count)?,
        _pad: [0; 3],
    };
    rec.dispatch(&pipeline, &[src, out.buffer()], &params, grid);
    Ok(out)
}
