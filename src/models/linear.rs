//! The linear layer of every model: `x · Wᵀ (+ bias) (+ residual)` for a weight `[out, in]`, dense
//! (the tiled matmul) or block-quantized (on GPUs the dequantizing GEMV below 256 rows, the
//! quantized matmul from there; on CPU adapters the GEMV for a few rows, else dequantized once into
//! a dense matrix), its shape checked against the model's config when loaded.

use std::sync::Arc;

use crate::bridge::Weights;
use crate::bridge::load::AnyTensor;
use crate::error::{Error, Result};
use crate::kernels::activation::Activation;
use crate::kernels::matmul::{self, BLayout, Epilogue, Kernel, linear, matmul_with};
use crate::kernels::{elementwise, quant};
use crate::recorder::Recorder;
use crate::tensor::Tensor;

/// From this many rows on GPUs, quantized weights are read in the tiles of `quant::matmul` rather
/// than dequantized for the dense matmul. Its 64×64 tiles need many rows to fill a GPU: on an H100
/// (SmolLM2-135M Q4_1, one call, three rounds; `bench-results/h100-quant-matmul-ab-2026-12-05.jsonl`)
/// a 512-token prompt's first token came in 22.2–23.5 ms against 25.5–27.4, 128 tokens tied
/// (16–19 ms both), 64 tokens lost (17.8–18.9 against 15.4–16.8, 9 workgroups a product).
const QUANT_MATMUL_MIN_ROWS: usize = 256;

/// [`QUANT_MATMUL_MIN_ROWS`] where the quantized matmul runs on tensor cores. H100, SmolLM2-135M
/// Q4_1, time to first token, two rounds each, the 4-row GEMV against the tensor-core matmul: 33
/// tokens 4.7–5.2 against 10.0–10.5 ms, 64 6.2–6.3 against 10.5–10.6, 128 9.4–10.5 against 10.9–11.0,
/// 200 13.0–13.2 against 11.0–11.1, 255 16.0–16.1 against 11.7–11.8
/// (`bench-results/h100-prefill-tc-ab-2026-12-06.jsonl`); the next call, 160 tokens 10.7 against
/// 10.6–11.7 (a tie), 176 11.4–11.7 against 10.8–11.0 (`h100-prefill-rows-ab-2026-12-06.jsonl`).
const QUANT_MATMUL_TC_MIN_ROWS: usize = 176;

/// From how many rows a GPU reads quantized weights through `quant::matmul`.
fn quant_matmul_min_rows(gpu: &crate::Gpu) -> usize {
    tuned::QUANT_MM_MIN_ROWS
        .get()
        .unwrap_or(if gpu.capabilities().cooperative_matrix {
            QUANT_MATMUL_TC_MIN_ROWS
        } else {
            QUANT_MATMUL_MIN_ROWS
        })
}

/// Up to this many rows (tokens), quantized weights are read by the dequantizing GEMV; past it they
/// are dequantized into a scratch tensor for the tiled matmul (CPU adapters), or on GPUs read by
/// `quant::matmul` (from [`QUANT_MATMUL_MIN_ROWS`]). On GPUs the GEMV takes 4 rows a workgroup
/// (`gemv4`: each weight block read once for them) and beats dequantize + tiled matmul at every
/// length below the quantized matmul's threshold. H100, SmolLM2-135M Q4_1, time to first token, one
/// call, two rounds (`bench-results/h100-gemv-rows-ab-2026-12-05.jsonl`), GEMV up to 32 rows → 255:
/// 33 tokens 14.9–16.4 → 5.1–5.4 ms, 64 tokens 16.8–17.0 → 7.2–7.6, 100 tokens 17.4–17.7 → 8.1–8.8,
/// 128 tokens 18.0–18.6 → 10.2–10.4, 200 tokens 19.3–19.5 → 13.3–13.9, 255 tokens 21.7–22.5 →
/// 16.8–17.0; as a page runs kernels (`--web-like`: runtime checks, no subgroups) 33 tokens 30.5 →
/// 5.6 ms, 128 tokens 29.7 → 10.9. (Earlier, H200: 15 tokens 16.4 → 9.8 ms against the dequantizing
/// path, `bench-results/h200-gemv4-2026-12-04.txt`.) CPU adapters run one row a thread, up to 8 rows.
pub(crate) fn gemv_max_rows(gpu: &crate::Gpu) -> usize {
    if gpu.capabilities().cpu_kernels {
        8
    } else {
        tuned::GEMV_MAX_ROWS
            .get()
            .unwrap_or(quant_matmul_min_rows(gpu) - 1)
    }
}

