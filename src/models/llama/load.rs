//! Building a [`Llama`] from a checkpoint's weights: the names (Hugging Face's or llama.cpp's), each
//! block's linears and norms (Phi-3's fused matrices split on the GPU), and the RoPE scaling a GGUF
//! file carries (Llama 3's frequencies, linear scaling, Phi-3's LongRoPE).

use super::config::bad;
use super::{Block, Config, Llama, LongRope, Names};
use crate::error::Result;
use crate::formats::gguf::Header;
use crate::kernels::rope::Layout;
use crate::models::ops::DecoderOps;
use crate::tensor::DType;

const FREQS: &str = "rope_freqs.weight";
const SHORT: &str = "rope_factors_short.weight";
const LONG: &str = "rope_factors_long.weight";

/// An f32 `[len]` RoPE-factor tensor from GGUF (`rope_freqs`, `rope_factors_*`), checked.
fn rope_factor_tensor<O: DecoderOps>(w: &O::Weights, name: &str, len: usize) -> Result<O::Tensor> {
    let f = O::tensor(w, name)?;
    if O::shape(&f) != [len] || O::dtype(&f) != DType::F32 {
        return Err(bad(
            name,
            format!("is {:?} {:?}, not f32 [{len}]", O::dtype(&f), O::shape(&f)),
        ));
    }
    Ok(f)
}

impl<O: DecoderOps> Llama<O> {
    /// Builds the model from a Hugging Face checkpoint's weights.
    pub fn from_hf(cfg: Config, weights: &O::Weights) -> Result<Llama<O>> {
        Self::load(cfg, weights, Names::Hf, Layout::RotateHalf, |_| Ok(None))
    }

    /// Builds the model from a GGUF file's weights (for `llama` llama.cpp permuted the query and key
    /// rows to GGML's interleaved RoPE layout, which is what the kernel then uses; the other
    /// architectures keep rotate-half RoPE: [`Config::rope_interleaved`]). RoPE scaling: Llama 3's
    /// `rope_freqs.weight`, linear scaling ([`Config::rope_linear`]) as uniform factors, Phi-3's
    /// LongRoPE `rope_factors_{short,long}.weight` with its attention factor.
    pub fn from_gguf(cfg: Config, weights: &O::Weights, header: &Header) -> Result<Llama<O>> {
        let layout = if cfg.rope_interleaved {
            Layout::Interleaved
        } else {
            Layout::RotateHalf
        };
        let half = cfg.head_dim / 2;
        let global = global_rope_factors::<O>(&cfg, weights, half)?;
        let sliding = |i: usize| cfg.is_sliding(i);
        let local_theta = cfg.rope_theta_local;
        let mut model = Self::load(cfg.clone(), weights, Names::Gguf, layout, |i| {
            // Gemma 3's sliding layers: their own base, no scaling.
            Ok(if sliding(i) && local_theta.is_some() {
                None
            } else {
                global.clone()
            })
        })?;
        for (i, b) in model.blocks.iter_mut().enumerate() {
            if let (true, Some(theta)) = (sliding(i), local_theta) {
                b.rope_theta = theta;
            }
        }
        if O::contains(weights, LONG) {
            let (scale, long_rope) = long_rope::<O>(&cfg, weights, header, half)?;
            model.attn_scale *= scale;
            model.long_rope = Some(long_rope);
        }
        Ok(model)
    }

