//! LLaMA-family decoders (LLaMA 2/3, SmolLM2, TinyLlama, ...), mirroring transformers'
//! `models/llama/modeling_llama.py`: token embedding, `num_hidden_layers` pre-RMSNorm blocks of
//! grouped-query attention with RoPE and a SwiGLU MLP, a final RMSNorm and the LM head (tied to the
//! embedding or not). Weights come from a Hugging Face checkpoint (config.json + safetensors) or a
//! GGUF file, whose quantized matrices stay quantized on the GPU. The block here is shared by every
//! family read from GGUF (LLaMA, Qwen2, Qwen3, Phi-3, Gemma 2, Gemma 3): each family's file in
//! `llama/family/` says, mirroring its transformers modelling code, which of the block's pieces it
//! turns on (biases, q/k norms, post-norms, GeGLU, soft caps, sliding windows, RoPE variants).
//!
//! One forward call records every layer into the caller's [`Recorder`]: a whole prefill, or one
//! decoding step, is a single submit. Keys and values are written straight into the [`KvCache`].

use crate::error::{Error, Result};
use crate::kernels::rope::Layout;
use crate::models::ops::{Causal, DecoderOps, FusedAttentionOut, FusedMlp, FusedQkv, GpuKv, Rope};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

mod config;
mod family;
mod load;
pub use config::{Act, Config, DEFAULT_CONTEXT, GGUF_ARCHS, check_context, check_fits};

/// Where the weights' names come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Names {
    /// transformers' `model.layers.{i}.self_attn.q_proj.weight`.
    Hf,
    /// llama.cpp's `blk.{i}.attn_q.weight`.
    Gguf,
}

impl Names {
    fn layer(self, i: usize, part: &str) -> String {
        self.layer_tensor(i, part, "weight")
    }

    /// `part`'s `kind` ("weight" or "bias") in layer i.
    fn layer_tensor(self, i: usize, part: &str, kind: &str) -> String {
        match self {
            Names::Hf => format!("model.layers.{i}.{part}.{kind}"),
            Names::Gguf => {
                let short = match part {
                    "input_layernorm" => "attn_norm",
                    "self_attn.q_proj" => "attn_q",
                    "self_attn.k_proj" => "attn_k",
                    "self_attn.v_proj" => "attn_v",
                    "self_attn.o_proj" => "attn_output",
                    "post_attention_layernorm" => "ffn_norm",
                    "mlp.gate_proj" => "ffn_gate",
                    "mlp.up_proj" => "ffn_up",
                    "self_attn.q_norm" => "attn_q_norm",
                    "self_attn.k_norm" => "attn_k_norm",
                    "mlp.down_proj" => "ffn_down",
                    // Phi-3's fused projections.
                    "self_attn.qkv_proj" => "attn_qkv",
                    "mlp.gate_up_proj" => "ffn_up",
                    // Gemma 2/3's norms after attention and after the MLP.
                    "post_attention_norm" => "post_attention_norm",
                    "post_feedforward_layernorm" => "post_ffw_norm",
                    other => other,
                };
                format!("blk.{i}.{short}.{kind}")
            }
        }
    }

    fn global(self, part: &str) -> &'static str {
        match (self, part) {
            (Names::Hf, "embed") => "model.embed_tokens.weight",
            (Names::Hf, "norm") => "model.norm.weight",
            (Names::Hf, _) => "lm_head.weight",
            (Names::Gguf, "embed") => "token_embd.weight",
            (Names::Gguf, "norm") => "output_norm.weight",
            (Names::Gguf, _) => "output.weight",
        }
    }
}

/// One decoder block.
struct Block<O: DecoderOps> {
    attn_norm: O::Tensor,
    q: O::Linear,
    k: O::Linear,
    v: O::Linear,
    /// Qwen3: RMSNorm weights `[head_dim]` over each head of q and of k.
    q_norm: Option<O::Tensor>,
    k_norm: Option<O::Tensor>,
    o: O::Linear,
    /// Gemma 2/3: RMSNorm of the attention's output, before the residual add.
    post_attn_norm: Option<O::Tensor>,
    mlp_norm: O::Tensor,
    gate: O::Linear,
    up: O::Linear,
    down: O::Linear,
    /// Gemma 2/3: RMSNorm of the MLP's output, before the residual add.
    post_mlp_norm: Option<O::Tensor>,
    /// This layer's RoPE: base and per-pair frequency divisors (Llama 3's, linear scaling's).
    rope_theta: f32,
    rope_factors: Option<O::Tensor>,
    /// A sliding window over the keys, on the layers that have one.
    window: Option<usize>,
}