/// Natively, benchmarks may move the two thresholds to measure where each kernel wins on a GPU,
/// without a build each. Pages always use the defaults.
mod tuned {
    use crate::kernels::Tuned;

    pub(super) static GEMV_MAX_ROWS: Tuned = Tuned::new("WEBGPU_INFER_GEMV_MAX_ROWS");
    pub(super) static QUANT_MM_MIN_ROWS: Tuned = Tuned::new("WEBGPU_INFER_QUANT_MM_MIN_ROWS");
}

/// The stacked weight `[P, N, K]` and bias `[P, N]` whose consecutive rows `parts` are views of.
fn stacked(parts: &[&Linear]) -> Option<(Tensor, Option<Tensor>)> {
    let weights: Vec<&Tensor> = parts
        .iter()
        .map(|l| match &l.weight {
            AnyTensor::Dense(w) => Some(w),
            AnyTensor::Quant(_) => None,
        })
        .collect::<Option<_>>()?;
    let &[n, k] = weights.first()?.shape() else {
        return None;
    };
    let p = parts.len();
    let w = consecutive(&weights)?.spanning(&[p, n, k]).ok()?;
    let biases: Vec<&Tensor> = parts.iter().filter_map(|l| l.bias.as_ref()).collect();
    let bias = match biases.len() {
        0 => None,
        len if len == p => Some(consecutive(&biases)?.spanning(&[p, n]).ok()?),
        _ => return None,
    };
    Some((w, bias))
}

/// The first of `views` when each starts where the one before it ends, in one buffer, all of one
/// shape and type.
fn consecutive<'a>(views: &[&'a Tensor]) -> Option<&'a Tensor> {
    let first = *views.first()?;
    let step = first.size_in_bytes();
    views
        .iter()
        .enumerate()
        .all(|(i, v)| {
            Arc::ptr_eq(v.buffer(), first.buffer())
                && v.shape() == first.shape()
                && v.dtype() == first.dtype()
                && v.offset() == first.offset() + i as u64 * step
        })
        .then_some(first)
}

/// A model's tensor `name` is not what its config implies.
fn bad(source: &str, message: impl Into<String>) -> Error {
    Error::Model {
        source_name: source.to_string(),
        message: message.into(),
    }
}

/// A weight matrix `[out, in]`, dense or block-quantized, and an optional bias `[out]`, as a linear
/// layer uses them.
#[derive(Clone)]
pub struct Linear {
    pub(crate) weight: AnyTensor,
    pub(crate) bias: Option<Tensor>,
}

impl Linear {
    pub(crate) fn new(weight: AnyTensor) -> Linear {
        Linear { weight, bias: None }
    }

    /// With the bias `bias_name` (`[out]`).
    pub(crate) fn load_with_bias(
        weights: &Weights,
        name: &str,
        bias_name: &str,
        out: usize,
        inp: usize,
    ) -> Result<Linear> {
        let mut l = Linear::load(weights, name, out, inp)?;
        let bias = weights.get(bias_name)?;
        if bias.shape() != [out] {
            return Err(bad(
                bias_name,
                format!("has shape {:?}, not [{out}]", bias.shape()),
            ));
        }
        l.bias = Some(bias.clone());
        Ok(l)
    }

    pub(crate) fn load(weights: &Weights, name: &str, out: usize, inp: usize) -> Result<Linear> {
        let weight = weights.get_any(name)?;
        if weight.shape() != [out, inp] {
            return Err(bad(
                name,
                format!(
                    "has shape {:?}, the config implies [{out}, {inp}]",
                    weight.shape()
                ),
            ));
        }
        Ok(Linear { weight, bias: None })
    }

