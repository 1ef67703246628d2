//! The zero-copy boundary: every GPU buffer counted in [`stats::CopyStats`], and weights moved from
//! their source (a memory map natively, a `fetch()` stream in the browser) straight into the GPU
//! buffers kernels read, with only the safetensors header parsed on the CPU.

pub mod buffer;
#[cfg(target_arch = "wasm32")]
mod fetch;
pub mod load;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod stats;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use load::{OnProgress, Progress, Weights};
