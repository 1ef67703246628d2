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

use crate::bridge::load::AnyTensor;
use crate::error::{Error, Result};
use crate::kernels::attention::{self, attention};
use crate::kernels::embedding::{Extras, embedding};
use crate::kernels::rope::{Layout, rope_scaled};
use crate::kernels::{elementwise, norm::rms_norm, quant};
use crate::qtensor::QTensor;
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

use super::linear::{Linear, gemv_max_rows};

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
struct Block {
    attn_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    /// Qwen3: RMSNorm weights `[head_dim]` over each head of q and of k.
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    o: Linear,
    /// Gemma 2/3: RMSNorm of the attention's output, before the residual add.
    post_attn_norm: Option<Tensor>,
    mlp_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
    /// Gemma 2/3: RMSNorm of the MLP's output, before the residual add.
    post_mlp_norm: Option<Tensor>,
    /// This layer's RoPE: base and per-pair frequency divisors (Llama 3's, linear scaling's).
    rope_theta: f32,
    rope_factors: Option<Tensor>,
    /// A sliding window over the keys, on the layers that have one.
    window: Option<usize>,
}

/// Keys and values of every layer for the positions seen so far: `[1, capacity, kv_heads, head_dim]`
/// a layer, filled in place by each forward call.
pub struct KvCache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    capacity: usize,
    len: usize,
}

impl KvCache {
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

/// A LLaMA-family model on the GPU.
pub struct Llama {
    cfg: Config,
    embed: AnyTensor,
    blocks: Vec<Block>,
    norm: Tensor,
    lm_head: Linear,
    rope_layout: Layout,
    /// The activations' type: the norms' (f32 for GGUF and f32 checkpoints).
    dtype: DType,
    /// Decoding on GPUs: fold each RMSNorm into the GEMV that reads it ([`Llama::set_fold_norms`]).
    fold_norms: bool,
    /// Phi-3's LongRoPE: the factors for contexts past the original one (the blocks hold the short
    /// ones), used when the cache is longer than that.
    long_rope: Option<LongRope>,
    /// The attention's score scale (1/√head_dim unless the config says otherwise; LongRoPE's
    /// attention factor squared folded in).
    attn_scale: f32,
}

/// Phi-3's LongRoPE as llama.cpp chooses it: the long factors for a context past the original one.
struct LongRope {
    long: Tensor,
    original_context: usize,
}

impl Llama {
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

    /// An empty cache for up to `capacity` positions (at most the model's context length).
    pub fn new_cache(&self, gpu: &crate::Gpu, capacity: usize) -> Result<KvCache> {
        if capacity == 0 || capacity > self.cfg.max_position_embeddings {
            return Err(Error::Input(format!(
                "a KV cache of {capacity} positions: it must be 1 to the model's context length {}",
                self.cfg.max_position_embeddings
            )));
        }
        let shape = [1, capacity, self.cfg.num_key_value_heads, self.cfg.head_dim];
        let layers = self.cfg.num_hidden_layers;
        let make = || -> Result<Vec<Tensor>> {
            (0..layers)
                .map(|_| Tensor::empty(gpu, &shape, self.dtype))
                .collect()
        };
        Ok(KvCache {
            k: make()?,
            v: make()?,
            capacity,
            len: 0,
        })
    }

    /// Runs `ids` (i32 `[seq]`, on the GPU: a prompt, or the token the previous step sampled) at
    /// positions `cache.len()..`, appends their keys and values to `cache`, and returns the next-token
    /// logits of the last position, `[1, vocab]`.
    pub fn forward(&self, rec: &mut Recorder, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let seq = ids.numel();
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
        let mut x = self.embed(rec, ids)?;
        for (i, b) in self.blocks.iter().enumerate() {
            let factors = long.or(b.rope_factors.as_ref());
            x = self.block(rec, b, factors, &x, &cache.k[i], &cache.v[i], pos0)?;
        }
        cache.len = pos0 + seq;
        // modeling_llama.py LlamaForCausalLM.forward: only the last position's logits are needed.
        let last = x.narrow(seq - 1, 1)?;
        let h = rms_norm(rec, &last, &self.norm, c.rms_norm_eps)?;
        let logits = self.lm_head.forward(rec, &h, None, None)?;
        // Gemma2ForCausalLM.forward: final_logit_softcapping.
        match c.final_softcap {
            Some(cap) => elementwise::softcap(rec, &logits, cap),
            None => Ok(logits),
        }
    }

