//! [`Ops`] on the GPU: each op records the existing kernels into the [`Recorder`] (one submit for a
//! whole forward pass).

use super::decoder::{Causal, DecoderOps, FusedAttentionOut, FusedMlp, FusedQkv, Rope, WithParts};
use super::{Lookup, Ops};
use crate::bridge::Weights;
use crate::bridge::load::AnyTensor;
use crate::error::{Error, Result};
use crate::kernels::activation::Activation;
use crate::kernels::rope::{self, Layout};
use crate::kernels::{attention, elementwise, embedding, norm, pool, quant};
use crate::models::linear::{Linear, gemv_max_rows};
use crate::models::llama::Act;
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

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
    fn linears(&mut self, x: &Tensor, ls: &[&Linear]) -> Result<Vec<Tensor>> {
        Linear::forward_many(self, x, ls)
    }
    fn attention(
        &mut self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        // f32 (an encoder's) on tensor cores only when asked for (slower on an H100 at MiniLM's
        // shapes: attention::f32_on_tensor_cores).
        let head_dim = q.shape().last().copied().unwrap_or(0);
        let variant =
            if q.dtype() == DType::F32 && attention::f32_on_tensor_cores(self.gpu(), head_dim) {
                attention::Kernel::PrefillCoop
            } else {
                attention::Kernel::Auto
            };
        let opts = attention::Options {
            mask,
            variant,
            ..Default::default()
        };
        attention::attention(self, q, k, v, opts)
    }
    fn add(&mut self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        elementwise::add(self, a, b)
    }
    fn linear_add(&mut self, x: &Tensor, l: &Linear, residual: &Tensor) -> Result<Tensor> {
        l.forward(self, x, Some(residual), None)
    }
    fn mean_pool(&mut self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        pool::mean_pool(self, x, mask)
    }
    fn l2_normalize(&mut self, x: &Tensor, eps: f32) -> Result<Tensor> {
        norm::l2_normalize(self, x, eps)
    }
}

/// One layer's keys and values on the GPU, `[1, capacity, kv_heads, head_dim]` each, written in place.
pub struct GpuKv {
    pub(crate) k: Tensor,
    pub(crate) v: Tensor,
}

impl GpuKv {
    /// Positions `pos0..pos0 + seq` of `cache` as `[1, seq, kv_heads, head_dim]` (a view).
    fn rows(cache: &Tensor, pos0: usize, seq: usize) -> Result<Tensor> {
        let rows = cache.reshape(&cache.shape()[1..])?.narrow(pos0, seq)?;
        let (kv_heads, hd) = (cache.shape()[2], cache.shape()[3]);
        rows.reshape(&[1, seq, kv_heads, hd])
    }
}

fn rope_params<'a>(r: &'a Rope<'a, Tensor>) -> (usize, f32, Layout, Option<&'a Tensor>) {
    (r.pos0, r.theta, r.layout, r.factors)
}

impl DecoderOps for Recorder {
    type KvLayer = GpuKv;

    fn contains(w: &Weights, name: &str) -> bool {
        w.contains(name)
    }
    fn weight_shape(w: &Weights, name: &str) -> Option<Vec<usize>> {
        w.get_any(name).ok().map(|t| t.shape().to_vec())
    }
    fn weight_linear(w: &Weights, name: &str, out: usize, inp: usize) -> Result<Linear> {
        Linear::load(w, name, out, inp)
    }
    fn split_linear(l: &Linear, name: &str, parts: &[usize]) -> Result<Vec<Linear>> {
        Ok(l.weight
            .split_rows(name, parts)?
            .into_iter()
            .map(Linear::new)
            .collect())
    }
    fn small_f32(w: &Weights, values: &[f32]) -> Result<Tensor> {
        let gpu = w.gpu().ok_or_else(|| Error::Model {
            source_name: "weights".into(),
            message: "no tensors were loaded".into(),
        })?;
        Tensor::from_f32(gpu, values, &[values.len()])
    }
    fn dtype(t: &Tensor) -> DType {
        t.dtype()
    }
    fn linear_dtype(l: &Linear) -> Option<DType> {
        match &l.weight {
            AnyTensor::Dense(t) => Some(t.dtype()),
            AnyTensor::Quant(_) => None,
        }
    }

