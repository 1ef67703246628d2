//! The CPU backend: the same models without a GPU, for pages that have no WebGPU adapter or only a
//! software one (SwiftShader runs WGSL on the CPU far slower than code written for it). Kernels are
//! plain Rust that LLVM vectorizes (SIMD128 in WASM: the crate is built with `+simd128`, see
//! `.cargo/config.toml`; SSE/AVX natively), with the quantized products written out for SIMD128
//! (`quant/simd.rs`) and for AVX2 with FMA (`quant/x86.rs`, picked at run time on x86-64 CPUs that
//! have them; the portable kernel elsewhere, e.g. natively on ARM). Work is split over threads by
//! [`par`]: rayon's pool, or a team of spinning
//! threads for a generator's forward pass (in a page, threads need the shared-memory build of
//! `pkg-threads/`; without it everything runs on the calling thread). Weights live in host memory
//! ([`HostWeights`]); models reach all of it through `models::ops::Ops` and `DecoderOps`.

pub mod attention;
pub mod decoder;
pub mod image;
pub mod math;
pub mod matmul;
pub mod ops;
pub mod par;
pub mod quant;
pub mod sample;
pub mod tensor;
pub mod upscale;
pub mod weights;

/// The product kernel `c (+)= x·wᵀ` for WASM SIMD128 (crates/dot, a crate of its own so that debug
/// builds optimize it).
pub(crate) use webgpu_infer_dot as dot;

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
        par::threads()
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