/// Keys and values of every layer for the positions seen so far (`capacity × kv_heads × head_dim` a
/// layer and each of k and v, in the backend's memory), filled in place by each forward call.
pub struct KvCache<O: DecoderOps = Recorder> {
    layers: Vec<O::KvLayer>,
    capacity: usize,
    len: usize,
}

impl<O: DecoderOps> KvCache<O> {
    /// Positions filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every position (the buffers are kept).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Forgets positions from `len` on (to undo a speculative step).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// A LLaMA-family model, on the GPU (`Llama`, `Llama<Recorder>`) or the CPU (`Llama<Cpu>`).
pub struct Llama<O: DecoderOps = Recorder> {
    cfg: Config,
    /// The embedding table (a `[vocab, hidden]` weight; also the LM head when tied).
    embed: O::Linear,
    blocks: Vec<Block<O>>,
    norm: O::Tensor,
    lm_head: O::Linear,
    rope_layout: Layout,
    /// The activations' type: the norms' (f32 for GGUF and f32 checkpoints).
    dtype: DType,
    /// Decoding on GPUs: fold each RMSNorm into the GEMV that reads it ([`Llama::set_fold_norms`]).
    fold_norms: bool,
    /// Phi-3's LongRoPE: the factors for contexts past the original one (the blocks hold the short
    /// ones), used when the cache is longer than that.
    long_rope: Option<LongRope<O::Tensor>>,
    /// The attention's score scale (1/√head_dim unless the config says otherwise; LongRoPE's
    /// attention factor squared folded in).
    attn_scale: f32,
}

/// Phi-3's LongRoPE as llama.cpp chooses it: the long factors for a context past the original one.
struct LongRope<T> {
    long: T,
    original_context: usize,
}

impl<O: DecoderOps> Llama<O> {
    /// Decoding on GPUs (GGUF weights): fold each RMSNorm into the fused QKV + RoPE GEMV and the SwiGLU
    /// GEMV that read it, 2 dispatches a layer fewer (5 rather than 7), each workgroup reducing the row
    /// itself. On by default since the GEMVs read their rows in coalesced quads: on the H200 (Vulkan,
    /// SmolLM2-135M Q4_1, 128 new tokens) 780 against 697 tokens/s unfolded, same call
    /// (`bench-results/h200-gemv-split-ab-2026-12-05.txt`); with the older GEMVs it was no faster
    /// (545.6 against 548.0, `bench-results/h200-q4km-fold-2026-12-04.jsonl`). Same results within
    /// rounding (tests/llama.rs runs the goldens both ways).
    pub fn set_fold_norms(&mut self, on: bool) {
        self.fold_norms = on;
    }

