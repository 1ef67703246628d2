//! LLaMA-family decoders (LLaMA 2/3, SmolLM2, TinyLlama, ...), mirroring transformers'
//! `models/llama/modeling_llama.py`: token embedding, `num_hidden_layers` pre-RMSNorm blocks of
//! grouped-query attention with RoPE and a SwiGLU MLP, a final RMSNorm and the LM head (tied to the
//! embedding or not). Weights come from a Hugging Face checkpoint (config.json + safetensors) or a
//! GGUF file, whose quantized matrices stay quantized on the GPU. From GGUF also Qwen2
//! (`modeling_qwen2.py`: biases on q, k and v) and Qwen3 (`modeling_qwen3.py`: an RMSNorm over each
//! head of q and k before RoPE), which llama.cpp stores with rotate-half ("NEOX") RoPE.
//!
//! One forward call records every layer into the caller's [`Recorder`]: a whole prefill, or one
//! decoding step, is a single submit. Keys and values are written straight into the [`KvCache`].

use crate::bridge::Weights;
use crate::bridge::load::AnyTensor;
use crate::error::{Error, Result};
use crate::kernels::attention::{self, attention};
use crate::kernels::embedding::{Extras, embedding};
use crate::kernels::matmul::linear;
use crate::kernels::rope::{Layout, rope_scaled};
use crate::kernels::{elementwise, norm::rms_norm, quant};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

/// Up to this many rows (tokens), quantized weights are read by the dequantizing GEMV; past it they
/// are dequantized into a scratch tensor for the tiled matmul (prefill). On GPUs the GEMV takes 4 rows
/// a workgroup and wins up to 32 rows at least (H200, SmolLM2-135M Q4_1, time to first token: 15
/// tokens 16.4 → 9.8 ms, 32 tokens 16.2 → 14.0 ms; with runtime checks, 15 tokens 29.1 → 9.6 ms;
/// `bench-results/h200-gemv4-2026-12-04.txt`). CPU adapters run one row a thread, up to 8 rows.
fn gemv_max_rows(gpu: &crate::Gpu) -> usize {
    if gpu.capabilities().cpu_kernels {
        8
    } else {
        32
    }
}

mod config;
use config::bad;
pub use config::{Config, GGUF_ARCHS};

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
                    _ => "ffn_down",
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

/// A weight matrix `[out, in]`, dense or block-quantized, and an optional bias `[out]`, as a linear
/// layer uses them.
#[derive(Clone)]
pub struct Linear {
    weight: AnyTensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// With the bias `bias_name` (`[out]`).
    fn load_with_bias(
        weights: &Weights,
        name: &str,
        bias_name: &str,
        out: usize,
        inp: usize,
    ) -> Result<Linear> {
        let mut l = Linear::load(weights, name, out, inp)?;
        let bias = weights.get(bias_name)?;
        if bias.shape() != [out] {
            return Err(bad(
                bias_name,
                format!("has shape {:?}, not [{out}]", bias.shape()),
            ));
        }
        l.bias = Some(bias.clone());
        Ok(l)
    }

    fn load(weights: &Weights, name: &str, out: usize, inp: usize) -> Result<Linear> {
        let weight = weights.get_any(name)?;
        if weight.shape() != [out, inp] {
            return Err(bad(
                name,
                format!(
                    "has shape {:?}, the config implies [{out}, {inp}]",
                    weight.shape()
                ),
            ));
        }
        Ok(Linear { weight, bias: None })
    }

