//! A LLaMA-family model's hyper-parameters, from a Hugging Face `config.json` or a GGUF file's
//! `{llama,qwen2,qwen3,phi3,gemma2,gemma3}.*` metadata, checked for consistency.

use serde::Deserialize;

use crate::bridge::Weights;
use crate::error::{Error, Result};
use crate::formats::gguf::Header;

/// The hyper-parameters of a LLaMA-family model.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub rms_norm_eps: f32,
    pub rope_theta: f32,
    /// The context length the model was trained for.
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// q, k and v projections with biases (Qwen2).
    pub attention_bias: bool,
    /// An RMSNorm over each head of q and of k before RoPE (Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// The gated MLP's activation: SiLU (LLaMA, Qwen, Phi-3) or GELU-tanh (Gemma).
    pub act: Act,
    /// Gemma 2/3: an RMSNorm on the attention's and on the MLP's output before each residual add.
    pub post_norms: bool,
    /// Gemma: the embedding rows are multiplied by this (√hidden_size).
    pub embed_scale: Option<f32>,
    /// The attention's score scale when it is not 1/√head_dim (Gemma 2/3 27B: query_pre_attn_scalar).
    pub attn_scale: Option<f32>,
    /// Gemma 2: scores soft-capped, `c · tanh(s / c)` (`attn_logit_softcapping`).
    pub attn_softcap: Option<f32>,
    /// Gemma 2: logits soft-capped (`final_logit_softcapping`).
    pub final_softcap: Option<f32>,
    /// Sliding-window attention: a query sees the last `window` positions (itself included) on the
    /// layers [`Config::is_sliding`] names.
    pub sliding_window: Option<usize>,
    /// With a window: `Some(n)` makes layer i sliding unless `i % n == n - 1` (Gemma 2: 2, Gemma 3: 6);
    /// `None` windows every layer (Phi-3, Mistral).
    pub sliding_pattern: Option<usize>,
    /// Gemma 3: the RoPE base of the sliding layers (10 000; the others use `rope_theta`).
    pub rope_theta_local: Option<f32>,
    /// Linear RoPE scaling (positions divided by this; Gemma 3 4B+: 8, on the global layers only).
    pub rope_linear: Option<f32>,
    /// q and k rows in GGML's interleaved RoPE layout: llama.cpp permutes them so for `llama` GGUF
    /// files; every other architecture, and Hugging Face checkpoints, rotate halves.
    pub rope_interleaved: bool,
}

/// The gated MLP's activation: `down(act(gate(x)) · up(x))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// `silu` (SwiGLU).
    Silu,
    /// `gelu_pytorch_tanh` (GeGLU).
    GeluTanh,
}

impl Config {
    /// Whether layer `i` attends through the sliding window.
    pub fn is_sliding(&self, i: usize) -> bool {
        self.sliding_window.is_some()
            && self
                .sliding_pattern
                .is_none_or(|n| i % n != n.saturating_sub(1))
    }
}

/// The fields of a Hugging Face `config.json` read here.
#[derive(Deserialize)]
struct HfConfig {
    #[serde(default)]
    model_type: String,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    vocab_size: usize,
    #[serde(default = "default_eps")]
    rms_norm_eps: f32,
    #[serde(default = "default_theta")]
    rope_theta: f32,
    #[serde(default)]
    rope_scaling: Option<serde_json::Value>,
    /// transformers 5 writes `{"rope_theta", "rope_type"}` here instead of the two keys above.
    #[serde(default)]
    rope_parameters: Option<serde_json::Value>,
    #[serde(default = "default_context")]
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
}

fn default_eps() -> f32 {
    1e-6
}
fn default_theta() -> f32 {
    10_000.0
}
fn default_context() -> usize {
    2048
}
fn default_act() -> String {
    "silu".into()
}

pub(super) fn bad(source: &str, message: impl Into<String>) -> Error {
    Error::Model {
        source_name: source.to_string(),
        message: message.into(),
    }
}

