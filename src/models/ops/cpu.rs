//! [`Ops`] on the CPU: each op computes as called, into host memory (`crate::cpu`).

use super::decoder::{Causal, DecoderOps, FusedQkv, Rope};
use super::{Lookup, Ops};
use crate::cpu::decoder::{self, CausalSpec, HostKv};
use crate::cpu::{self, Cpu, HostQTensor, HostTensor, HostWeight, HostWeights};
use crate::error::{Error, Result};
use crate::kernels::activation::Activation;
use crate::models::llama::Act;
use crate::tensor::DType;

/// A linear layer on the CPU: the weight `[out, in]` as stored (f32 or GGML blocks), and its bias.
#[derive(Clone)]
pub struct HostLinear {
    weight: HostWeight,
    bias: Option<HostTensor>,
}

impl HostLinear {
    /// The weight as f32 (a quantized one dequantized: BERT-style layers only).
    fn dense(&self) -> Result<HostTensor> {
        match &self.weight {
            HostWeight::Dense(t) => Ok(t.clone()),
            HostWeight::Quant(q) => q.dequantize(),
        }
    }
}

impl Ops for Cpu {
    type Tensor = HostTensor;
    type Linear = HostLinear;
    type Weights = HostWeights;

    fn tensor(w: &HostWeights, name: &str) -> Result<HostTensor> {
        w.get(name).cloned()
    }
    fn linear_of(
        w: &HostWeights,
        name: &str,
        bias: &str,
        out: usize,
        inp: usize,
    ) -> Result<HostLinear> {
        let weight = w.get_any(name)?;
        let bias = w.get(bias)?.clone();
        if weight.shape() != [out, inp] || bias.shape() != [out] {
            return Err(Error::Model {
                source_name: name.to_string(),
                message: format!(
                    "weight {:?} and bias {:?}; the config implies [{out}, {inp}] and [{out}]",
                    weight.shape(),
                    bias.shape()
                ),
            });
        }
        Ok(HostLinear {
            weight,
            bias: Some(bias),
        })
    }
    fn shape(t: &HostTensor) -> &[usize] {
        t.shape()
    }
    fn reshape(t: &HostTensor, shape: &[usize]) -> Result<HostTensor> {
        t.reshape(shape)
    }
    fn input_i32(&mut self, values: &[i32], shape: &[usize]) -> Result<HostTensor> {
        HostTensor::from_i32(values.to_vec(), shape)
    }
    fn embedding(
        &mut self,
        ids: &HostTensor,
        table: &HostTensor,
        extra: Lookup<'_, HostTensor>,
    ) -> Result<HostTensor> {
        cpu::ops::embedding(ids, table, extra.positions, extra.token_types)
    }
    fn layer_norm(
        &mut self,
        x: &HostTensor,
        w: &HostTensor,
        b: &HostTensor,
        eps: f32,
    ) -> Result<HostTensor> {
        cpu::ops::layer_norm(x, w, b, eps)
    }
    fn linear(
        &mut self,
        x: &HostTensor,
        l: &HostLinear,
        act: Option<Activation>,
    ) -> Result<HostTensor> {
        cpu::matmul::linear(x, &l.dense()?, l.bias.as_ref(), act)
    }
    fn attention(
        &mut self,
        q: &HostTensor,
        k: &HostTensor,
        v: &HostTensor,
        mask: Option<&HostTensor>,
    ) -> Result<HostTensor> {
        cpu::attention::attention(q, k, v, mask, None)
    }
    fn add(&mut self, a: &HostTensor, b: &HostTensor) -> Result<HostTensor> {
        cpu::ops::add(a, b)
    }
    fn mean_pool(&mut self, x: &HostTensor, mask: &HostTensor) -> Result<HostTensor> {
        cpu::ops::mean_pool(x, mask)
    }
    fn l2_normalize(&mut self, x: &HostTensor, eps: f32) -> Result<HostTensor> {
        cpu::ops::l2_normalize(x, eps)
    }
}

/// The layers' quantized weights when all are quantized and have no bias.
fn quantized<'a>(ls: &[&'a HostLinear]) -> Option<Vec<&'a HostQTensor>> {
    ls.iter()
        .map(|l| match (&l.weight, &l.bias) {
            (HostWeight::Quant(q), None) => Some(q),
            _ => None,
        })
        .collect()
}

impl DecoderOps for Cpu {
    type KvLayer = HostKv;

    fn contains(w: &HostWeights, name: &str) -> bool {
        w.contains(name)
    }
    fn weight_shape(w: &HostWeights, name: &str) -> Option<Vec<usize>> {
        w.get_any(name).ok().map(|t| t.shape().to_vec())
    }
    fn weight_linear(w: &HostWeights, name: &str, out: usize, inp: usize) -> Result<HostLinear> {
        let weight = w.get_any(name)?;
        if weight.shape() != [out, inp] {
            return Err(Error::Model {
                source_name: name.to_string(),
                message: format!(
                    "has shape {:?}, the config implies [{out}, {inp}]",
                    weight.shape()
                ),
            });
        }
        Ok(HostLinear { weight, bias: None })
    }
    fn split_linear(l: &HostLinear, name: &str, parts: &[usize]) -> Result<Vec<HostLinear>> {
        let weights: Vec<HostWeight> = match &l.weight {
            HostWeight::Dense(t) => t
                .split_rows(name, parts)?
                .into_iter()
                .map(HostWeight::Dense)
                .collect(),
            HostWeight::Quant(q) => q
                .split_rows(name, parts)?
                .into_iter()
                .map(HostWeight::Quant)
                .collect(),
        };
        Ok(weights
            .into_iter()
            .map(|weight: HostWeight| HostLinear { weight, bias: None })
            .collect())
    }
    fn small_f32(_: &HostWeights, values: &[f32]) -> Result<HostTensor> {
        HostTensor::from_f32(values.to_vec(), &[values.len()])
    }
    fn dtype(t: &HostTensor) -> DType {
        t.dtype()
    }
    fn linear_dtype(l: &HostLinear) -> Option<DType> {
        match &l.weight {
            HostWeight::Dense(t) => Some(t.dtype()),
            HostWeight::Quant(_) => None,
        }
    }

