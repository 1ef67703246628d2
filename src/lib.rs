//! # webgpu-infer
//!
//! Machine-learning inference on WebGPU: the same Rust code runs in a web page (compiled to WebAssembly,
//! on the browser's WebGPU) and natively (wgpu on Vulkan, Metal or D3D12).
//!
//! The layers, from the bottom up: [`gpu`] acquires an adapter and device and caches pipelines;
//! [`tensor`] is a typed view of a GPU buffer; [`kernels`] record WGSL compute dispatches into a
//! [`Recorder`] so that a whole computation is submitted once; `web` (wasm32 only) exposes all of it to
//! JavaScript.
//!
//! ```no_run
//! # async fn demo() -> webgpu_infer::Result<()> {
//! use webgpu_infer::{Gpu, Tensor, kernels::matmul::{self, BLayout}};
//! let gpu = Gpu::new().await?;
//! let a = Tensor::from_f32(&gpu, &[1.0, 2.0, 3.0, 4.0], &[2, 2])?;
//! let b = Tensor::from_f32(&gpu, &[5.0, 6.0, 7.0, 8.0], &[2, 2])?;
//! let mut rec = gpu.recorder();
//! let c = matmul::matmul(&mut rec, &a, &b, BLayout::KN)?;
//! rec.submit();
//! assert_eq!(c.to_f32_vec().await?, vec![19.0, 22.0, 43.0, 50.0]);
//! # Ok(()) }
//! ```

// No panics on paths public input reaches: errors are `Error`s. (Tests may unwrap.)
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod bench;
pub mod bridge;
pub mod cpu;
pub mod formats;
pub mod kernels;
pub mod models;
pub mod runtime;
#[cfg(target_arch = "wasm32")]
pub mod web;

// The runtime layer's modules keep their short paths (`webgpu_infer::gpu`, `::tensor` ...).
use runtime::bind_groups;
pub use runtime::{clock, dtype, error, gpu, profile, qtensor, recorder, tensor};

pub use dtype::QuantType;
pub use error::{Error, FormatProblem, Result};
pub use gpu::{Capabilities, Gpu, GpuOptions};
pub use qtensor::QTensor;
pub use recorder::Recorder;
pub use runtime::stats::Stats;
pub use tensor::{DType, Tensor};

/// The quantized tensor's old path (`webgpu_infer::quant::{QTensor, QuantType}`), kept for existing
/// code: the module is [`qtensor`] now (a name that says what it holds; the kernels are
/// [`kernels::quant`]).
#[deprecated(
    since = "0.1.0",
    note = "use webgpu_infer::{QTensor, QuantType} or webgpu_infer::qtensor"
)]
pub mod quant {
    pub use crate::dtype::QuantType;
    pub use crate::qtensor::QTensor;
}