impl Config {
    /// Parses a Hugging Face `config.json` of a LLaMA-architecture model.
    pub fn from_json(source: &str, json: &[u8]) -> Result<Config> {
        let c: HfConfig = serde_json::from_slice(json)
            .map_err(|e| bad(source, format!("not a LLaMA config.json: {e}")))?;
        if !["llama", "mistral", ""].contains(&c.model_type.as_str()) {
            return Err(bad(
                source,
                format!(
                    "model_type {:?} is not a LLaMA-family decoder",
                    c.model_type
                ),
            ));
        }
        if c.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(bad(source, "rope_scaling is not supported yet"));
        }
        let mut rope_theta = c.rope_theta;
        if let Some(p) = c.rope_parameters.as_ref().filter(|p| !p.is_null()) {
            let kind = p["rope_type"].as_str().unwrap_or("default");
            if kind != "default" {
                return Err(bad(
                    source,
                    format!("rope_type {kind:?} is not supported yet (only \"default\")"),
                ));
            }
            if let Some(theta) = p["rope_theta"].as_f64() {
                rope_theta = theta as f32;
            }
        }
        if c.hidden_act != "silu" || c.attention_bias || c.mlp_bias {
            return Err(bad(
                source,
                "only SiLU MLPs without biases (LLaMA's) are implemented",
            ));
        }
        let heads = c.num_attention_heads;
        Config {
            hidden_size: c.hidden_size,
            intermediate_size: c.intermediate_size,
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: c.num_key_value_heads.unwrap_or(heads),
            head_dim: c.head_dim.unwrap_or(c.hidden_size / heads.max(1)),
            vocab_size: c.vocab_size,
            rms_norm_eps: c.rms_norm_eps,
            rope_theta,
            max_position_embeddings: c.max_position_embeddings,
            tie_word_embeddings: c.tie_word_embeddings,
            ..Config::plain()
        }
        .checked(source)
    }

    /// LLaMA's choices for every field past the sizes (which are zero here: fill them in).
    fn plain() -> Config {
        Config {
            hidden_size: 0,
            intermediate_size: 0,
            num_hidden_layers: 0,
            num_attention_heads: 0,
            num_key_value_heads: 0,
            head_dim: 0,
            vocab_size: 0,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            max_position_embeddings: 2048,
            tie_word_embeddings: false,
            attention_bias: false,
            qk_norm: false,
            act: Act::Silu,
            post_norms: false,
            embed_scale: None,
            attn_scale: None,
            attn_softcap: None,
            final_softcap: None,
            sliding_window: None,
            sliding_pattern: None,
            rope_theta_local: None,
            rope_linear: None,
            rope_interleaved: false,
        }
    }

    /// Reads the `{arch}.*` metadata of a GGUF file: `llama`, `qwen2`, `qwen3`, `phi3`, `gemma2` or
    /// `gemma3`: what every family stores, then the family's own options (`llama/family/*.rs`, one
    /// file a family, with what llama.cpp fixes per architecture rather than storing: Gemma's
    /// sliding layer pattern, local RoPE base and 27B attention scale).
    pub fn from_gguf(source: &str, header: &Header, _weights: &Weights) -> Result<Config> {
        Self::from_gguf_header(source, header)
    }

    /// [`Config::from_gguf`] from the header alone (its tensor table says what the weights will be),
    /// so that a model can be checked before any weight loads.
    pub fn from_gguf_header(source: &str, header: &Header) -> Result<Config> {
        let arch = header.architecture().unwrap_or("");
        let Some(family) = super::family::of(arch) else {
            return Err(bad(
                source,
                format!(
                    "general.architecture is {arch:?}; the GGUF architectures supported are {}",
                    GGUF_ARCHS.join(", ")
                ),
            ));
        };
        let keys = Keys {
            source,
            arch,
            header,
        };
        let tensor = |name: &str| header.entries.iter().find(|e| e.name == name);
        let rope_linear = keys.rope_linear()?;
        let heads = keys.int("attention.head_count")?;
        let hidden = keys.int("embedding_length")?;
        let layers = keys.int("block_count")?;
        let vocab = match (keys.int("vocab_size"), tensor("token_embd.weight")) {
            (Ok(v), _) => v,
            (Err(_), Some(e)) => e.shape.first().copied().unwrap_or(0),
            (Err(e), None) => return Err(e),
        };
        let head_dim = keys
            .opt_int("attention.key_length")
            .unwrap_or(hidden / heads.max(1));
        keys.check_rotary(head_dim)?;
        let softcap = |key: &str| keys.opt_float(key).filter(|&c| c > 0.0);
        let mut cfg = Config {
            hidden_size: hidden,
            intermediate_size: keys.int("feed_forward_length")?,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: keys.int("attention.head_count_kv").unwrap_or(heads),
            head_dim,
            vocab_size: vocab,
            rms_norm_eps: keys.float("attention.layer_norm_rms_epsilon", 1e-5),
            rope_theta: keys.float("rope.freq_base", 10_000.0),
            max_position_embeddings: keys.int("context_length").unwrap_or(2048),
            tie_word_embeddings: tensor("output.weight").is_none(),
            attn_softcap: softcap("attn_logit_softcapping"),
            final_softcap: softcap("final_logit_softcapping"),
            sliding_window: keys.opt_int("attention.sliding_window").filter(|&w| w > 0),
            rope_linear,
            ..Config::plain()
        };
        (family.configure)(&keys, &mut cfg)?;
        cfg.checked(source)
    }

    fn checked(self, source: &str) -> Result<Config> {
        let ok = self.num_attention_heads > 0
            && self.num_key_value_heads > 0
            && self
                .num_attention_heads
                .is_multiple_of(self.num_key_value_heads)
            && self.head_dim > 0
            && self.head_dim.is_multiple_of(2)
            && self.head_dim <= 256
            && self.num_hidden_layers > 0
            && self.vocab_size > 0;
        if !ok {
            return Err(bad(
                source,
                format!("inconsistent head counts or sizes: {self:?}"),
            ));
        }
        Ok(self)
    }
}

