//! The zero-copy boundary: every GPU buffer counted in [`stats::CopyStats`], and weights moved from
//! their source (a memory map natively, a `fetch()` stream in the browser) straight into the GPU
//! buffers kernels read, with only the safetensors header parsed on the CPU.

#[cfg(target_arch = "wasm32")]
mod fetch;
pub mod folder;
pub mod load;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use load::{OnProgress, Progress, Weights};
// Buffers and counters live in the runtime layer; their old paths stay.
pub use crate::runtime::{buffer, stats};
