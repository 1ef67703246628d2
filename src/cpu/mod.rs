//! The CPU backend: the same models without a GPU, for pages that have no WebGPU adapter or only a
//! software one (SwiftShader runs WGSL on the CPU far slower than code written for it). Kernels are
//! plain Rust that LLVM vectorizes (SIMD128 in WASM: the crate is built with `+simd128`, see
//! `.cargo/config.toml`; SSE/AVX natively) and split over rayon's threads natively (in a page
//! everything runs on the calling thread: WASM threads need a shared-memory build). Weights live in
//! host memory ([`HostWeights`]); models reach all of it through `models::ops::Ops`.

pub mod attention;
pub mod decoder;
pub mod math;
pub mod matmul;
pub mod ops;
pub mod quant;
pub mod sample;
pub mod tensor;
pub mod weights;

use std::sync::Arc;

pub use quant::HostQTensor;
pub use tensor::HostTensor;
pub use weights::{HostWeight, HostWeights};

use crate::runtime::stats::{CopyStats, Stats};

/// The CPU backend's handle: its copy counters (shared by clones) and its thread count.
#[derive(Clone, Default)]
pub struct Cpu {
    stats: Arc<CopyStats>,
}

impl Cpu {
    pub fn new() -> Cpu {
        Cpu::default()
    }

    /// Threads the kernels split work over (1 in a page).
    pub fn threads(&self) -> usize {
        rayon::current_num_threads()
    }

    /// Bytes copied so far (weights read into host memory, widened tensors).
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// The counters, for a page-wide registry.
    pub fn copy_stats_arc(&self) -> &Arc<CopyStats> {
        &self.stats
    }

    /// Reads a safetensors file into host memory (natively).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(&self, path: &std::path::Path) -> crate::Result<HostWeights> {
        HostWeights::read(path, &self.stats)
    }
}
