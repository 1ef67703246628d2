//! [`DecoderOps`]: what a LLaMA-family decoder (`models::llama`) asks of a backend beyond [`Ops`]: its
//! weights (dense or block-quantized), RMSNorm, RoPE, a KV cache the keys and values are written into,
//! causal attention over it, the gated MLP, and two places where a backend may fuse several steps
//! into one kernel (the GPU does, for decoding; the defaults decline and the model composes them).

use super::Ops;
use crate::error::Result;
use crate::kernels::rope::Layout;
use crate::models::llama::Act;
use crate::tensor::DType;

/// RoPE over `[1, seq, heads, head_dim]` at positions `pos0..pos0 + seq`.
pub struct Rope<'a, T> {
    pub pos0: usize,
    pub theta: f32,
    pub layout: Layout,
    /// Per-pair frequency divisors `[head_dim / 2]` (Llama 3's, linear scaling's, LongRoPE's).
    pub factors: Option<&'a T>,
}

/// Causal attention of `seq` queries (the last `seq` of `kv_len` positions) over a cache's first
/// `kv_len` keys.
pub struct Causal {
    pub kv_len: usize,
    pub scale: f32,
    /// The query at position t sees only keys at positions > t − window.
    pub window: Option<usize>,
    /// Scores soft-capped as `cap · tanh(s / cap)` (Gemma 2).
    pub softcap: Option<f32>,
}

/// The attention's input projections of one layer, for [`DecoderOps::qkv_fused`].
pub struct FusedQkv<'a, O: DecoderOps + ?Sized> {
    /// The residual stream `[seq, hidden]` (before the input RMSNorm).
    pub x: &'a O::Tensor,
    pub norm: &'a O::Tensor,
    pub eps: f32,
    /// Whether the RMSNorm may fold into the projection's kernel.
    pub fold_norm: bool,
    pub q: &'a O::Linear,
    pub k: &'a O::Linear,
    pub v: &'a O::Linear,
    /// Qwen3's per-head norms of q and k (a fusion must then decline).
    pub head_norms: bool,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub rope: &'a Rope<'a, O::Tensor>,
    pub kv: &'a mut O::KvLayer,
}

/// A layer's MLP with its input RMSNorm and the residual add, for [`DecoderOps::mlp_fused`].
pub struct FusedMlp<'a, O: DecoderOps + ?Sized> {
    pub x: &'a O::Tensor,
    pub norm: &'a O::Tensor,
    pub eps: f32,
    pub gate: &'a O::Linear,
    pub up: &'a O::Linear,
    pub down: &'a O::Linear,
    pub act: Act,
}

/// A layer's attention over the cache and its output projection with the residual, for
/// [`DecoderOps::attention_out_fused`].
pub struct FusedAttentionOut<'a, O: DecoderOps + ?Sized> {
    /// The queries `[1, seq, heads, head_dim]` (rotated).
    pub q: &'a O::Tensor,
    pub kv: &'a O::KvLayer,
    pub causal: &'a Causal,
    /// The output projection (`o_proj`).
    pub out: &'a O::Linear,
    /// The residual stream `[seq, hidden]`.
    pub x: &'a O::Tensor,
}

/// Logits and, where the backend has them, its LM head's workgroups' maxima
/// ([`DecoderOps::norm_linear_fused`]).
pub type WithParts<T> = (T, Option<T>);

/// A backend's operations for decoders.
pub trait DecoderOps: Ops {
    /// One layer's keys and values, `[capacity, kv_heads, head_dim]` each.
    type KvLayer;

    /// Whether the file has a tensor called `name`.
    fn contains(w: &Self::Weights, name: &str) -> bool;
    /// The shape of the tensor `name` (dense or quantized), if there is one.
    fn weight_shape(w: &Self::Weights, name: &str) -> Option<Vec<usize>>;
    /// The weight `name` `[out, in]`, dense or block-quantized, as a linear layer without bias.
    fn weight_linear(w: &Self::Weights, name: &str, out: usize, inp: usize)
    -> Result<Self::Linear>;
    /// A fused matrix (Phi-3's q/k/v or gate/up) split into consecutive row ranges.
    fn split_linear(l: &Self::Linear, name: &str, parts: &[usize]) -> Result<Vec<Self::Linear>>;
    /// A small f32 tensor next to the weights (RoPE factors made from the config).
    fn small_f32(w: &Self::Weights, values: &[f32]) -> Result<Self::Tensor>;
    fn dtype(t: &Self::Tensor) -> DType;
    /// A dense weight's element type (`None` for quantized ones).
    fn linear_dtype(l: &Self::Linear) -> Option<DType>;