    /// `x · Wᵀ (+ bias) (+ residual)`, written into `out` when given.
    fn forward(
        &self,
        rec: &mut Recorder,
        x: &Tensor,
        residual: Option<&Tensor>,
        out: Option<&Tensor>,
    ) -> Result<Tensor> {
        let rows = x.numel() / x.shape().last().copied().unwrap_or(1).max(1);
        let bias = self.bias.as_ref();
        let y = match &self.weight {
            AnyTensor::Quant(w) if rows <= gemv_max_rows(rec.gpu()) => {
                // One row: a bias is the GEMV's added term (when no residual is).
                let row_bias = match (bias, residual) {
                    (Some(b), None) if rows == 1 => Some(b.reshape(&[1, b.numel()])?),
                    _ => None,
                };
                if bias.is_none() || row_bias.is_some() {
                    let opts = quant::GemvOptions {
                        residual: residual.or(row_bias.as_ref()),
                        out,
                        ..Default::default()
                    };
                    return quant::gemv_with(rec, x, w, opts);
                }
                let y = quant::gemv(rec, x, w, None)?;
                match bias {
                    Some(b) => elementwise::add(rec, &y, b)?,
                    None => y,
                }
            }
            AnyTensor::Quant(w) => {
                let dense = quant::dequantize(rec, w, x.dtype())?;
                linear(rec, x, &dense, bias, None)?
            }
            AnyTensor::Dense(w) => linear(rec, x, w, bias, None)?,
        };
        let y = match residual {
            Some(r) => elementwise::add(rec, &y, r)?,
            None => y,
        };
        if let Some(out) = out {
            elementwise::copy_into(rec, &y.reshape(out.shape())?, out)?;
            return Ok(out.clone());
        }
        Ok(y)
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
    mlp_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
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
    /// Llama 3's RoPE scaling: f32 `[head_dim / 2]` factors dividing each pair's frequency (GGUF's
    /// `rope_freqs.weight`).
    rope_factors: Option<Tensor>,
}

impl Llama {
    /// Builds the model from a Hugging Face checkpoint's weights.
    pub fn from_hf(cfg: Config, weights: &Weights) -> Result<Llama> {
        Self::load(cfg, weights, Names::Hf, Layout::RotateHalf)
    }

    /// Builds the model from a GGUF file's weights (for `llama` llama.cpp permuted the query and key
    /// rows to GGML's interleaved RoPE layout, which is what the kernel then uses; Qwen2 and Qwen3
    /// files keep rotate-half RoPE, as [`Config`]'s `attention_bias` / `qk_norm` say they are).
    pub fn from_gguf(cfg: Config, weights: &Weights) -> Result<Llama> {
        let layout = if cfg.attention_bias || cfg.qk_norm {
            Layout::RotateHalf
        } else {
            Layout::Interleaved
        };
        let half = cfg.head_dim / 2;
        let mut model = Self::load(cfg, weights, Names::Gguf, layout)?;
        const FACTORS: &str = "rope_freqs.weight";
        if weights.contains(FACTORS) {
            let f = weights.get(FACTORS)?;
            if f.shape() != [half] || f.dtype() != DType::F32 {
                return Err(bad(
                    FACTORS,
                    format!("is {:?} {:?}, not f32 [{half}]", f.dtype(), f.shape()),
                ));
            }
            model.rope_factors = Some(f.clone());
        }
        Ok(model)
    }