    fn load(
        cfg: Config,
        weights: &O::Weights,
        names: Names,
        rope_layout: Layout,
        rope_factors: impl Fn(usize) -> Result<Option<O::Tensor>>,
    ) -> Result<Llama<O>> {
        let d = cfg.hidden_size;
        let norm = |name: &str| norm_of::<O>(weights, name, d);
        let blocks = (0..cfg.num_hidden_layers)
            .map(|i| load_block::<O>(&cfg, weights, names, i, rope_factors(i)?))
            .collect::<Result<Vec<_>>>()?;
        let embed_name = names.global("embed");
        let embed = O::weight_linear(weights, embed_name, cfg.vocab_size, d)?;
        let lm_head = if cfg.tie_word_embeddings {
            embed.clone()
        } else {
            O::weight_linear(weights, names.global("lm_head"), cfg.vocab_size, d)?
        };
        let norm = norm(names.global("norm"))?;
        let dtype = O::dtype(&norm);
        if let Some(t) = O::linear_dtype(&embed)
            && t != dtype
        {
            return Err(bad(
                embed_name,
                format!("is {t:?} but the norms are {dtype:?}"),
            ));
        }
        Ok(Llama {
            embed,
            blocks,
            norm,
            lm_head,
            rope_layout,
            dtype,
            fold_norms: true,
            long_rope: None,
            attn_scale: cfg.attn_scale.unwrap_or(1.0 / (cfg.head_dim as f32).sqrt()),
            cfg,
        })
    }
}

/// A norm's weight `[d]`, checked.
fn norm_of<O: DecoderOps>(weights: &O::Weights, name: &str, d: usize) -> Result<O::Tensor> {
    let t = O::tensor(weights, name)?;
    if O::shape(&t) != [d] {
        return Err(bad(
            name,
            format!("has shape {:?}, not [{d}]", O::shape(&t)),
        ));
    }
    Ok(t)
}

/// The RoPE factors every layer (but Gemma 3's sliding ones) uses: Llama 3's `rope_freqs`, Phi-3's
/// short factors, linear scaling as uniform factors, or none.
fn global_rope_factors<O: DecoderOps>(
    cfg: &Config,
    weights: &O::Weights,
    half: usize,
) -> Result<Option<O::Tensor>> {
    if O::contains(weights, FREQS) {
        if cfg.rope_linear.is_some() {
            return Err(bad(
                FREQS,
                "comes with linear RoPE scaling as well; only one scaling at a time is supported",
            ));
        }
        return Ok(Some(rope_factor_tensor::<O>(weights, FREQS, half)?));
    }
    if O::contains(weights, SHORT) {
        return Ok(Some(rope_factor_tensor::<O>(weights, SHORT, half)?));
    }
    let Some(f) = cfg.rope_linear else {
        return Ok(None);
    };
    Ok(Some(O::small_f32(weights, &vec![f; half])?))
}

/// Phi-3's LongRoPE: the long factors with the original context they apply past, and the factor the
/// attention scores take (transformers' longrope: cos and sin times the attention factor, so scores
/// times its square; by default √(1 + ln(context / original) / ln(original))).
fn long_rope<O: DecoderOps>(
    cfg: &Config,
    weights: &O::Weights,
    header: &Header,
    half: usize,
) -> Result<(f32, LongRope<O::Tensor>)> {
    let arch = header.architecture().unwrap_or("");
    let key = |k: &str| header.metadata.get(&format!("{arch}.{k}"));
    let original_context = key("rope.scaling.original_context_length")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| {
            bad(
                LONG,
                format!("needs {arch}.rope.scaling.original_context_length, which is missing"),
            )
        })? as usize;
    let ratio = cfg.max_position_embeddings as f64 / original_context.max(1) as f64;
    let default = if ratio <= 1.0 {
        1.0
    } else {
        (1.0 + ratio.ln() / (original_context as f64).ln()).sqrt()
    };
    let factor = key("rope.scaling.attn_factor")
        .and_then(|v| v.as_f64())
        .unwrap_or(default) as f32;
    let long = LongRope {
        long: rope_factor_tensor::<O>(weights, LONG, half)?,
        original_context,
    };
    Ok((factor * factor, long))
}

