//! Type conversions on the GPU, `shaders/cast.wgsl`: bf16 → f32 or f16, f16 → f32 (also on adapters
//! without `shader-f16`), f32 → f16, i64 → i32. At load time the sources are raw buffers straight from
//! the weight file; [`to_f16`] and [`to_f32`] convert tensors.

use std::sync::Arc;

use crate::error::Result;
use crate::kernels::{grid_1d, to_u32};
use crate::recorder::Recorder;
use crate::runtime::buffer::GpuBuffer;
use crate::tensor::{DType, Tensor, numel};

const SHADER: &str = include_str!("../../shaders/cast.wgsl");
const WORKGROUP: u32 = 256;

/// A conversion from a stored element type to one kernels compute with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cast {
    Bf16ToF32,
    Bf16ToF16,
    F16ToF32,
    F32ToF16,
    I64ToI32,
}

impl Cast {
    fn entry(self) -> &'static str {
        match self {
            Cast::Bf16ToF32 => "bf16_to_f32",
            Cast::Bf16ToF16 => "bf16_to_f16",
            Cast::F16ToF32 => "f16_to_f32",
            Cast::F32ToF16 => "f32_to_f16",
            Cast::I64ToI32 => "i64_to_i32",
        }
    }

    /// The type of the converted tensor.
    pub fn output(self) -> DType {
        match self {
            Cast::Bf16ToF32 | Cast::F16ToF32 => DType::F32,
            Cast::Bf16ToF16 | Cast::F32ToF16 => DType::F16,
            Cast::I64ToI32 => DType::I32,
        }
    }

    /// Elements one thread converts (a 16-bit pair in a word on either side; one i64).
    fn elements_per_thread(self) -> usize {
        match self {
            Cast::I64ToI32 => 1,
            _ => 2,
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

/// An f16 copy of an f32 tensor (runs without `shader-f16`; using the result needs it).
pub fn to_f16(rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
    convert(rec, x, DType::F32, Cast::F32ToF16)
}

/// An f32 copy of an f16 tensor (runs without `shader-f16`).
pub fn to_f32(rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
    convert(rec, x, DType::F16, Cast::F16ToF32)
}

fn convert(rec: &mut Recorder, x: &Tensor, from: DType, c: Cast) -> Result<Tensor> {
    if x.dtype() != from {
        return Err(crate::error::Error::DType {
            op: "cast",
            message: format!("{c:?} takes a {from:?} tensor"),
            got: x.dtype(),
        });
    }
    crate::kernels::require_whole("cast", &[x])?;
    cast(rec, x.buffer(), x.shape(), c)
}
