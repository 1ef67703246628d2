//! Gemma 2 (transformers' `models/gemma2/modeling_gemma2.py`) and Gemma 3 text
//! (`models/gemma3/modeling_gemma3.py`), on LLaMA's block:
//! - a GeGLU MLP, `down(gelu_tanh(gate(x)) · up(x))`;
//! - an RMSNorm on the attention's and on the MLP's output before each residual add (GGUF stores
//!   Gemma's norm weights as 1 + w);
//! - the embedding scaled by √hidden_size;
//! - Gemma 2: scores and final logits soft-capped (`attn_logit_softcapping`,
//!   `final_logit_softcapping`, read by every family), a sliding window on every other layer;
//! - Gemma 3: per-head q/k RMSNorms (as Qwen3), a window on 5 layers of 6
//!   (`gemma3.attention.sliding_window_pattern`), RoPE base 10 000 on the sliding layers and the
//!   file's base and linear scaling on the global ones;
//! - the 27B models scale scores by 1/√(hidden / heads) rather than 1/√head_dim
//!   (`query_pre_attn_scalar`, which GGUF does not store: llama.cpp's `llama-model.cpp` rule, by layer
//!   count).

use super::super::config::{Act, Config, Keys};
use super::Family;
use crate::error::Result;

pub(super) const GEMMA2: Family = Family {
    arch: "gemma2",
    configure: |_, cfg| {
        gemma(cfg, 46);
        cfg.sliding_pattern = cfg.sliding_window.and(Some(2));
        Ok(())
    },
};

pub(super) const GEMMA3: Family = Family {
    arch: "gemma3",
    configure: gemma3,
};

/// What Gemma 2 and 3 share; `layers_27b` is the 27B model's layer count.
fn gemma(cfg: &mut Config, layers_27b: usize) {
    cfg.act = Act::GeluTanh;
    cfg.post_norms = true;
    cfg.embed_scale = Some((cfg.hidden_size as f32).sqrt());
    if cfg.num_hidden_layers == layers_27b {
        let per_head = cfg.hidden_size / cfg.num_attention_heads.max(1);
        cfg.attn_scale = Some(1.0 / (per_head as f32).sqrt());
    }
}

fn gemma3(keys: &Keys<'_>, cfg: &mut Config) -> Result<()> {
    gemma(cfg, 62);
    cfg.qk_norm = true;
    let pattern = keys
        .opt_int("attention.sliding_window_pattern")
        .filter(|&n| n > 0)
        .unwrap_or(6);
    cfg.sliding_pattern = cfg.sliding_window.and(Some(pattern));
    cfg.rope_theta_local = cfg.sliding_window.and(Some(10_000.0));
    Ok(())
}