/// Block `i`'s weights.
fn load_block<O: DecoderOps>(
    cfg: &Config,
    weights: &O::Weights,
    names: Names,
    i: usize,
    rope_factors: Option<O::Tensor>,
) -> Result<Block<O>> {
    let d = cfg.hidden_size;
    let l = |part: &str| names.layer(i, part);
    let norm = |part: &str| norm_of::<O>(weights, &l(part), d);
    let head_norm = |part: &str| -> Result<Option<O::Tensor>> {
        cfg.qk_norm
            .then(|| norm_of::<O>(weights, &l(part), cfg.head_dim))
            .transpose()
    };
    let post_norm = |part: &str| -> Result<Option<O::Tensor>> {
        cfg.post_norms.then(|| norm(part)).transpose()
    };
    let (q, k, v) = qkv::<O>(cfg, weights, names, i)?;
    let (gate, up) = gate_up::<O>(cfg, weights, names, i)?;
    let q_dim = cfg.num_attention_heads * cfg.head_dim;
    let ff = cfg.intermediate_size;
    Ok(Block {
        attn_norm: norm("input_layernorm")?,
        q,
        k,
        v,
        q_norm: head_norm("self_attn.q_norm")?,
        k_norm: head_norm("self_attn.k_norm")?,
        o: O::weight_linear(weights, &l("self_attn.o_proj"), d, q_dim)?,
        post_attn_norm: post_norm("post_attention_norm")?,
        mlp_norm: norm("post_attention_layernorm")?,
        gate,
        up,
        down: O::weight_linear(weights, &l("mlp.down_proj"), d, ff)?,
        post_mlp_norm: post_norm("post_feedforward_layernorm")?,
        rope_theta: cfg.rope_theta,
        rope_factors,
        window: cfg.sliding_window.filter(|_| cfg.is_sliding(i)),
    })
}

/// Block `i`'s q, k and v projections (with biases where the config says); Phi-3 stores them as
/// one matrix, split on the GPU.
fn qkv<O: DecoderOps>(
    cfg: &Config,
    weights: &O::Weights,
    names: Names,
    i: usize,
) -> Result<(O::Linear, O::Linear, O::Linear)> {
    let d = cfg.hidden_size;
    let (q_dim, kv_dim) = (
        cfg.num_attention_heads * cfg.head_dim,
        cfg.num_key_value_heads * cfg.head_dim,
    );
    let l = |part: &str| names.layer(i, part);
    let qkv_name = l("self_attn.qkv_proj");
    if O::contains(weights, &qkv_name) {
        let fused = O::weight_linear(weights, &qkv_name, q_dim + 2 * kv_dim, d)?;
        let [q, k, v]: [O::Linear; 3] =
            O::split_linear(&fused, &qkv_name, &[q_dim, kv_dim, kv_dim])?
                .try_into()
                .map_err(|_| bad(&qkv_name, "split into other than 3"))?;
        return Ok((q, k, v));
    }
    let proj = |part: &str, out: usize| -> Result<O::Linear> {
        if cfg.attention_bias {
            let bias = names.layer_tensor(i, part, "bias");
            O::linear_of(weights, &l(part), &bias, out, d)
        } else {
            O::weight_linear(weights, &l(part), out, d)
        }
    };
    Ok((
        proj("self_attn.q_proj", q_dim)?,
        proj("self_attn.k_proj", kv_dim)?,
        proj("self_attn.v_proj", kv_dim)?,
    ))
}

/// Block `i`'s gate and up projections; Phi-3's GGUF stores them as one matrix, split on the GPU.
fn gate_up<O: DecoderOps>(
    cfg: &Config,
    weights: &O::Weights,
    names: Names,
    i: usize,
) -> Result<(O::Linear, O::Linear)> {
    let (d, ff) = (cfg.hidden_size, cfg.intermediate_size);
    let gate_name = names.layer(i, "mlp.gate_proj");
    let up_name = names.layer(i, "mlp.gate_up_proj");
    let fused_up = !O::contains(weights, &gate_name)
        && names == Names::Gguf
        && O::weight_shape(weights, &up_name).is_some_and(|s| s.first() == Some(&(2 * ff)));
    if fused_up {
        let fused = O::weight_linear(weights, &up_name, 2 * ff, d)?;
        let [g, u]: [O::Linear; 2] = O::split_linear(&fused, &up_name, &[ff, ff])?
            .try_into()
            .map_err(|_| bad(&up_name, "split into other than 2"))?;
        return Ok((g, u));
    }
    Ok((
        O::weight_linear(weights, &gate_name, ff, d)?,
        O::weight_linear(weights, &names.layer(i, "mlp.up_proj"), ff, d)?,
    ))
}