    /// On devices with f16 tensor cores ([`crate::Capabilities::cooperative_matrix`]), a dense f32
    /// weight becomes an f16 copy (recorded into `rec`), so that its products run as
    /// `matmul::Kernel::Coop`'s mixed product (f32 activations rounded to f16 as they are staged, f32
    /// accumulation, bias and output); otherwise, or for other weights, nothing changes. Returns
    /// whether it converted.
    pub(crate) fn use_tensor_cores(&mut self, rec: &mut Recorder) -> Result<bool> {
        let caps = rec.gpu().capabilities();
        let AnyTensor::Dense(w) = &self.weight else {
            return Ok(false);
        };
        let in_features = w.shape().last().copied().unwrap_or(0);
        if !caps.cooperative_matrix
            || w.dtype() != crate::DType::F32
            || !in_features.is_multiple_of(8)
        {
            return Ok(false);
        }
        self.weight = AnyTensor::Dense(crate::kernels::cast::to_f16(rec, w)?);
        Ok(true)
    }

    /// Makes `parts` (dense layers of one input: one weight shape and type, all with biases or none)
    /// views of one stacked weight `[P, N, K]` (and bias `[P, N]`), copied on the GPU into `rec`, so
    /// that [`Linear::forward_many`] runs them as one product (BERT's Q, K and V: one dispatch where
    /// there were three). Returns whether it stacked them; other layers are left as they are.
    pub(crate) fn stack(rec: &mut Recorder, parts: &mut [&mut Linear]) -> Result<bool> {
        let dense: Vec<Tensor> = parts
            .iter()
            .filter_map(|l| match &l.weight {
                AnyTensor::Dense(w) => Some(w.clone()),
                AnyTensor::Quant(_) => None,
            })
            .collect();
        let Some(first) = dense.first() else {
            return Ok(false);
        };
        let with_bias = parts[0].bias.is_some();
        if parts.len() < 2
            || dense.len() != parts.len()
            || dense
                .iter()
                .any(|w| w.shape() != first.shape() || w.dtype() != first.dtype())
            || parts.iter().any(|l| l.bias.is_some() != with_bias)
        {
            return Ok(false);
        }
        let gpu = rec.gpu().clone();
        let (n, p) = (first.shape()[0], parts.len());
        let weights = Tensor::empty(&gpu, &[p * n, first.shape()[1]], first.dtype())?;
        let biases = match &parts[0].bias {
            Some(b) => Some(Tensor::empty(&gpu, &[p * n], b.dtype())?),
            None => None,
        };
        for (i, (l, w)) in parts.iter_mut().zip(&dense).enumerate() {
            let w_view = weights.narrow(i * n, n)?;
            elementwise::copy_into(rec, w, &w_view)?;
            l.weight = AnyTensor::Dense(w_view);
            if let (Some(b), Some(all)) = (&l.bias, &biases) {
                let b_view = all.narrow(i * n, n)?;
                elementwise::copy_into(rec, b, &b_view)?;
                l.bias = Some(b_view);
            }
        }
        Ok(true)
    }

    /// `x · Wᵢᵀ + biasᵢ` for each of `parts`: in one product ([`matmul::linear_stacked`]) when they
    /// are consecutive views of one stacked weight (what [`Linear::stack`] makes) and each result
    /// starts where a view can be bound from (`minStorageBufferOffsetAlignment`), else one at a time.
    pub(crate) fn forward_many(
        rec: &mut Recorder,
        x: &Tensor,
        parts: &[&Linear],
    ) -> Result<Vec<Tensor>> {
        let rows = x.numel() / x.shape().last().copied().unwrap_or(1).max(1);
        if let Some((w, bias)) = stacked(parts) {
            let n = w.shape()[1];
            let align = u64::from(rec.gpu().limits().min_storage_buffer_offset_alignment);
            let part_bytes = (rows * n * x.dtype().size_in_bytes()) as u64;
            if part_bytes.is_multiple_of(align) {
                let y = matmul::linear_stacked(rec, x, &w, bias.as_ref(), Kernel::Auto)?;
                let mut shape = x.shape().to_vec();
                if let Some(last) = shape.last_mut() {
                    *last = n;
                }
                return (0..parts.len())
                    .map(|i| y.narrow(i, 1)?.reshape(&shape))
                    .collect();
            }
        }
        parts
            .iter()
            .map(|l| l.forward(rec, x, None, None))
            .collect()
    }