    fn rms_norm(&mut self, x: &HostTensor, w: &HostTensor, eps: f32) -> Result<HostTensor> {
        decoder::rms_norm(x, w, eps)
    }
    fn embed_rows(&mut self, table: &HostLinear, ids: &HostTensor, _: DType) -> Result<HostTensor> {
        let ids_v = ids.i32s("embedding")?;
        match &table.weight {
            HostWeight::Quant(q) => q.gather(ids_v),
            HostWeight::Dense(t) => {
                let seq = ids_v.len();
                let rows = cpu::ops::embedding(&ids.reshape(&[1, seq])?, t, None, None)?;
                rows.reshape(&[seq, t.shape()[1]])
            }
        }
    }
    fn scale(&mut self, x: &HostTensor, s: f32) -> Result<HostTensor> {
        decoder::map(x, |v| v * s)
    }
    fn softcap(&mut self, x: &HostTensor, cap: f32) -> Result<HostTensor> {
        decoder::map(x, |v| cap * (v / cap).tanh())
    }
    fn last_row(x: &HostTensor) -> Result<HostTensor> {
        x.narrow(x.shape()[0] - 1, 1)
    }
    fn linear_res(
        &mut self,
        x: &HostTensor,
        l: &HostLinear,
        residual: Option<&HostTensor>,
    ) -> Result<HostTensor> {
        match (&l.weight, &l.bias) {
            (HostWeight::Quant(q), None) => cpu::quant::qlinear(x, q, residual),
            (HostWeight::Quant(q), Some(b)) => {
                let y = cpu::quant::qlinear(x, q, residual)?;
                cpu::ops::add(&y, b)
            }
            (HostWeight::Dense(w), bias) => {
                let y = cpu::matmul::linear(x, w, bias.as_ref(), None)?;
                match residual {
                    Some(r) => cpu::ops::add(&y, r),
                    None => Ok(y),
                }
            }
        }
    }
    fn rope(&mut self, x: &HostTensor, r: &Rope<'_, HostTensor>) -> Result<HostTensor> {
        decoder::rope(x, r.pos0, r.theta, r.layout, r.factors)
    }
    fn k_to_cache(
        &mut self,
        k: &HostTensor,
        r: &Rope<'_, HostTensor>,
        kv: &mut HostKv,
    ) -> Result<()> {
        let k = decoder::rope(k, r.pos0, r.theta, r.layout, r.factors)?;
        kv.write_k(r.pos0, &k)
    }
    fn v_to_cache(
        &mut self,
        h: &HostTensor,
        v: &HostLinear,
        kv: &mut HostKv,
        pos0: usize,
    ) -> Result<()> {
        let rows = self.linear_res(h, v, None)?;
        kv.write_v(pos0, &rows)
    }
    fn cached_attention(&mut self, q: &HostTensor, kv: &HostKv, c: &Causal) -> Result<HostTensor> {
        let spec = CausalSpec {
            kv_len: c.kv_len,
            scale: c.scale,
            window: c.window,
            softcap: c.softcap,
        };
        decoder::causal_attention(q, kv, &spec)
    }
    fn gated(
        &mut self,
        h: &HostTensor,
        gate: &HostLinear,
        up: &HostLinear,
        act: Act,
    ) -> Result<HostTensor> {
        let (g, u) = match quantized(&[gate, up]) {
            // Gate and up in one parallel region.
            Some(ws) => {
                let [g, u]: [HostTensor; 2] = cpu::quant::qlinears(h, &ws)?
                    .try_into()
                    .map_err(|_| Error::shape("gated", "two products"))?;
                (g, u)
            }
            None => (
                self.linear_res(h, gate, None)?,
                self.linear_res(h, up, None)?,
            ),
        };
        decoder::gated(&g, &u, act == Act::GeluTanh)
    }

    /// Quantized q, k and v without biases or head norms: their products in one parallel region
    /// (a decoding step's threads woken once, not three times), then RoPE and the cache writes.
    fn qkv_fused(&mut self, a: FusedQkv<'_, Self>) -> Result<Option<HostTensor>> {
        let Some(ws) = quantized(&[a.q, a.k, a.v]) else {
            return Ok(None);
        };
        if a.head_norms {
            return Ok(None);
        }
        let h = decoder::rms_norm(a.x, a.norm, a.eps)?;
        let [q, k, v]: [HostTensor; 3] = cpu::quant::qlinears(&h, &ws)?
            .try_into()
            .map_err(|_| Error::shape("qkv", "three products"))?;
        let seq = h.shape()[0];
        let q = q.reshape(&[1, seq, a.heads, a.head_dim])?;
        let k = k.reshape(&[1, seq, a.kv_heads, a.head_dim])?;
        let r = a.rope;
        let q = decoder::rope(&q, r.pos0, r.theta, r.layout, r.factors)?;
        self.k_to_cache(&k, r, a.kv)?;
        a.kv.write_v(r.pos0, &v)?;
        Ok(Some(q))
    }
}
