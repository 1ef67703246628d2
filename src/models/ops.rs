//! [`Ops`]: what a model's forward pass asks of a backend, so that each model is written once and
//! runs on the GPU (recorded into a [`Recorder`], one submit) and on the CPU ([`Cpu`], computed as
//! called). A model is generic over `O: Ops`; its weights are `O::Tensor`s and `O::Linear`s taken
//! from `O::Weights` when it loads.

use crate::error::Result;
use crate::kernels::activation::Activation;

mod cpu;
mod decoder;
mod gpu;
mod vision;

pub use cpu::HostLinear;
pub use decoder::{Causal, DecoderOps, FusedAttentionOut, FusedMlp, FusedQkv, Rope};
pub use gpu::GpuKv;
pub use vision::{ConvBnSpec, GpuConv, VisionOps};

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
    type Linear: Clone;
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
    /// `x · Wᵀ + bias + residual` (BERT's attention output and output layers); backends may add
    /// the residual in the product's epilogue.
    fn linear_add(
        &mut self,
        x: &Self::Tensor,
        l: &Self::Linear,
        residual: &Self::Tensor,
    ) -> Result<Self::Tensor> {
        let y = self.linear(x, l, None)?;
        self.add(&y, residual)
    }
    /// The mean over real tokens, `[batch, hidden]`.
    fn mean_pool(&mut self, x: &Self::Tensor, mask: &Self::Tensor) -> Result<Self::Tensor>;
    fn l2_normalize(&mut self, x: &Self::Tensor, eps: f32) -> Result<Self::Tensor>;
}
