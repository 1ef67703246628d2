//! Qwen2 / Qwen2.5 (transformers' `models/qwen2/modeling_qwen2.py`) and Qwen3 dense
//! (`models/qwen3/modeling_qwen3.py`): LLaMA's block with rotate-half RoPE, plus
//! - Qwen2: biases on the q, k and v projections (`Qwen2Attention`'s `bias=True`); o has none;
//! - Qwen3: no biases, and an RMSNorm over each head of q and of k before RoPE (`q_norm`, `k_norm`),
//!   with the head size stored apart (`qwen3.attention.key_length`, read by every family).

use super::Family;

pub(super) const QWEN2: Family = Family {
    arch: "qwen2",
    configure: |_, cfg| {
        cfg.attention_bias = true;
        Ok(())
    },
};

pub(super) const QWEN3: Family = Family {
    arch: "qwen3",
    configure: |_, cfg| {
        cfg.qk_norm = true;
        Ok(())
    },
};
