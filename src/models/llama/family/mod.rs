//! One file a model family: what its GGUF metadata (`{arch}.*`) sets on the shared decoder, and which
//! pieces of the shared block it uses, each file mirroring transformers' `modeling_{family}.py`. The
//! blocks themselves (attention with RoPE and the KV cache, the gated MLP, the norms, the fused
//! quantized paths) are written once, in `models/llama.rs`: a family turns them on, never copies them.
//!
//! What every family stores alike (sizes, head counts, the norms' epsilon, RoPE's base and linear
//! scaling, the context length, a sliding window, soft caps) is read by `Config::from_gguf_header`
//! before the family's `configure` runs.

use super::config::{Config, Keys};
use crate::error::Result;

mod gemma;
mod llama;
mod phi3;
mod qwen;

/// A model family as a GGUF file names it.
pub(super) struct Family {
    /// `general.architecture`.
    pub arch: &'static str,
    /// Sets the family's options on a config holding what every family stores.
    pub configure: fn(&Keys<'_>, &mut Config) -> Result<()>,
}

/// Every family read from GGUF, in [`super::GGUF_ARCHS`]'s order.
pub(super) const FAMILIES: [Family; 6] = [
    llama::LLAMA,
    qwen::QWEN2,
    qwen::QWEN3,
    phi3::PHI3,
    gemma::GEMMA2,
    gemma::GEMMA3,
];

/// The family of `arch`, if it is one of [`FAMILIES`].
pub(super) fn of(arch: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.arch == arch)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_gguf_arch_has_its_family_file() {
        let arches: Vec<&str> = super::FAMILIES.iter().map(|f| f.arch).collect();
        assert_eq!(arches, super::super::GGUF_ARCHS);
    }
}
