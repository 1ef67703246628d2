//! A LLaMA-family model's hyper-parameters, from a Hugging Face `config.json` or a GGUF file's
//! `{llama,qwen2,qwen3}.*` metadata, checked for consistency.

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
    /// An RMSNorm over each head of q and of k before RoPE (Qwen3).
    pub qk_norm: bool,
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
            attention_bias: false,
            qk_norm: false,
        }
        .checked(source)
    }

    /// Reads the `{arch}.*` metadata of a GGUF file: `llama`, `qwen2` or `qwen3`.
    pub fn from_gguf(source: &str, header: &Header, weights: &Weights) -> Result<Config> {
        let arch = header.architecture().unwrap_or("");
        if !GGUF_ARCHS.contains(&arch) {
            return Err(bad(
                source,
                format!(
                    "general.architecture is {arch:?}; the GGUF architectures supported are {}",
                    GGUF_ARCHS.join(", ")
                ),
            ));
        }
        let int = |key: &str| -> Result<usize> {
            header
                .get(source, &format!("{arch}.{key}"))?
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| bad(source, format!("{arch}.{key} is not an integer")))
        };
        let float = |key: &str, default: f32| -> f32 {
            header
                .metadata
                .get(&format!("{arch}.{key}"))
                .and_then(|v| v.as_f64())
                .map_or(default, |v| v as f32)
        };
        // Llama 3's RoPE scaling reaches GGUF as per-frequency factors (`rope_freqs.weight`, read by
        // Llama::from_gguf); YaRN and linear scaling as `rope.scaling.type`, not implemented: refused,
        // not ignored.
        if let Some(kind) = header
            .metadata
            .get(&format!("{arch}.rope.scaling.type"))
            .and_then(|v| v.as_str())
            .filter(|k| *k != "none")
        {
            return Err(bad(
                source,
                format!("{arch}.rope.scaling.type is {kind:?}; RoPE scaling is not supported yet"),
            ));
        }
        let heads = int("attention.head_count")?;
        let hidden = int("embedding_length")?;
        let vocab = match int("vocab_size") {
            Ok(v) => v,
            Err(_) => weights.get_any("token_embd.weight")?.shape()[0],
        };
        Config {
            hidden_size: hidden,
            intermediate_size: int("feed_forward_length")?,
            num_hidden_layers: int("block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: int("attention.head_count_kv").unwrap_or(heads),
            head_dim: int("attention.key_length")
                .or_else(|_| int("rope.dimension_count"))
                .unwrap_or(hidden / heads.max(1)),
            vocab_size: vocab,
            rms_norm_eps: float("attention.layer_norm_rms_epsilon", 1e-5),
            rope_theta: float("rope.freq_base", 10_000.0),
            max_position_embeddings: int("context_length").unwrap_or(2048),
            tie_word_embeddings: !weights.contains("output.weight"),
            attention_bias: arch == "qwen2",
            qk_norm: arch == "qwen3",
        }
        .checked(source)
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
pub const GGUF_ARCHS: [&str; 3] = ["llama", "qwen2", "qwen3"];
