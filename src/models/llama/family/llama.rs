//! LLaMA 2 / 3 / 3.1 / 3.2, SmolLM2, TinyLlama, Mistral-style GGUF files (transformers'
//! `models/llama/modeling_llama.py`): pre-RMSNorm blocks; grouped-query attention with RoPE; a SwiGLU
//! MLP, `down(silu(gate(x)) · up(x))`; a final RMSNorm and the LM head, tied to the embedding or not.
//! Every piece is the shared block's default. Llama 3.1/3.2's RoPE scaling reaches GGUF as
//! per-frequency factors (`rope_freqs.weight`, read at load); a Mistral-style window as
//! `llama.attention.sliding_window`.

use super::Family;

pub(super) const LLAMA: Family = Family {
    arch: "llama",
    configure: |_, cfg| {
        // llama.cpp's converter permutes q's and k's rows for GGML's interleaved RoPE (pairs 2i,
        // 2i + 1) in `llama` files; the kernels rotate those pairs rather than undoing it.
        cfg.rope_interleaved = true;
        Ok(())
    },
};
