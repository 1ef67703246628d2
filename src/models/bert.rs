//! BERT encoders (all-MiniLM-L6-v2, bge-small, e5-small, ...), mirroring transformers'
//! `models/bert/modeling_bert.py`: embeddings, then `num_hidden_layers` post-LayerNorm blocks of
//! self-attention and a GELU feed-forward. The whole forward pass is recorded into one [`Recorder`].

use serde::Deserialize;

use crate::bridge::Weights;
use crate::error::{Error, Result};
use crate::kernels::activation::Activation;
use crate::kernels::attention::{self, attention};
use crate::kernels::embedding::{Extras, embedding};
use crate::kernels::{elementwise, norm::layer_norm};
use crate::models::linear::Linear;
use crate::recorder::Recorder;
use crate::tensor::Tensor;

/// The fields of a BERT `config.json` this implementation reads.
#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "gelu")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn gelu() -> String {
    "gelu".into()
}
fn two() -> usize {
    2
}
fn eps() -> f64 {
    1e-12
}
fn absolute() -> String {
    "absolute".into()
}

impl Config {
    /// Parses `config.json`, refusing what this implementation does not compute.
    pub fn from_json(source: &str, json: &[u8]) -> Result<Config> {
        let bad = |m: String| Error::Model {
            source_name: source.to_string(),
            message: m,
        };
        let cfg: Config = serde_json::from_slice(json)
            .map_err(|e| bad(format!("not a BERT config.json: {e}")))?;
        let known = ["bert", "roberta", "xlm-roberta", ""];
        if !known.contains(&cfg.model_type.as_str()) {
            return Err(bad(format!(
                "model_type {:?} is not a BERT encoder (bert, roberta)",
                cfg.model_type
            )));
        }
        if cfg.hidden_act != "gelu" {
            return Err(bad(format!(
                "hidden_act {:?}: only the erf GELU (\"gelu\") is implemented",
                cfg.hidden_act
            )));
        }
        if cfg.position_embedding_type != "absolute" {
            return Err(bad(format!(
                "position_embedding_type {:?}: only \"absolute\"",
                cfg.position_embedding_type
            )));
        }
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
        {
            return Err(bad(format!(
                "hidden_size {} is not a multiple of {} heads",
                cfg.hidden_size, cfg.num_attention_heads
            )));
        }
        Ok(cfg)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn load(w: &Weights, prefix: &str, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: w.get(&format!("{prefix}.weight"))?.clone(),
            bias: w.get(&format!("{prefix}.bias"))?.clone(),
            eps: eps as f32,
        })
    }

    fn forward(&self, rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
        layer_norm(rec, x, &self.weight, &self.bias, self.eps)
    }
}

/// BertEmbeddings: word + token type + absolute position, then LayerNorm.
struct Embeddings {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    norm: LayerNorm,
}

/// One BertLayer: self-attention with BertSelfOutput, then BertIntermediate and BertOutput.
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
}

/// A loaded BERT encoder.
pub struct Bert {
    pub config: Config,
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl Bert {
    /// Takes the encoder's tensors from `weights` (with or without a `bert.` prefix).
    pub fn load(weights: &Weights, config: Config) -> Result<Bert> {
        let p = if weights
            .get("bert.embeddings.word_embeddings.weight")
            .is_ok()
        {
            "bert."
        } else {
            ""
        };
        let eps = config.layer_norm_eps;
        let embeddings = Embeddings {
            word: weights
                .get(&format!("{p}embeddings.word_embeddings.weight"))?
                .clone(),
            position: weights
                .get(&format!("{p}embeddings.position_embeddings.weight"))?
                .clone(),
            token_type: weights
                .get(&format!("{p}embeddings.token_type_embeddings.weight"))?
                .clone(),
            norm: LayerNorm::load(weights, &format!("{p}embeddings.LayerNorm"), eps)?,
        };
        let (hidden, inter) = (config.hidden_size, config.intermediate_size);
        // A dense layer `prefix.weight [out, in]` with its bias `prefix.bias [out]`.
        let lin = |prefix: &str, out: usize, inp: usize| {
            Linear::load_with_bias(
                weights,
                &format!("{prefix}.weight"),
                &format!("{prefix}.bias"),
                out,
                inp,
            )
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let l = format!("{p}encoder.layer.{i}");
                Ok(Layer {
                    query: lin(&format!("{l}.attention.self.query"), hidden, hidden)?,
                    key: lin(&format!("{l}.attention.self.key"), hidden, hidden)?,
                    value: lin(&format!("{l}.attention.self.value"), hidden, hidden)?,
                    attn_out: lin(&format!("{l}.attention.output.dense"), hidden, hidden)?,
                    attn_norm: LayerNorm::load(
                        weights,
                        &format!("{l}.attention.output.LayerNorm"),
                        eps,
                    )?,
                    intermediate: lin(&format!("{l}.intermediate.dense"), inter, hidden)?,
                    output: lin(&format!("{l}.output.dense"), hidden, inter)?,
                    out_norm: LayerNorm::load(weights, &format!("{l}.output.LayerNorm"), eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Bert {
            config,
            embeddings,
            layers,
        })
    }

    /// The last hidden states `[batch, seq, hidden]` for i32 `ids`, `type_ids` and `mask` of shape
    /// `[batch, seq]` (mask 1 for real tokens, 0 for padding).
    pub fn forward(
        &self,
        rec: &mut Recorder,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
    ) -> Result<Tensor> {
        let e = &self.embeddings;
        let extras = Extras {
            positions: Some(&e.position),
            pos0: 0,
            token_types: Some((type_ids, &e.token_type)),
        };
        let embedded = embedding(rec, ids, &e.word, extras)?;
        let mut x = e.norm.forward(rec, &embedded)?;
        for layer in &self.layers {
            x = self.layer(rec, layer, &x, mask)?;
        }
        Ok(x)
    }

    fn layer(&self, rec: &mut Recorder, l: &Layer, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, seq) = (x.shape()[0], x.shape()[1]);
        let heads = [
            batch,
            seq,
            self.config.num_attention_heads,
            self.config.head_dim(),
        ];
        // BertSelfAttention: heads are a view of [batch, seq, hidden]; no transpose is needed.
        let q = l.query.forward_act(rec, x, None)?.reshape(&heads)?;
        let k = l.key.forward_act(rec, x, None)?.reshape(&heads)?;
        let v = l.value.forward_act(rec, x, None)?.reshape(&heads)?;
        let opts = attention::Options {
            mask: Some(mask),
            ..Default::default()
        };
        let context = attention(rec, &q, &k, &v, opts)?.reshape(x.shape())?;
        // BertSelfOutput: LayerNorm(dense(context) + x).
        let attn = l.attn_out.forward_act(rec, &context, None)?;
        let residual = elementwise::add(rec, &attn, x)?;
        let x = l.attn_norm.forward(rec, &residual)?;
        // BertIntermediate (GELU fused into the matmul) and BertOutput: LayerNorm(dense(h) + x).
        let h = l
            .intermediate
            .forward_act(rec, &x, Some(Activation::Gelu))?;
        let out = l.output.forward_act(rec, &h, None)?;
        let residual = elementwise::add(rec, &out, &x)?;
        l.out_norm.forward(rec, &residual)
    }
}
