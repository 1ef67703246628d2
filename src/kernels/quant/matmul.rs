//! The prompts' quantized matmul (`shaders/quant_mm.wgsl`, and `quant_mm_coop.wgsl` on tensor
//! cores): `x · Wᵀ` for many rows of `x`, the weight read in its blocks.

use super::product;
use crate::error::{Error, Result};
use crate::kernels::to_u32;
use crate::qtensor::QTensor;
use crate::recorder::Recorder;
use crate::tensor::Tensor;

/// `x · Wᵀ (+ residual)` for many rows of `x` (prompts) with `W [n, k]` read in its blocks: 64×64
/// output tiles, each weight block decoded once into workgroup memory for 64 rows of `x`
/// (`shaders/quant_mm.wgsl`), instead of dequantizing `W` into a dense copy and multiplying that.
/// For GPUs (barriers and workgroup memory); returns `[.., n]` in `x`'s type.
pub fn matmul(
    rec: &mut Recorder,
    x: &Tensor,
    w: &QTensor,
    residual: Option<&Tensor>,
) -> Result<Tensor> {
    matmul_with(rec, x, w, residual, MatmulKernel::Auto)
}

/// Which kernel computes [`matmul_with`]'s product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulKernel {
    /// [`MatmulKernel::TensorCores`] where the device has them, else [`MatmulKernel::Tiled`].
    Auto,
    /// 64×64 tiles of f32 multiply-adds (every device).
    Tiled,
    /// The same tiles as f16 cooperative-matrix products with f32 accumulation (native only,
    /// [`crate::Capabilities::cooperative_matrix`]): x and the decoded weights are rounded to f16
    /// (saturating at ±65504) in workgroup memory.
    TensorCores,
}

/// [`matmul`] with a choice of kernel.
pub fn matmul_with(
    rec: &mut Recorder,
    x: &Tensor,
    w: &QTensor,
    residual: Option<&Tensor>,
    kernel: MatmulKernel,
) -> Result<Tensor> {
    const OP: &str = "quant::matmul";
    let coop = rec.gpu().capabilities().cooperative_matrix;
    let tensor_cores = match kernel {
        MatmulKernel::Auto => coop,
        MatmulKernel::Tiled => false,
        MatmulKernel::TensorCores if !coop => {
            return Err(Error::MissingFeature {
                op: OP,
                feature: "wgpu-cooperative-matrix (16x16x16 f16, 32-wide subgroups; native only)",
            });
        }
        MatmulKernel::TensorCores => true,
    };
    let grid = |gpu: &crate::Gpu, m: usize, n: usize| {
        let groups = [
            to_u32(OP, "column tiles", n.div_ceil(64))?,
            to_u32(OP, "row tiles", m.div_ceil(64))?,
            1,
        ];
        gpu.check_workgroups("quant::matmul column tiles", groups[0])?;
        gpu.check_workgroups("quant::matmul row tiles", groups[1])?;
        Ok((if tensor_cores { "mm_coop" } else { "mm" }, groups))
    };
    product(rec, OP, x, w, (residual, None), grid)
}