    fn rms_norm(&mut self, x: &Tensor, w: &Tensor, eps: f32) -> Result<Tensor> {
        norm::rms_norm(self, x, w, eps)
    }
    fn embed_rows(&mut self, table: &Linear, ids: &Tensor, dtype: DType) -> Result<Tensor> {
        let seq = ids.numel();
        let x = match &table.weight {
            AnyTensor::Quant(t) => quant::gather(self, t, &ids.reshape(&[seq])?, dtype)?,
            AnyTensor::Dense(t) => embedding::embedding(
                self,
                &ids.reshape(&[1, seq])?,
                t,
                embedding::Extras::default(),
            )?,
        };
        x.reshape(&[seq, table.weight.shape()[1]])
    }
    fn scale(&mut self, x: &Tensor, s: f32) -> Result<Tensor> {
        elementwise::scale(self, x, s)
    }
    fn softcap(&mut self, x: &Tensor, cap: f32) -> Result<Tensor> {
        elementwise::softcap(self, x, cap)
    }
    fn last_row(x: &Tensor) -> Result<Tensor> {
        x.narrow(x.shape()[0] - 1, 1)
    }
    fn linear_res(&mut self, x: &Tensor, l: &Linear, residual: Option<&Tensor>) -> Result<Tensor> {
        l.forward(self, x, residual, None)
    }
    fn rope(&mut self, x: &Tensor, r: &Rope<'_, Tensor>) -> Result<Tensor> {
        let (pos0, theta, layout, factors) = rope_params(r);
        rope::rope_scaled(self, x, None, pos0, theta, layout, factors)
    }
    fn k_to_cache(&mut self, k: &Tensor, r: &Rope<'_, Tensor>, kv: &mut GpuKv) -> Result<()> {
        let (pos0, theta, layout, factors) = rope_params(r);
        let rows = GpuKv::rows(&kv.k, pos0, k.shape()[1])?;
        rope::rope_scaled(self, k, Some(&rows), pos0, theta, layout, factors)?;
        Ok(())
    }
    fn v_to_cache(&mut self, h: &Tensor, v: &Linear, kv: &mut GpuKv, pos0: usize) -> Result<()> {
        let seq = h.shape()[0];
        let rows = GpuKv::rows(&kv.v, pos0, seq)?;
        let rows = rows.reshape(&[seq, rows.numel() / seq])?;
        v.forward(self, h, None, Some(&rows))?;
        Ok(())
    }
    fn cached_attention(&mut self, q: &Tensor, kv: &GpuKv, c: &Causal) -> Result<Tensor> {
        attention::attention(self, q, &kv.k, &kv.v, cache_options(c))
    }
    fn gated(&mut self, h: &Tensor, gate: &Linear, up: &Linear, act: Act) -> Result<Tensor> {
        let seq = h.shape()[0];
        match (&gate.weight, &up.weight) {
            (AnyTensor::Quant(g), AnyTensor::Quant(u))
                if seq <= gemv_max_rows(self.gpu()) && g.qtype() == u.qtype() =>
            {
                match act {
                    Act::Silu => quant::gemv_swiglu(self, h, g, u),
                    Act::GeluTanh => quant::gemv_geglu(self, h, g, u),
                }
            }
            _ => {
                let g = gate.forward(self, h, None, None)?;
                let u = up.forward(self, h, None, None)?;
                match act {
                    Act::Silu => elementwise::silu_mul(self, &g, &u),
                    Act::GeluTanh => elementwise::gelu_tanh_mul(self, &g, &u),
                }
            }
        }
    }

    /// Decoding on a GPU, GGUF weights (q and k of one type, v of any, no biases or head norms): the
    /// quantized q, k and v projections and RoPE in one dispatch (`quant::gemv_qkv`), k and v written
    /// into the cache by it; with `fold_norm` the input RMSNorm too.
    fn qkv_fused(&mut self, a: FusedQkv<'_, Self>) -> Result<Option<Tensor>> {
        let seq = a.x.shape()[0];
        let (AnyTensor::Quant(wq), AnyTensor::Quant(wk), AnyTensor::Quant(wv)) =
            (&a.q.weight, &a.k.weight, &a.v.weight)
        else {
            return Ok(None);
        };
        if seq != 1
            || a.q.bias.is_some()
            || a.head_norms
            || self.gpu().capabilities().cpu_kernels
            || wq.qtype() != wk.qtype()
            || !(a.heads * a.head_dim).is_multiple_of(8)
            || !(a.kv_heads * a.head_dim).is_multiple_of(8)
        {
            return Ok(None);
        }
        let pos0 = a.rope.pos0;
        let k_rows = GpuKv::rows(&a.kv.k, pos0, 1)?;
        let v_rows = GpuKv::rows(&a.kv.v, pos0, 1)?.reshape(&[1, a.kv_heads * a.head_dim])?;
        let rope = quant::Rope {
            pos: pos0,
            theta: a.rope.theta,
            head_dim: a.head_dim,
            factors: a.rope.factors,
            rotate_half: a.rope.layout == Layout::RotateHalf,
        };
        let norm = quant::Norm {
            weight: a.norm,
            eps: a.eps,
        };
        let (h, norm) = if a.fold_norm {
            (a.x.clone(), Some(norm))
        } else {
            (norm::rms_norm(self, a.x, a.norm, a.eps)?, None)
        };
        let q = quant::gemv_qkv(self, &h, wq, wk, wv, &k_rows, &v_rows, Some(rope), norm)?;
        Ok(Some(q.reshape(&[1, 1, a.heads, a.head_dim])?))
    }