    /// `x · Wᵀ (+ bias) (+ residual)`, written into `out` when given.
    pub(crate) fn forward(
        &self,
        rec: &mut Recorder,
        x: &Tensor,
        residual: Option<&Tensor>,
        out: Option<&Tensor>,
    ) -> Result<Tensor> {
        let rows = x.numel() / x.shape().last().copied().unwrap_or(1).max(1);
        let bias = self.bias.as_ref();
        let y = match &self.weight {
            AnyTensor::Quant(w) if rows <= gemv_max_rows(rec.gpu()) => {
                // One row: a bias is the GEMV's added term (when no residual is).
                let row_bias = match (bias, residual) {
                    (Some(b), None) if rows == 1 => Some(b.reshape(&[1, b.numel()])?),
                    _ => None,
                };
                if bias.is_none() || row_bias.is_some() {
                    let opts = quant::GemvOptions {
                        residual: residual.or(row_bias.as_ref()),
                        out,
                        ..Default::default()
                    };
                    return quant::gemv_with(rec, x, w, opts);
                }
                let y = quant::gemv(rec, x, w, None)?;
                match bias {
                    Some(b) => elementwise::add(rec, &y, b)?,
                    None => y,
                }
            }
            // GPUs, long prompts: the blocks read in the matmul's tiles (no dequantized copy), the
            // residual added in its epilogue.
            AnyTensor::Quant(w)
                if rows >= quant_matmul_min_rows(rec.gpu())
                    && !rec.gpu().capabilities().cpu_kernels =>
            {
                let y = quant::matmul(rec, x, w, residual)?;
                let y = match bias {
                    Some(b) => elementwise::add(rec, &y, b)?,
                    None => y,
                };
                if let Some(out) = out {
                    elementwise::copy_into(rec, &y.reshape(out.shape())?, out)?;
                    return Ok(out.clone());
                }
                return Ok(y);
            }
            AnyTensor::Quant(w) => {
                let dense = quant::dequantize(rec, w, x.dtype())?;
                linear(rec, x, &dense, bias, None)?
            }
            // Dense: the residual is added in the matmul's epilogue (no separate add).
            AnyTensor::Dense(w) => {
                let mut shape = x.shape().to_vec();
                if let Some(last) = shape.last_mut() {
                    *last = w.shape()[0];
                }
                let residual = residual.map(|r| r.reshape(&shape)).transpose()?;
                let epilogue = Epilogue {
                    bias,
                    activation: None,
                    residual: residual.as_ref(),
                };
                let y = matmul_with(rec, x, w, BLayout::NK, epilogue, Kernel::Auto)?;
                if let Some(out) = out {
                    elementwise::copy_into(rec, &y.reshape(out.shape())?, out)?;
                    return Ok(out.clone());
                }
                return Ok(y);
            }
        };
        let y = match residual {
            Some(r) => elementwise::add(rec, &y, r)?,
            None => y,
        };
        if let Some(out) = out {
            elementwise::copy_into(rec, &y.reshape(out.shape())?, out)?;
            return Ok(out.clone());
        }
        Ok(y)
    }

    /// `act(x · Wᵀ + bias)`, the activation fused into the matmul's epilogue (BERT's layers); a
    /// quantized weight is dequantized first.
    pub(crate) fn forward_act(
        &self,
        rec: &mut Recorder,
        x: &Tensor,
        act: Option<Activation>,
    ) -> Result<Tensor> {
        if act.is_none() {
            return self.forward(rec, x, None, None);
        }
        let w = match &self.weight {
            AnyTensor::Dense(w) => w.clone(),
            AnyTensor::Quant(w) => quant::dequantize(rec, w, x.dtype())?,
        };
        linear(rec, x, &w, self.bias.as_ref(), act)
    }
}