    /// Whether decoding folds the RMSNorms into the GEMVs ([`Llama::set_fold_norms`]).
    pub fn fold_norms(&self) -> bool {
        self.fold_norms
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Checks a cache capacity: 1 to the model's context length.
    fn check_capacity(&self, capacity: usize) -> Result<()> {
        if capacity == 0 || capacity > self.cfg.max_position_embeddings {
            return Err(Error::Input(format!(
                "a KV cache of {capacity} positions: it must be 1 to the model's context length {}",
                self.cfg.max_position_embeddings
            )));
        }
        Ok(())
    }

    /// Runs `ids` (i32 `[seq]` in the backend's memory: a prompt, or the token the previous step
    /// sampled) at positions `cache.len()..`, appends their keys and values to `cache`, and returns
    /// the next-token logits of the last position, `[1, vocab]`. On the GPU everything is recorded
    /// into `ops` (one submit).
    pub fn forward(
        &self,
        ops: &mut O,
        ids: &O::Tensor,
        cache: &mut KvCache<O>,
    ) -> Result<O::Tensor> {
        Ok(self.forward_parts(ops, ids, cache, false)?.0)
    }

    /// [`Llama::forward`]; with `argmax`, also the LM head's workgroups' maxima where the backend
    /// fused the final norm into it and has them (`quant::gemv_norm_argmax` on the GPU), from which a
    /// greedy choice reads an eighth of the logits (`sample::argmax_parts`). None with a final
    /// soft-cap (its tanh may tie logits the maxima tell apart).
    pub(crate) fn forward_parts(
        &self,
        ops: &mut O,
        ids: &O::Tensor,
        cache: &mut KvCache<O>,
        argmax: bool,
    ) -> Result<(O::Tensor, Option<O::Tensor>)> {
        let seq: usize = O::shape(ids).iter().product();
        let pos0 = cache.len;
        if seq == 0 {
            return Err(Error::Input("forward: no tokens".into()));
        }
        if pos0 + seq > cache.capacity {
            return Err(Error::Input(format!(
                "{} positions are past the KV cache's {} (the context is full)",
                pos0 + seq,
                cache.capacity
            )));
        }
        let c = &self.cfg;
        // LongRoPE: the long factors when the context may run past the original one.
        let long = self
            .long_rope
            .as_ref()
            .filter(|l| cache.capacity > l.original_context)
            .map(|l| &l.long);
        let mut x = self.embed(ops, ids)?;
        for (b, kv) in self.blocks.iter().zip(cache.layers.iter_mut()) {
            let factors = long.or(b.rope_factors.as_ref());
            x = self.block(ops, b, factors, &x, kv, pos0)?;
        }
        cache.len = pos0 + seq;
        // modeling_llama.py LlamaForCausalLM.forward: only the last position's logits are needed.
        let last = O::last_row(&x)?;
        // With `fold_norms`, the final norm folded into the LM head where the backend can.
        let argmax = argmax && c.final_softcap.is_none();
        let folded = match self.fold_norms {
            true => {
                let (norm, eps) = (&self.norm, c.rms_norm_eps);
                ops.norm_linear_fused(&last, norm, eps, &self.lm_head, argmax)?
            }
            false => None,
        };
        let (logits, parts) = match folded {
            Some(fused) => fused,
            None => {
                let h = ops.rms_norm(&last, &self.norm, c.rms_norm_eps)?;
                (ops.linear_res(&h, &self.lm_head, None)?, None)
            }
        };
        // Gemma2ForCausalLM.forward: final_logit_softcapping.
        match c.final_softcap {
            Some(cap) => Ok((ops.softcap(&logits, cap)?, None)),
            None => Ok((logits, parts)),
        }
    }

    fn embed(&self, ops: &mut O, ids: &O::Tensor) -> Result<O::Tensor> {
        let x = ops.embed_rows(&self.embed, ids, self.dtype)?;
        // Gemma's scaled embedding: rows times √hidden_size.
        match self.cfg.embed_scale {
            Some(scale) => ops.scale(&x, scale),
            None => Ok(x),
        }
    }

    /// modeling_llama.py LlamaDecoderLayer.forward: `x + attn(norm(x))`, then `x + mlp(norm(x))`;
    /// modeling_gemma2.py's adds a norm on each branch's output (`post_norms`).
    fn block(
        &self,
        ops: &mut O,
        b: &Block<O>,
        rope_factors: Option<&O::Tensor>,
        x: &O::Tensor,
        kv: &mut O::KvLayer,
        pos0: usize,
    ) -> Result<O::Tensor> {
        let c = &self.cfg;
        let seq = O::shape(x)[0];
        let (heads, kv_heads, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        // LlamaAttention.forward: project, rotate q and k, append k and v to the cache.
        let rope = Rope {
            pos0,
            theta: b.rope_theta,
            layout: self.rope_layout,
            factors: rope_factors,
        };
        let fused = ops.qkv_fused(FusedQkv {
            x,
            norm: &b.attn_norm,
            eps: c.rms_norm_eps,
            fold_norm: self.fold_norms,
            q: &b.q,
            k: &b.k,
            v: &b.v,
            head_norms: b.q_norm.is_some() || b.k_norm.is_some(),
            heads,
            kv_heads,
            head_dim: hd,
            rope: &rope,
            kv,
        })?;
        let was_fused = fused.is_some();
        let q = match fused {
            Some(q) => q,
            None => self.qkv(ops, b, x, &rope, kv)?,
        };
        let causal = Causal {
            kv_len: pos0 + seq,
            scale: self.attn_scale,
            window: b.window,
            softcap: c.attn_softcap,
        };
        let fused = match b.post_attn_norm {
            None => ops.attention_out_fused(FusedAttentionOut {
                q: &q,
                kv,
                causal: &causal,
                out: &b.o,
                x,
            })?,
            Some(_) => None,
        };
        let x = match fused {
            Some(x) => x,
            None => {
                let a = ops.cached_attention(&q, kv, &causal)?;
                let a = O::reshape(&a, &[seq, heads * hd])?;
                add_branch(ops, &b.o, &a, b.post_attn_norm.as_ref(), x, c.rms_norm_eps)?
            }
        };
        self.mlp(ops, b, &x, was_fused)
    }

    /// q, k and v by their own projections: the input RMSNorm, Qwen3's per-head norms of q and k,
    /// RoPE on both (k into the cache), v into the cache. Returns q.
    fn qkv(
        &self,
        ops: &mut O,
        b: &Block<O>,
        x: &O::Tensor,
        rope: &Rope<'_, O::Tensor>,
        kv: &mut O::KvLayer,
    ) -> Result<O::Tensor> {
        let c = &self.cfg;
        let eps = c.rms_norm_eps;
        let seq = O::shape(x)[0];
        let (heads, kv_heads, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        let h = ops.rms_norm(x, &b.attn_norm, eps)?;
        // Qwen3Attention.forward: q_norm / k_norm over each head, before RoPE.
        let head_norm = |ops: &mut O, t: O::Tensor, w: &Option<O::Tensor>| match w {
            Some(w) => ops.rms_norm(&t, w, eps),
            None => Ok(t),
        };
        let q = ops.linear_res(&h, &b.q, None)?;
        let q = head_norm(ops, O::reshape(&q, &[1, seq, heads, hd])?, &b.q_norm)?;
        let q = ops.rope(&q, rope)?;
        let k = ops.linear_res(&h, &b.k, None)?;
        let k = head_norm(ops, O::reshape(&k, &[1, seq, kv_heads, hd])?, &b.k_norm)?;
        ops.k_to_cache(&k, rope, kv)?;
        ops.v_to_cache(&h, &b.v, kv, rope.pos0)?;
        Ok(q)
    }

    /// LlamaMLP.forward with the residual: x + down(act(gate(h)) * up(h)), h = norm(x) (Gemma: a
    /// norm after too). After a fused QKV with `fold_norms`, the backend may fuse it all.
    fn mlp(&self, ops: &mut O, b: &Block<O>, x: &O::Tensor, fused: bool) -> Result<O::Tensor> {
        let c = &self.cfg;
        let eps = c.rms_norm_eps;
        if fused && self.fold_norms && b.post_mlp_norm.is_none() {
            let y = ops.mlp_fused(FusedMlp {
                x,
                norm: &b.mlp_norm,
                eps,
                gate: &b.gate,
                up: &b.up,
                down: &b.down,
                act: c.act,
            })?;
            if let Some(y) = y {
                return Ok(y);
            }
        }
        let h = ops.rms_norm(x, &b.mlp_norm, eps)?;
        let act = ops.gated(&h, &b.gate, &b.up, c.act)?;
        add_branch(ops, &b.down, &act, b.post_mlp_norm.as_ref(), x, eps)
    }
}

impl Llama<Recorder> {
    /// An empty cache on the GPU for up to `capacity` positions (at most the model's context length).
    pub fn new_cache(&self, gpu: &crate::Gpu, capacity: usize) -> Result<KvCache> {
        self.check_capacity(capacity)?;
        let shape = [1, capacity, self.cfg.num_key_value_heads, self.cfg.head_dim];
        let layers = (0..self.cfg.num_hidden_layers)
            .map(|_| {
                Ok(GpuKv {
                    k: Tensor::empty(gpu, &shape, self.dtype)?,
                    v: Tensor::empty(gpu, &shape, self.dtype)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache {
            layers,
            capacity,
            len: 0,
        })
    }
}

impl Llama<crate::cpu::Cpu> {
    /// An empty cache in host memory for up to `capacity` positions (at most the context length).
    pub fn new_host_cache(&self, capacity: usize) -> Result<KvCache<crate::cpu::Cpu>> {
        self.check_capacity(capacity)?;
        let (kv_heads, hd) = (self.cfg.num_key_value_heads, self.cfg.head_dim);
        let layers = (0..self.cfg.num_hidden_layers)
            .map(|_| crate::cpu::decoder::HostKv::new(capacity, kv_heads, hd))
            .collect();
        Ok(KvCache {
            layers,
            capacity,
            len: 0,
        })
    }
}

/// `x + out(h)`, or with Gemma's post-norm `x + norm(out(h))`: a branch's output added to the
/// residual stream (without a norm the add is the projection's own residual term).
fn add_branch<O: DecoderOps>(
    ops: &mut O,
    out: &O::Linear,
    h: &O::Tensor,
    post_norm: Option<&O::Tensor>,
    x: &O::Tensor,
    eps: f32,
) -> Result<O::Tensor> {
    match post_norm {
        None => ops.linear_res(h, out, Some(x)),
        Some(w) => {
            let y = ops.linear_res(h, out, None)?;
            let y = ops.rms_norm(&y, w, eps)?;
            ops.add(&y, x)
        }
    }
}