/// The GGUF `general.architecture` values read ([`Config::from_gguf`]).
pub const GGUF_ARCHS: [&str; 6] = ["llama", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"];

/// The context a generator gets when the caller asks for none: the model's own, up to this many
/// positions (a 128k-token KV cache would take gigabytes that most pages never use).
pub const DEFAULT_CONTEXT: usize = 4096;

/// Checks, from a GGUF header alone (before any weight loads), that the model can run on this
/// device with a context of `context` positions (default: the model's, up to [`DEFAULT_CONTEXT`]):
/// the architecture and sizes are supported, the context is within the model's, and each buffer
/// the generator will create fits the adapter's limits (a layer's KV cache, the f32 scratch a
/// prompt's matmul dequantizes a weight into; the stored tensors themselves are checked by the
/// loader's plan). Returns the context to use; errors name the numbers and the limit.
pub fn check_fits(
    gpu: &crate::Gpu,
    source: &str,
    header: &Header,
    context: Option<usize>,
) -> Result<(Config, usize)> {
    let cfg = Config::from_gguf_header(source, header)?;
    let context = check_context(gpu, source, &cfg, context)?;
    let f32_bytes = |elements: usize| elements as u64 * 4;
    for e in &header.entries {
        // Prompts longer than the GEMV takes dequantize each matrix into f32 for the matmul; not the
        // embedding (gathered) nor the LM head (one row); Phi-3's fused matrices after their split.
        let &[rows, cols] = e.shape.as_slice() else {
            continue;
        };
        if matches!(e.name.as_str(), "token_embd.weight" | "output.weight")
            || e.name.ends_with("attn_qkv.weight")
        {
            continue;
        }
        let rows = if e.name.ends_with("ffn_up.weight") {
            rows.min(cfg.intermediate_size)
        } else {
            rows
        };
        let what = format!("`{}` dequantized to f32 for a prompt's matmul", e.name);
        crate::tensor::check_buffer_size(gpu, f32_bytes(rows * cols), &what)?;
    }
    Ok((cfg, context))
}

/// The context to use (`None`: the model's, up to [`DEFAULT_CONTEXT`]), refused past the model's own
/// or when one layer's KV cache (f32) would not fit the adapter's buffer limits.
pub fn check_context(
    gpu: &crate::Gpu,
    source: &str,
    cfg: &Config,
    context: Option<usize>,
) -> Result<usize> {
    let model_context = cfg.max_position_embeddings;
    let context = context.unwrap_or(model_context.min(DEFAULT_CONTEXT));
    if context == 0 || context > model_context {
        return Err(Error::Input(format!(
            "{source}: a context of {context} positions was asked for; this model's is 1 to \
             {model_context} (its `context_length`)"
        )));
    }
    let kv = (context * cfg.num_key_value_heads * cfg.head_dim) as u64 * 4;
    crate::tensor::check_buffer_size(
        gpu,
        kv,
        &format!(
            "one layer's KV cache for a context of {context} ({context} × {} KV heads × {} × 4 bytes; \
             ask for a shorter context)",
            cfg.num_key_value_heads, cfg.head_dim
        ),
    )?;
    Ok(context)
}

/// A GGUF header's `{arch}.*` keys, read with messages naming the file and the key.
pub(super) struct Keys<'a> {
    source: &'a str,
    arch: &'a str,
    header: &'a Header,
}

