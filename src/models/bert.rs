//! BERT encoders (all-MiniLM-L6-v2, bge-small, e5-small, ...), mirroring transformers'
//! `models/bert/modeling_bert.py`: embeddings, then `num_hidden_layers` post-LayerNorm blocks of
//! self-attention and a GELU feed-forward. Written once over [`Ops`]: on the GPU the whole forward
//! pass is recorded into one [`Recorder`](crate::Recorder); on the CPU it runs as called.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::kernels::activation::Activation;
use crate::models::ops::{Lookup, Ops};
use crate::recorder::Recorder;

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

struct LayerNorm<T> {
    weight: T,
    bias: T,
    eps: f32,
}

impl<T: Clone> LayerNorm<T> {
    fn load<O: Ops<Tensor = T>>(w: &O::Weights, prefix: &str, eps: f64) -> Result<LayerNorm<T>> {
        Ok(LayerNorm {
            weight: O::tensor(w, &format!("{prefix}.weight"))?,
            bias: O::tensor(w, &format!("{prefix}.bias"))?,
            eps: eps as f32,
        })
    }

    fn forward<O: Ops<Tensor = T>>(&self, o: &mut O, x: &T) -> Result<T> {
        o.layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

/// BertEmbeddings: word + token type + absolute position, then LayerNorm.
struct Embeddings<T> {
    word: T,
    position: T,
    token_type: T,
    norm: LayerNorm<T>,
}

/// One BertLayer: self-attention with BertSelfOutput, then BertIntermediate and BertOutput.
struct Layer<O: Ops> {
    query: O::Linear,
    key: O::Linear,
    value: O::Linear,
    attn_out: O::Linear,
    attn_norm: LayerNorm<O::Tensor>,
    intermediate: O::Linear,
    output: O::Linear,
    out_norm: LayerNorm<O::Tensor>,
}

/// A loaded BERT encoder, on the GPU ([`Recorder`], the default) or the CPU ([`crate::cpu::Cpu`]).
pub struct Bert<O: Ops = Recorder> {
    pub config: Config,
    embeddings: Embeddings<O::Tensor>,
    layers: Vec<Layer<O>>,
}

impl<O: Ops> Bert<O> {
    /// Takes the encoder's tensors from `weights` (with or without a `bert.` prefix).
    pub fn load(weights: &O::Weights, config: Config) -> Result<Bert<O>> {
        let p = if O::tensor(weights, "bert.embeddings.word_embeddings.weight").is_ok() {
            "bert."
        } else {
            ""
        };
        let eps = config.layer_norm_eps;
        let embeddings = Embeddings {
            word: O::tensor(weights, &format!("{p}embeddings.word_embeddings.weight"))?,
            position: O::tensor(
                weights,
                &format!("{p}embeddings.position_embeddings.weight"),
            )?,
            token_type: O::tensor(
                weights,
                &format!("{p}embeddings.token_type_embeddings.weight"),
            )?,
            norm: LayerNorm::load::<O>(weights, &format!("{p}embeddings.LayerNorm"), eps)?,
        };
        let (hidden, inter) = (config.hidden_size, config.intermediate_size);
        // A dense layer `prefix.weight [out, in]` with its bias `prefix.bias [out]`.
        let lin = |prefix: &str, out: usize, inp: usize| {
            O::linear_of(
                weights,
                &format!("{prefix}.weight"),
                &format!("{prefix}.bias"),
                out,
                inp,
            )
        };
        let norm = |prefix: &str| LayerNorm::load::<O>(weights, prefix, eps);
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let l = format!("{p}encoder.layer.{i}");
                Ok(Layer {
                    query: lin(&format!("{l}.attention.self.query"), hidden, hidden)?,
                    key: lin(&format!("{l}.attention.self.key"), hidden, hidden)?,
                    value: lin(&format!("{l}.attention.self.value"), hidden, hidden)?,
                    attn_out: lin(&format!("{l}.attention.output.dense"), hidden, hidden)?,
                    attn_norm: norm(&format!("{l}.attention.output.LayerNorm"))?,
                    intermediate: lin(&format!("{l}.intermediate.dense"), inter, hidden)?,
                    output: lin(&format!("{l}.output.dense"), hidden, inter)?,
                    out_norm: norm(&format!("{l}.output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Bert {
            config,
            embeddings,
            layers,
        })
    }

    /// Every dense layer's weights and biases (Q, K, V, attention output, intermediate, output of
    /// each layer), for a backend that keeps them in another form (f16 for tensor cores).
    pub(crate) fn linears_mut(&mut self) -> impl Iterator<Item = &mut O::Linear> {
        self.layers.iter_mut().flat_map(|l| {
            [
                &mut l.query,
                &mut l.key,
                &mut l.value,
                &mut l.attn_out,
                &mut l.intermediate,
                &mut l.output,
            ]
        })
    }

    /// Each layer's Q, K and V projections (one input: a backend may run them as one product).
    pub(crate) fn qkv_mut(&mut self) -> impl Iterator<Item = [&mut O::Linear; 3]> {
        self.layers
            .iter_mut()
            .map(|l| [&mut l.query, &mut l.key, &mut l.value])
    }

    /// The last hidden states `[batch, seq, hidden]` for i32 `ids`, `type_ids` and `mask` of shape
    /// `[batch, seq]` (mask 1 for real tokens, 0 for padding).
    pub fn forward(
        &self,
        o: &mut O,
        ids: &O::Tensor,
        type_ids: &O::Tensor,
        mask: &O::Tensor,
    ) -> Result<O::Tensor> {
        let e = &self.embeddings;
        let extra = Lookup {
            positions: Some((&e.position, 0)),
            token_types: Some((type_ids, &e.token_type)),
        };
        let embedded = o.embedding(ids, &e.word, extra)?;
        let mut x = e.norm.forward(o, &embedded)?;
        for layer in &self.layers {
            x = self.layer(o, layer, &x, mask)?;
        }
        Ok(x)
    }

    fn layer(&self, o: &mut O, l: &Layer<O>, x: &O::Tensor, mask: &O::Tensor) -> Result<O::Tensor> {
        let shape = O::shape(x).to_vec();
        let heads = [
            shape[0],
            shape[1],
            self.config.num_attention_heads,
            self.config.head_dim(),
        ];
        // BertSelfAttention: heads are a view of [batch, seq, hidden]; no transpose is needed.
        let qkv = o.linears(x, &[&l.query, &l.key, &l.value])?;
        let [q, k, v] = [0, 1, 2].map(|i| O::reshape(&qkv[i], &heads));
        let (q, k, v) = (q?, k?, v?);
        let context = O::reshape(&o.attention(&q, &k, &v, Some(mask))?, &shape)?;
        // BertSelfOutput: LayerNorm(dense(context) + x), the residual added in the product.
        let residual = o.linear_add(&context, &l.attn_out, x)?;
        let x = l.attn_norm.forward(o, &residual)?;
        // BertIntermediate (GELU fused into the matmul) and BertOutput: LayerNorm(dense(h) + x).
        let h = o.linear(&x, &l.intermediate, Some(Activation::Gelu))?;
        let residual = o.linear_add(&h, &l.output, &x)?;
        l.out_norm.forward(o, &residual)
    }
}
