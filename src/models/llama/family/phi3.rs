//! Phi-3 / Phi-3.5-mini (transformers' `models/phi3/modeling_phi3.py`): LLaMA's block with q, k and v
//! stored as one `qkv_proj` matrix and gate and up as one `gate_up_proj` (split on the GPU at load:
//! `llama/load.rs`), rotate-half RoPE, a sliding window on every layer (`phi3.attention.sliding_window`),
//! and Phi-3.5's LongRoPE (`rope_factors_{short,long}.weight` with the original context and attention
//! factor: read at load; `rope.scaling.type = longrope` is accepted for this family only). Partial
//! rotary embeddings (Phi-4-mini) are refused by every family's check.

use super::Family;

pub(super) const PHI3: Family = Family {
    arch: "phi3",
    // Every piece is read generically (the window, the fused matrices by name, the RoPE factors).
    configure: |_, _| Ok(()),
};
