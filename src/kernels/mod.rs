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

/// A size a benchmark may set natively through the environment variable it names (read once, then
/// fixed for the process) to compare kernels on a GPU without a build each; `None` where unset or
/// unparsable, and always in WASM (pages use the defaults).
pub(crate) struct Tuned(&'static str, std::sync::OnceLock<Option<usize>>);

impl Tuned {
    pub(crate) const fn new(var: &'static str) -> Tuned {
        Tuned(var, std::sync::OnceLock::new())
    }

    pub(crate) fn get(&self) -> Option<usize> {
        *self.1.get_or_init(|| {
            #[cfg(not(target_arch = "wasm32"))]
            {
                std::env::var(self.0).ok().and_then(|v| v.parse().ok())
            }
            #[cfg(target_arch = "wasm32")]
            {
                let _ = self.0;
                None
            }
        })
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

/// Refuses views that cannot be bound from their first element: a binding's offset must be a multiple
/// of the device's `minStorageBufferOffsetAlignment` (kernels bound with
/// `Recorder::dispatch_views`).
pub(crate) fn check_view_offsets(op: &'static str, gpu: &Gpu, tensors: &[&Tensor]) -> Result<()> {
    let align = u64::from(gpu.limits().min_storage_buffer_offset_alignment);
    match tensors.iter().find(|t| !t.offset().is_multiple_of(align)) {
        Some(t) => Err(Error::shape(
            op,
            format!(
                "a view {:?} starting {} bytes into its buffer: this kernel binds views from their \
                 first element, which needs an offset that is a multiple of the device's \
                 minStorageBufferOffsetAlignment ({align}); pass a contiguous copy",
                t.shape(),
                t.offset()
            ),
        )),
        None => Ok(()),
    }
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