    /// Decoding on a GPU, a quantized out-projection without bias: the split decode's first pass,
    /// then the out-projection with the residual merging its ranges as it reads them
    /// (`quant::gemv_merged`): one dispatch fewer a layer past the split's threshold (128 keys).
    /// Where [`crate::Capabilities::decode_merge`]; natively `WEBGPU_INFER_DECODE_MERGE=0|1` decides
    /// instead, for A/B runs.
    fn attention_out_fused(&mut self, a: FusedAttentionOut<'_, Self>) -> Result<Option<Tensor>> {
        static MERGE: crate::kernels::Tuned =
            crate::kernels::Tuned::new("WEBGPU_INFER_DECODE_MERGE");
        let AnyTensor::Quant(w) = &a.out.weight else {
            return Ok(None);
        };
        let &[_, _, heads, head_dim] = a.q.shape() else {
            return Ok(None);
        };
        let ranges = attention::decode_ranges(a.causal.kv_len);
        let on = match MERGE.get() {
            Some(v) => v == 1,
            None => self.gpu().capabilities().decode_merge,
        };
        if !on
            || a.out.bias.is_some()
            || self.gpu().capabilities().cpu_kernels
            || !quant::gemv_merged_fits(self.gpu(), heads, head_dim, ranges)
        {
            return Ok(None);
        }
        let Some(parts) =
            attention::decode_partials(self, a.q, &a.kv.k, &a.kv.v, cache_options(a.causal))?
        else {
            return Ok(None);
        };
        Ok(Some(quant::gemv_merged(self, &parts, w, Some(a.x))?))
    }

    /// After a fused QKV with folded norms: the MLP's RMSNorm folded into the SwiGLU GEMV, then the
    /// down projection with the residual.
    fn mlp_fused(&mut self, a: FusedMlp<'_, Self>) -> Result<Option<Tensor>> {
        let (Act::Silu, AnyTensor::Quant(g), AnyTensor::Quant(u)) =
            (a.act, &a.gate.weight, &a.up.weight)
        else {
            return Ok(None);
        };
        if g.qtype() != u.qtype() {
            return Ok(None);
        }
        let norm = quant::Norm {
            weight: a.norm,
            eps: a.eps,
        };
        let act = quant::gemv_swiglu_norm(self, a.x, g, u, norm)?;
        Ok(Some(a.down.forward(self, &act, Some(a.x), None)?))
    }

    /// The final RMSNorm folded into a quantized LM head's GEMV (GPU kernels, one row, no bias);
    /// with `argmax`, its workgroups' maxima too (`quant::gemv_norm_argmax`). Natively
    /// `WEBGPU_INFER_FOLD_FINAL_NORM=0` turns it off, for A/B runs.
    fn norm_linear_fused(
        &mut self,
        x: &Tensor,
        norm: &Tensor,
        eps: f32,
        l: &Linear,
        argmax: bool,
    ) -> Result<Option<WithParts<Tensor>>> {
        static FOLD: crate::kernels::Tuned =
            crate::kernels::Tuned::new("WEBGPU_INFER_FOLD_FINAL_NORM");
        let AnyTensor::Quant(w) = &l.weight else {
            return Ok(None);
        };
        if FOLD.get() == Some(0)
            || l.bias.is_some()
            || x.shape().first() != Some(&1)
            || self.gpu().capabilities().cpu_kernels
        {
            return Ok(None);
        }
        let norm = quant::Norm { weight: norm, eps };
        Ok(Some(match argmax {
            true => {
                let (logits, parts) = quant::gemv_norm_argmax(self, x, w, norm)?;
                (logits, Some(parts))
            }
            false => (quant::gemv_norm(self, x, w, norm)?, None),
        }))
    }
}

/// Causal attention over a cache's first `c.kv_len` keys.
fn cache_options(c: &Causal) -> attention::Options<'static> {
    attention::Options {
        causal: true,
        kv_len: Some(c.kv_len),
        scale: Some(c.scale),
        window: c.window,
        softcap: c.softcap,
        ..Default::default()
    }
}