impl Keys<'_> {
    fn get(&self, key: &str) -> Option<&crate::formats::gguf::Value> {
        self.header.metadata.get(&format!("{}.{key}", self.arch))
    }

    fn int(&self, key: &str) -> Result<usize> {
        let full = format!("{}.{key}", self.arch);
        self.header
            .get(self.source, &full)?
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| bad(self.source, format!("{full} is not an integer")))
    }

    pub(super) fn opt_int(&self, key: &str) -> Option<usize> {
        self.get(key).and_then(|v| v.as_u64()).map(|v| v as usize)
    }

    fn opt_float(&self, key: &str) -> Option<f32> {
        self.get(key).and_then(|v| v.as_f64()).map(|v| v as f32)
    }

    fn float(&self, key: &str, default: f32) -> f32 {
        self.opt_float(key).unwrap_or(default)
    }

    /// Linear RoPE scaling's factor (`rope.scaling.type = linear`), if any. Llama 3's scaling
    /// reaches GGUF as per-frequency factors (`rope_freqs.weight`, read by `Llama::from_gguf`),
    /// Phi-3's LongRoPE as `rope_factors_{short,long}.weight`; YaRN is not implemented: refused,
    /// not ignored.
    fn rope_linear(&self) -> Result<Option<f32>> {
        let (source, arch) = (self.source, self.arch);
        match self.get("rope.scaling.type").and_then(|v| v.as_str()) {
            None | Some("none") => Ok(None),
            Some("linear") => {
                let factor = self.float("rope.scaling.factor", 1.0);
                if !(factor.is_finite() && factor >= 1.0) {
                    return Err(bad(
                        source,
                        format!("{arch}.rope.scaling.factor is {factor}, not a factor ≥ 1"),
                    ));
                }
                Ok((factor != 1.0).then_some(factor))
            }
            Some("longrope") if arch == "phi3" => Ok(None),
            Some(kind) => Err(bad(
                source,
                format!(
                    "{arch}.rope.scaling.type is {kind:?}; only linear RoPE scaling, Llama 3's \
                     factors and Phi-3's LongRoPE are supported"
                ),
            )),
        }
    }

    /// Refuses partial rotary embeddings (RoPE over fewer dimensions than a head's).
    fn check_rotary(&self, head_dim: usize) -> Result<()> {
        match self.opt_int("rope.dimension_count") {
            Some(rot) if rot != head_dim => Err(bad(
                self.source,
                format!(
                    "{}.rope.dimension_count is {rot} of a head's {head_dim} dimensions: partial \
                     rotary embeddings are not supported yet",
                    self.arch
                ),
            )),
            _ => Ok(()),
        }
    }
}
