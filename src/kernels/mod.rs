//! WGSL kernels, one module per file in `shaders/`. Each module owns its pipelines, checks its
//! operands' shapes and types, and records its dispatches into a [`Recorder`](crate::Recorder).

pub mod activation;
pub mod attention;
pub mod cast;
pub mod conv;
pub mod copy;
pub mod elementwise;
pub mod embedding;
pub mod image;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod preprocess;
pub mod quant;
pub mod rope;
pub mod sample;
pub mod softmax;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::{DType, Tensor};

/// Whether the tensor-core paths written on 2026-12-05 but not yet run on a GPU (no device was lent
/// that session) are picked automatically: f32 models' linears as the mixed f32 × f16 product
/// (`matmul::Kernel::Coop`, MiniLM), prompts' quantized products on tensor cores
/// (`quant::MatmulKernel::TensorCores`) and `matmul::Kernel::Coop64` for f16 products with few
/// 128×128 tiles. Off unless `WEBGPU_INFER_TENSOR_CORES=new` natively (read once), so that a GPU
/// session can check them (tests/kernels.rs, tests/quant.rs, tests/bert.rs run them on such a device
/// when set) and measure them against the old paths before they become the default. Asking for
/// them by name works either way.
pub fn new_tensor_core_paths() -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| std::env::var("WEBGPU_INFER_TENSOR_CORES").is_ok_and(|v| v == "new"))
    }
    #[cfg(target_arch = "wasm32")]
    {
        false
    }
}

/// Refuses operands of different types, integer operands, and f16 on an adapter without `shader-f16`.
pub(crate) fn check_dtypes(op: &'static str, gpu: &Gpu, tensors: &[&Tensor]) -> Result<DType> {
    let dtype = tensors[0].dtype();
    if dtype == DType::I32 {
        return Err(Error::DType {
            op,
            message: "this kernel takes f32 or f16 tensors".into(),
            got: dtype,
        });
    }
    if let Some(other) = tensors.iter().find(|t| t.dtype() != dtype) {
        return Err(Error::DType {
            op,
            message: format!("all operands must have one type; the first is {dtype:?}"),
            got: other.dtype(),
        });
    }
    if dtype == DType::F16 && !gpu.capabilities().shader_f16 {
        return Err(Error::MissingFeature {
            op,
            feature: "shader-f16",
        });
    }
    Ok(dtype)
}

/// Refuses tensors that start inside their buffer (kernels that index from element 0).
pub(crate) fn require_whole(op: &'static str, tensors: &[&Tensor]) -> Result<()> {
    if tensors.iter().any(|t| t.offset() != 0) {
        return Err(Error::shape(
            op,
            "tensors must start at their buffer's beginning (no views)",
        ));
    }
    Ok(())
}

/// Converts a count that a kernel indexes with `u32` (element counts, offsets), refusing what won't fit.
pub(crate) fn to_u32(op: &'static str, what: &str, value: usize) -> Result<u32> {
    u32::try_from(value).map_err(|_| {
        Error::shape(
            op,
            format!("{what} = {value} does not fit the kernel's 32-bit indices"),
        )
    })
}

/// Workgroup grid for `groups` one-dimensional workgroups, folded into a second dimension when past the
/// per-dimension limit. Kernels compute their linear index as `x + y * num_workgroups.x`.
pub(crate) fn grid_1d(gpu: &Gpu, op: &str, groups: u32) -> Result<[u32; 3]> {
    let max = gpu.limits().max_compute_workgroups_per_dimension;
    if groups <= max {
        return Ok([groups, 1, 1]);
    }
    let y = groups.div_ceil(max);
    gpu.check_workgroups(op, y)?;
    Ok([groups.div_ceil(y), y, 1])
}