    fn rms_norm(&mut self, x: &Self::Tensor, w: &Self::Tensor, eps: f32) -> Result<Self::Tensor>;
    /// Rows `ids` of an embedding table (a linear layer's weight), `[seq, hidden]` in `dtype`.
    fn embed_rows(
        &mut self,
        table: &Self::Linear,
        ids: &Self::Tensor,
        dtype: DType,
    ) -> Result<Self::Tensor>;
    fn scale(&mut self, x: &Self::Tensor, s: f32) -> Result<Self::Tensor>;
    fn softcap(&mut self, x: &Self::Tensor, cap: f32) -> Result<Self::Tensor>;
    /// The last row of `[seq, d]`, `[1, d]`.
    fn last_row(x: &Self::Tensor) -> Result<Self::Tensor>;
    /// `x · Wᵀ (+ bias) (+ residual)`.
    fn linear_res(
        &mut self,
        x: &Self::Tensor,
        l: &Self::Linear,
        residual: Option<&Self::Tensor>,
    ) -> Result<Self::Tensor>;
    fn rope(&mut self, x: &Self::Tensor, r: &Rope<'_, Self::Tensor>) -> Result<Self::Tensor>;
    /// Rotates k `[1, seq, kv_heads, head_dim]` and writes it at positions `r.pos0..` of the cache.
    fn k_to_cache(
        &mut self,
        k: &Self::Tensor,
        r: &Rope<'_, Self::Tensor>,
        kv: &mut Self::KvLayer,
    ) -> Result<()>;
    /// Projects `h` by `v` and writes the rows at positions `pos0..` of the cache.
    fn v_to_cache(
        &mut self,
        h: &Self::Tensor,
        v: &Self::Linear,
        kv: &mut Self::KvLayer,
        pos0: usize,
    ) -> Result<()>;
    /// q `[1, seq, heads, head_dim]` over the cache (grouped: `heads / kv_heads` queries a key head).
    fn cached_attention(
        &mut self,
        q: &Self::Tensor,
        kv: &Self::KvLayer,
        c: &Causal,
    ) -> Result<Self::Tensor>;
    /// `act(h · gateᵀ) · (h · upᵀ)`.
    fn gated(
        &mut self,
        h: &Self::Tensor,
        gate: &Self::Linear,
        up: &Self::Linear,
        act: Act,
    ) -> Result<Self::Tensor>;

    /// q (with k and v written to the cache) in fewer kernels than the composed steps, where the
    /// backend can; `None` to decline.
    fn qkv_fused(&mut self, _: FusedQkv<'_, Self>) -> Result<Option<Self::Tensor>> {
        Ok(None)
    }
    /// `x + out(attention(q))` (a layer without a norm after its attention) in fewer kernels than
    /// the composed steps, where the backend can; `None` to decline (nothing recorded).
    fn attention_out_fused(
        &mut self,
        _: FusedAttentionOut<'_, Self>,
    ) -> Result<Option<Self::Tensor>> {
        Ok(None)
    }
    /// `x + down(act(gate(norm(x))) · up(norm(x)))` fused, where the backend can (only asked after
    /// `qkv_fused` ran); `None` to decline.
    fn mlp_fused(&mut self, _: FusedMlp<'_, Self>) -> Result<Option<Self::Tensor>> {
        Ok(None)
    }
    /// `rms_norm(x) · Wᵀ` for one row (a decoder's final norm and its LM head) in fewer kernels than
    /// the composed steps, where the backend can; `None` to decline (nothing recorded). With
    /// `argmax`, also what the backend's greedy choice can read in place of the outputs (its
    /// workgroups' maxima), where it has that.
    fn norm_linear_fused(
        &mut self,
        _x: &Self::Tensor,
        _norm: &Self::Tensor,
        _eps: f32,
        _l: &Self::Linear,
        _argmax: bool,
    ) -> Result<Option<WithParts<Self::Tensor>>> {
        Ok(None)
    }
}