    fn load(cfg: Config, weights: &Weights, names: Names, rope_layout: Layout) -> Result<Llama> {
        let (d, ff) = (cfg.hidden_size, cfg.intermediate_size);
        let (q_dim, kv_dim) = (
            cfg.num_attention_heads * cfg.head_dim,
            cfg.num_key_value_heads * cfg.head_dim,
        );
        let norm_of = |name: &str, d: usize| -> Result<Tensor> {
            let t = weights.get(name)?;
            if t.shape() != [d] {
                return Err(bad(name, format!("has shape {:?}, not [{d}]", t.shape())));
            }
            Ok(t.clone())
        };
        let norm = |name: &str| norm_of(name, d);
        let blocks = (0..cfg.num_hidden_layers)
            .map(|i| {
                let l = |part: &str| names.layer(i, part);
                let proj = |part: &str, out: usize| -> Result<Linear> {
                    if cfg.attention_bias {
                        let bias = names.layer_tensor(i, part, "bias");
                        Linear::load_with_bias(weights, &l(part), &bias, out, d)
                    } else {
                        Linear::load(weights, &l(part), out, d)
                    }
                };
                let head_norm = |part: &str| -> Result<Option<Tensor>> {
                    cfg.qk_norm
                        .then(|| norm_of(&l(part), cfg.head_dim))
                        .transpose()
                };
                Ok(Block {
                    attn_norm: norm(&l("input_layernorm"))?,
                    q: proj("self_attn.q_proj", q_dim)?,
                    k: proj("self_attn.k_proj", kv_dim)?,
                    v: proj("self_attn.v_proj", kv_dim)?,
                    q_norm: head_norm("self_attn.q_norm")?,
                    k_norm: head_norm("self_attn.k_norm")?,
                    o: Linear::load(weights, &l("self_attn.o_proj"), d, q_dim)?,
                    mlp_norm: norm(&l("post_attention_layernorm"))?,
                    gate: Linear::load(weights, &l("mlp.gate_proj"), ff, d)?,
                    up: Linear::load(weights, &l("mlp.up_proj"), ff, d)?,
                    down: Linear::load(weights, &l("mlp.down_proj"), d, ff)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let embed_name = names.global("embed");
        let embed = Linear::load(weights, embed_name, cfg.vocab_size, d)?;
        let lm_head = if cfg.tie_word_embeddings {
            embed.clone()
        } else {
            Linear::load(weights, names.global("lm_head"), cfg.vocab_size, d)?
        };
        let norm = norm(names.global("norm"))?;
        let dtype = norm.dtype();
        if let AnyTensor::Dense(t) = &embed.weight
            && t.dtype() != dtype
        {
            return Err(bad(
                embed_name,
                format!("is {:?} but the norms are {dtype:?}", t.dtype()),
            ));
        }
        Ok(Llama {
            embed: embed.weight,
            blocks,
            norm,
            lm_head,
            rope_layout,
            dtype,
            fold_norms: false,
            rope_factors: None,
            cfg,
        })
    }

    /// Decoding on GPUs (GGUF weights): fold each RMSNorm into the fused QKV + RoPE GEMV and the SwiGLU
    /// GEMV that read it, 2 dispatches a layer fewer (5 rather than 7), each workgroup reducing the row
    /// itself. Off by default: an earlier fold (into every projection's GEMV) was slower on the H100
    /// (419.8 against 453.1 tokens/s, 2026-11), and this one is no faster on the H200 (545.6 against
    /// 548.0 tokens/s, `bench-results/h200-q4km-fold-2026-12-04.jsonl`): each workgroup's own
    /// reduction over the row costs what the saved dispatch did. Same results within rounding.
    pub fn set_fold_norms(&mut self, on: bool) {
        self.fold_norms = on;
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
        let mut x = self.embed(rec, ids)?;
        for (i, b) in self.blocks.iter().enumerate() {
            x = self.block(rec, b, &x, &cache.k[i], &cache.v[i], pos0)?;
        }
        cache.len = pos0 + seq;
        // modeling_llama.py LlamaForCausalLM.forward: only the last position's logits are needed.
        let last = x.narrow(seq - 1, 1)?;
        let h = rms_norm(rec, &last, &self.norm, c.rms_norm_eps)?;
        self.lm_head.forward(rec, &h, None, None)
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
        x.reshape(&[seq, self.cfg.hidden_size])
    }

    /// modeling_llama.py LlamaDecoderLayer.forward: `x + attn(norm(x))`, then `x + mlp(norm(x))`.
    fn block(
        &self,
        rec: &mut Recorder,
        b: &Block,
        x: &Tensor,
        k_cache: &Tensor,
        v_cache: &Tensor,
        pos0: usize,
    ) -> Result<Tensor> {
        let c = &self.cfg;
        let seq = x.shape()[0];
        let (heads, kv_heads, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        let eps = c.rms_norm_eps;
        // Decoding on a GPU, GGUF weights (q and k of one type, v of any): the three projections and
        // RoPE in one dispatch (quant::gemv_qkv); with fold_norms the RMSNorms too (into it and the
        // SwiGLU GEMV).
        let fused = match (&b.q.weight, &b.k.weight, &b.v.weight) {
            (AnyTensor::Quant(wq), AnyTensor::Quant(wk), AnyTensor::Quant(wv))
                if seq == 1
                    && self.rope_layout == Layout::Interleaved
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
        };
        // LlamaAttention.forward: project, rotate q and k, append k and v to the cache.
        let cache_rows = |cache: &Tensor| -> Result<Tensor> {
            let rows = cache.reshape(&cache.shape()[1..])?.narrow(pos0, seq)?;
            rows.reshape(&[1, seq, kv_heads, hd])
        };
        let k_rows = cache_rows(k_cache)?;
        let v_rows = cache_rows(v_cache)?.reshape(&[seq, kv_heads * hd])?;
        let q = if let Some((wq, wk, wv)) = fused {
            let rope = quant::Rope {
                pos: pos0,
                theta: c.rope_theta,
                head_dim: hd,
                factors: self.rope_factors.as_ref(),
            };
            // The norm folded into the kernel, or its own dispatch first.
            let (h, norm) = if self.fold_norms {
                let norm = quant::Norm {
                    weight: &b.attn_norm,
                    eps,
                };
                (x.clone(), Some(norm))
            } else {
                (rms_norm(rec, x, &b.attn_norm, eps)?, None)
            };
            quant::gemv_qkv(rec, &h, wq, wk, wv, &k_rows, &v_rows, Some(rope), norm)?
                .reshape(&[1, seq, heads, hd])?
        } else {
            let h = rms_norm(rec, x, &b.attn_norm, eps)?;
            // Qwen3Attention.forward: q_norm / k_norm over each head, before RoPE.
            let head_norm = |rec: &mut Recorder, t: Tensor, w: &Option<Tensor>| match w {
                Some(w) => rms_norm(rec, &t, w, eps),
                None => Ok(t),
            };
            let q = b.q.forward(rec, &h, None, None)?;
            let q = head_norm(rec, q.reshape(&[1, seq, heads, hd])?, &b.q_norm)?;
            let factors = self.rope_factors.as_ref();
            let q = rope_scaled(rec, &q, None, pos0, c.rope_theta, self.rope_layout, factors)?;
            let k = b.k.forward(rec, &h, None, None)?;
            let k = head_norm(rec, k.reshape(&[1, seq, kv_heads, hd])?, &b.k_norm)?;
            let theta = c.rope_theta;
            rope_scaled(
                rec,
                &k,
                Some(&k_rows),
                pos0,
                theta,
                self.rope_layout,
                factors,
            )?;
            b.v.forward(rec, &h, None, Some(&v_rows))?;
            q
        };
        let opts = attention::Options {
            causal: true,
            kv_len: Some(pos0 + seq),
            ..Default::default()
        };
        let a = attention(rec, &q, k_cache, v_cache, opts)?.reshape(&[seq, heads * hd])?;
        let x = b.o.forward(rec, &a, Some(x), None)?;
        // LlamaMLP.forward: down(silu(gate(h)) * up(h)), h = norm(x).
        if let (Some(_), true, AnyTensor::Quant(g), AnyTensor::Quant(u)) =
            (fused, self.fold_norms, &b.gate.weight, &b.up.weight)
            && g.qtype() == u.qtype()
        {
            let norm = quant::Norm {
                weight: &b.mlp_norm,
                eps,
            };
            let act = quant::gemv_swiglu_norm(rec, &x, g, u, norm)?;
            return b.down.forward(rec, &act, Some(&x), None);
        }
        let h = rms_norm(rec, &x, &b.mlp_norm, eps)?;
        let act = match (&b.gate.weight, &b.up.weight) {
            (AnyTensor::Quant(g), AnyTensor::Quant(u))
                if seq <= gemv_max_rows(rec.gpu()) && g.qtype() == u.qtype() =>
            {
                quant::gemv_swiglu(rec, &h, g, u)?
            }
            _ => {
                let g = b.gate.forward(rec, &h, None, None)?;
                let u = b.up.forward(rec, &h, None, None)?;
                elementwise::silu_mul(rec, &g, &u)?
            }
        };
        b.down.forward(rec, &act, Some(&x), None)
    }
}
