//! [`Ops`]: what a model's forward pass asks of a backend, so that each model is written once and
//! runs on the GPU (recorded into a [`Recorder`], one submit) and on the CPU ([`Cpu`], computed as
//! called). A model is generic over `O: Ops`; its weights are `O::Tensor`s and `O::Linear`s taken
//! from `O::Weights` when it loads.

use crate::bridge::Weights;
use crate::cpu::{self, Cpu, HostTensor, HostWeights};
use crate::error::{Error, Result};
use crate::kernels::activation::Activation;
use crate::kernels::{attention, elementwise, embedding, norm, pool};
use crate::models::linear::Linear;
use crate::recorder::Recorder;
use crate::tensor::Tensor;

/// What an embedding lookup adds to the token rows.
pub struct Lookup<'a, T> {
    /// `[max_positions, hidden]`: row `pos0 + s` is added at sequence index `s`.
    pub positions: Option<(&'a T, usize)>,
    /// `(type_ids [batch, seq] i32, table [n_types, hidden])`.
    pub token_types: Option<(&'a T, &'a T)>,
}

/// A backend's operations, as the models use them.
pub trait Ops {
    /// An activation or a weight.
    type Tensor: Clone;
    /// A linear layer's weight `[out, in]` and bias.
    type Linear;
    /// A loaded weight file.
    type Weights;

    /// The weight called `name`.
    fn tensor(w: &Self::Weights, name: &str) -> Result<Self::Tensor>;
    /// The linear layer `name` (`[out, in]`) with the bias `bias` (`[out]`), shapes checked.
    fn linear_of(
        w: &Self::Weights,
        name: &str,
        bias: &str,
        out: usize,
        inp: usize,
    ) -> Result<Self::Linear>;
    fn shape(t: &Self::Tensor) -> &[usize];
    fn reshape(t: &Self::Tensor, shape: &[usize]) -> Result<Self::Tensor>;

    /// An i32 tensor (ids, masks) from host values.
    fn input_i32(&mut self, values: &[i32], shape: &[usize]) -> Result<Self::Tensor>;
    /// `table[ids]` plus the [`Lookup`]'s rows, `[batch, seq, hidden]`.
    fn embedding(
        &mut self,
        ids: &Self::Tensor,
        table: &Self::Tensor,
        extra: Lookup<'_, Self::Tensor>,
    ) -> Result<Self::Tensor>;
    fn layer_norm(
        &mut self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        b: &Self::Tensor,
        eps: f32,
    ) -> Result<Self::Tensor>;
    /// `act(x · Wᵀ + bias)`.
    fn linear(
        &mut self,
        x: &Self::Tensor,
        l: &Self::Linear,
        act: Option<Activation>,
    ) -> Result<Self::Tensor>;
    /// `x · Wᵀ + bias` for several layers of the same input (Q, K, V); backends may run them together.
    fn linears(&mut self, x: &Self::Tensor, ls: &[&Self::Linear]) -> Result<Vec<Self::Tensor>> {
        ls.iter().map(|l| self.linear(x, l, None)).collect()
    }
    /// Bidirectional attention over `[batch, seq, heads, head_dim]` with a padding mask.
    fn attention(
        &mut self,
        q: &Self::Tensor,
        k: &Self::Tensor,
        v: &Self::Tensor,
        mask: Option<&Self::Tensor>,
    ) -> Result<Self::Tensor>;
    fn add(&mut self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// The mean over real tokens, `[batch, hidden]`.
    fn mean_pool(&mut self, x: &Self::Tensor, mask: &Self::Tensor) -> Result<Self::Tensor>;
    fn l2_normalize(&mut self, x: &Self::Tensor, eps: f32) -> Result<Self::Tensor>;
}

impl Ops for Recorder {
    type Tensor = Tensor;
    type Linear = Linear;
    type Weights = Weights;

    fn tensor(w: &Weights, name: &str) -> Result<Tensor> {
        w.get(name).cloned()
    }
    fn linear_of(w: &Weights, name: &str, bias: &str, out: usize, inp: usize) -> Result<Linear> {
        Linear::load_with_bias(w, name, bias, out, inp)
    }
    fn shape(t: &Tensor) -> &[usize] {
        t.shape()
    }
    fn reshape(t: &Tensor, shape: &[usize]) -> Result<Tensor> {
        t.reshape(shape)
    }
    fn input_i32(&mut self, values: &[i32], shape: &[usize]) -> Result<Tensor> {
        Tensor::from_bytes(
            self.gpu(),
            bytemuck::cast_slice(values),
            shape,
            crate::tensor::DType::I32,
        )
    }
    fn embedding(
        &mut self,
        ids: &Tensor,
        table: &Tensor,
        extra: Lookup<'_, Tensor>,
    ) -> Result<Tensor> {
        let extras = embedding::Extras {
            positions: extra.positions.map(|(p, _)| p),
            pos0: extra.positions.map_or(0, |(_, p0)| p0),
            token_types: extra.token_types,
        };
        embedding::embedding(self, ids, table, extras)
    }
    fn layer_norm(&mut self, x: &Tensor, w: &Tensor, b: &Tensor, eps: f32) -> Result<Tensor> {
        norm::layer_norm(self, x, w, b, eps)
    }
    fn linear(&mut self, x: &Tensor, l: &Linear, act: Option<Activation>) -> Result<Tensor> {
        l.forward_act(self, x, act)
    }
    fn attention(
        &mut self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let opts = attention::Options {
            mask,
            ..Default::default()
        };
        attention::attention(self, q, k, v, opts)
    }
    fn add(&mut self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        elementwise::add(self, a, b)
    }
    fn mean_pool(&mut self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        pool::mean_pool(self, x, mask)
    }
    fn l2_normalize(&mut self, x: &Tensor, eps: f32) -> Result<Tensor> {
        norm::l2_normalize(self, x, eps)
    }
}

/// A linear layer on the CPU: the weight `[out, in]` as stored, and its bias.
pub struct HostLinear {
    weight: HostTensor,
    bias: Option<HostTensor>,
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
        let weight = w.get(name)?.clone();
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
        cpu::matmul::linear(x, &l.weight, l.bias.as_ref(), act)
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