    fn embed(&self, rec: &mut Recorder, ids: &Tensor) -> Result<Tensor> {
        let seq = ids.numel();
        let x = match &self.embed {
            AnyTensor::Quant(table) => {
                quant::gather(rec, table, &ids.reshape(&[seq])?, self.dtype)?
            }
            AnyTensor::Dense(table) => {
                embedding(rec, &ids.reshape(&[1, seq])?, table, Extras::default())?
            }
        };
        // Gemma's scaled embedding: rows times √hidden_size.
        let x = match self.cfg.embed_scale {
            Some(scale) => elementwise::scale(rec, &x, scale)?,
            None => x,
        };
        x.reshape(&[seq, self.cfg.hidden_size])
    }

    /// modeling_llama.py LlamaDecoderLayer.forward: `x + attn(norm(x))`, then `x + mlp(norm(x))`;
    /// modeling_gemma2.py's adds a norm on each branch's output (`post_norms`).
    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        rec: &mut Recorder,
        b: &Block,
        rope_factors: Option<&Tensor>,
        x: &Tensor,
        k_cache: &Tensor,
        v_cache: &Tensor,
        pos0: usize,
    ) -> Result<Tensor> {
        let c = &self.cfg;
        let seq = x.shape()[0];
        let (heads, kv_heads, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        // LlamaAttention.forward: project, rotate q and k, append k and v to the cache.
        let cache_rows = |cache: &Tensor| -> Result<Tensor> {
            let rows = cache.reshape(&cache.shape()[1..])?.narrow(pos0, seq)?;
            rows.reshape(&[1, seq, kv_heads, hd])
        };
        let k_rows = cache_rows(k_cache)?;
        let v_rows = cache_rows(v_cache)?.reshape(&[seq, kv_heads * hd])?;
        let fused = self.fused_qkv(rec, b, seq);
        let rope = (pos0, rope_factors);
        let q = match fused {
            Some(w) => self.qkv_fused(rec, b, x, w, rope, [&k_rows, &v_rows])?,
            None => self.qkv(rec, b, x, rope, [&k_rows, &v_rows])?,
        };
        let opts = attention::Options {
            causal: true,
            kv_len: Some(pos0 + seq),
            scale: Some(self.attn_scale),
            window: b.window,
            softcap: c.attn_softcap,
            ..Default::default()
        };
        let a = attention(rec, &q, k_cache, v_cache, opts)?.reshape(&[seq, heads * hd])?;
        let x = add_branch(rec, &b.o, &a, b.post_attn_norm.as_ref(), x, c.rms_norm_eps)?;
        self.mlp(rec, b, &x, fused.is_some())
    }

    /// Decoding on a GPU, GGUF weights (q and k of one type, v of any): the quantized q, k and v
    /// whose projections and RoPE run in one dispatch (`quant::gemv_qkv`), with `fold_norms` the
    /// RMSNorms too (into it and the SwiGLU GEMV). `None` where that does not apply.
    fn fused_qkv<'b>(
        &self,
        rec: &Recorder,
        b: &'b Block,
        seq: usize,
    ) -> Option<(&'b QTensor, &'b QTensor, &'b QTensor)> {
        let c = &self.cfg;
        let (heads, kv_heads, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        match (&b.q.weight, &b.k.weight, &b.v.weight) {
            (AnyTensor::Quant(wq), AnyTensor::Quant(wk), AnyTensor::Quant(wv))
                if seq == 1
                    && b.q.bias.is_none()
                    && b.q_norm.is_none()
                    && !rec.gpu().capabilities().cpu_kernels
                    && wq.qtype() == wk.qtype()
                    && (heads * hd) % 8 == 0
                    && (kv_heads * hd) % 8 == 0 =>
            {
                Some((wq, wk, wv))
            }
            _ => None,
        }
    }

    /// One token's q (returned) with k and v written to the cache rows, in one GEMV dispatch (with
    /// the input RMSNorm folded in, or its own dispatch before). `rope`: (position, factors).
    fn qkv_fused(
        &self,
        rec: &mut Recorder,
        b: &Block,
        x: &Tensor,
        (wq, wk, wv): (&QTensor, &QTensor, &QTensor),
        (pos0, factors): (usize, Option<&Tensor>),
        [k_rows, v_rows]: [&Tensor; 2],
    ) -> Result<Tensor> {
        let c = &self.cfg;
        let eps = c.rms_norm_eps;
        let rope = quant::Rope {
            pos: pos0,
            theta: b.rope_theta,
            head_dim: c.head_dim,
            factors,
            rotate_half: self.rope_layout == Layout::RotateHalf,
        };
        let (h, norm) = if self.fold_norms {
            let norm = quant::Norm {
                weight: &b.attn_norm,
                eps,
            };
            (x.clone(), Some(norm))
        } else {
            (rms_norm(rec, x, &b.attn_norm, eps)?, None)
        };
        quant::gemv_qkv(rec, &h, wq, wk, wv, k_rows, v_rows, Some(rope), norm)?.reshape(&[
            1,
            x.shape()[0],
            c.num_attention_heads,
            c.head_dim,
        ])
    }

    /// q, k and v by their own projections: the input RMSNorm, Qwen3's per-head norms of q and k,
    /// RoPE on both (k into the cache rows), v into its cache rows. Returns q.
    fn qkv(
        &self,
        rec: &mut Recorder,
        b: &Block,
        x: &Tensor,
        (pos0, factors): (usize, Option<&Tensor>),
        [k_rows, v_rows]: [&Tensor; 2],
    ) -> Result<Tensor> {
        let c = &self.cfg;
        let eps = c.rms_norm_eps;
        let seq = x.shape()[0];
        let (heads, kv_heads, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        let h = rms_norm(rec, x, &b.attn_norm, eps)?;
        // Qwen3Attention.forward: q_norm / k_norm over each head, before RoPE.
        let head_norm = |rec: &mut Recorder, t: Tensor, w: &Option<Tensor>| match w {
            Some(w) => rms_norm(rec, &t, w, eps),
            None => Ok(t),
        };
        let (theta, layout) = (b.rope_theta, self.rope_layout);
        let q = b.q.forward(rec, &h, None, None)?;
        let q = head_norm(rec, q.reshape(&[1, seq, heads, hd])?, &b.q_norm)?;
        let q = rope_scaled(rec, &q, None, pos0, theta, layout, factors)?;
        let k = b.k.forward(rec, &h, None, None)?;
        let k = head_norm(rec, k.reshape(&[1, seq, kv_heads, hd])?, &b.k_norm)?;
        rope_scaled(rec, &k, Some(k_rows), pos0, theta, layout, factors)?;
        b.v.forward(rec, &h, None, Some(v_rows))?;
        Ok(q)
    }

    /// LlamaMLP.forward with the residual: x + down(act(gate(h)) * up(h)), h = norm(x) (Gemma: a
    /// norm after too). Decoding with the fused QKV path and `fold_norms`, the norm folds into the
    /// gated GEMV; quantized weights for few rows take the gated GEMV; else two linears and the
    /// elementwise gate.
    fn mlp(&self, rec: &mut Recorder, b: &Block, x: &Tensor, fused: bool) -> Result<Tensor> {
        let c = &self.cfg;
        let eps = c.rms_norm_eps;
        let seq = x.shape()[0];
        if let (true, true, Act::Silu, AnyTensor::Quant(g), AnyTensor::Quant(u)) =
            (fused, self.fold_norms, c.act, &b.gate.weight, &b.up.weight)
            && g.qtype() == u.qtype()
            && b.post_mlp_norm.is_none()
        {
            let norm = quant::Norm {
                weight: &b.mlp_norm,
                eps,
            };
            let act = quant::gemv_swiglu_norm(rec, x, g, u, norm)?;
            return b.down.forward(rec, &act, Some(x), None);
        }
        let h = rms_norm(rec, x, &b.mlp_norm, eps)?;
        let act = match (&b.gate.weight, &b.up.weight) {
            (AnyTensor::Quant(g), AnyTensor::Quant(u))
                if seq <= gemv_max_rows(rec.gpu()) && g.qtype() == u.qtype() =>
            {
                match c.act {
                    Act::Silu => quant::gemv_swiglu(rec, &h, g, u)?,
                    Act::GeluTanh => quant::gemv_geglu(rec, &h, g, u)?,
                }
            }
            _ => {
                let g = b.gate.forward(rec, &h, None, None)?;
                let u = b.up.forward(rec, &h, None, None)?;
                match c.act {
                    Act::Silu => elementwise::silu_mul(rec, &g, &u)?,
                    Act::GeluTanh => elementwise::gelu_tanh_mul(rec, &g, &u)?,
                }
            }
        };
        add_branch(rec, &b.down, &act, b.post_mlp_norm.as_ref(), x, eps)
    }
}

/// `x + out(h)`, or with Gemma's post-norm `x + norm(out(h))`: a branch's output added to the
/// residual stream (without a norm the add is the projection's own residual term).
fn add_branch(
    rec: &mut Recorder,
    out: &Linear,
    h: &Tensor,
    post_norm: Option<&Tensor>,
    x: &Tensor,
    eps: f32,
) -> Result<Tensor> {
    match post_norm {
        None => out.forward(rec, h, Some(x), None),
        Some(w) => {
            let y = out.forward(rec, h, None, None)?;
            let y = rms_norm(rec, &y, w, eps)?;
            elementwise::add(rec, &y, x)
        }
    }
}
