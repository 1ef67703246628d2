//! What one dispatch of decoding costs: chains of [`CHAIN`] dispatches of one kernel on
//! SmolLM2-135M's shapes, each reading the previous one's output (`"dependent": true`, as in a
//! decoding step, where every dispatch waits for the one before) or all writing fresh buffers
//! (`false`: the GPU may overlap them). `"us"` is the time of one dispatch (wall clock; `"gpu_us"`
//! from timestamps). [`bench_bert_chains`] does the same for MiniLM's products with each matmul kernel:
//! alone, a product of a short text's rows takes a microsecond or two when many overlap, but in a
//! forward pass each waits for the one before, and then a kernel's few long-running workgroups are
//! what it costs.

use serde_json::{Value, json};

use super::{BenchConfig, filled, round4, time};
use crate::dtype::QuantType;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::activation::Activation;
use crate::kernels::matmul::{self, BLayout, Epilogue, Kernel};
use crate::kernels::{norm, quant};
use crate::qtensor::QTensor;
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

/// Dispatches in one chain.
const CHAIN: usize = 32;

/// One link of a chain: the kernel(s) on `h`, writing into `out` when given.
type Step<'a> = Box<dyn Fn(&mut Recorder, &Tensor, Option<&Tensor>) -> Result<Tensor> + 'a>;

/// A quantized matrix `[n, k]` of type `q` with small positive f16 scales (0x2c00 = 0.0625) and
/// varied quants: no NaN, no denormals.
fn synthetic(gpu: &Gpu, n: usize, k: usize, q: QuantType) -> Result<QTensor> {
    let bytes: Vec<u8> = (0..q.bytes_for((n * k) as u64) as usize)
        .map(|i| {
            if i % 2 == 1 {
                0x2c
            } else {
                (i * 37 % 251) as u8 & 0x7f
            }
        })
        .collect();
    QTensor::from_blocks(gpu, &bytes, &[n, k], q)
}

/// `quant::gemv_with` writing into `out` (or a new tensor), with a residual when given.
fn gemv(
    rec: &mut Recorder,
    h: &Tensor,
    w: &QTensor,
    out: Option<&Tensor>,
    residual: Option<&Tensor>,
) -> Result<Tensor> {
    let opts = quant::GemvOptions {
        out,
        residual,
        ..Default::default()
    };
    quant::gemv_with(rec, h, w, opts)
}

pub(super) async fn bench_chains(gpu: &Gpu, cfg: &BenchConfig) -> Result<Vec<Value>> {
    let (hidden, inter, vocab) = (576, 1536, 49152);
    let x = filled(gpu, DType::F32, &[1, hidden])?;
    let xi = filled(gpu, DType::F32, &[1, inter])?;
    let nw = filled(gpu, DType::F32, &[hidden])?;
    let sq = synthetic(gpu, hidden, hidden, QuantType::Q4_1)?;
    let down = synthetic(gpu, hidden, inter, QuantType::Q4_1)?;
    let up = synthetic(gpu, inter, hidden, QuantType::Q4_1)?;
    let lm = synthetic(gpu, vocab, hidden, QuantType::Q8_0)?;
    let tiny = synthetic(gpu, 32, 32, QuantType::Q4_1)?;
    let x32 = filled(gpu, DType::F32, &[1, 32])?;
    let cases: Vec<(&str, &Tensor, Step)> = vec![
        (
            "gemv q4_1 32x32 (one workgroup)",
            &x32,
            Box::new(|rec, h, out| gemv(rec, h, &tiny, out, None)),
        ),
        (
            "rms_norm 576",
            &x,
            Box::new(|rec, h, _| norm::rms_norm(rec, h, &nw, 1e-5)),
        ),
        (
            "gemv q4_1 576x576",
            &x,
            Box::new(|rec, h, out| gemv(rec, h, &sq, out, None)),
        ),
        (
            "gemv q4_1 576x1536 + residual",
            &xi,
            Box::new(|rec, h, out| {
                let y = gemv(rec, h, &down, None, Some(&x))?;
                gemv(rec, &y, &up, out, None)
            }),
        ),
        (
            "swiglu q4_1 1536x576 + gemv back",
            &x,
            Box::new(|rec, h, out| {
                let y = quant::gemv_swiglu(rec, h, &up, &up)?;
                gemv(rec, &y, &down, out, None)
            }),
        ),
        (
            "gemv q8_0 49152x576 (lm_head)",
            &x,
            Box::new(|rec, h, _| quant::gemv(rec, h, &lm, None)),
        ),
    ];
    let mut lines = Vec::new();
    for (name, x0, step) in &cases {
        for dependent in [true, false] {
            lines.push(time_chain(gpu, cfg, name, x0, step, dependent).await?);
        }
    }
    Ok(lines)
}

/// One chain of `step`s from `x0`, timed: its JSON line.
async fn time_chain(
    gpu: &Gpu,
    cfg: &BenchConfig,
    name: &str,
    x0: &Tensor,
    step: &Step<'_>,
    dependent: bool,
) -> Result<Value> {
    let fixed = step(&mut gpu.recorder(), x0, None)?;
    let t = time(gpu, cfg, 1 << 20, &mut |rec| {
        let mut h = x0.clone();
        for _ in 0..CHAIN {
            // Dependent: each reads the last output, or (another shape) writes over it.
            let square = fixed.shape() == x0.shape();
            let (input, out) = match (dependent, square) {
                (true, true) => (&h, None),
                (true, false) => (x0, Some(&fixed)),
                (false, _) => (x0, None),
            };
            let y = step(rec, input, out)?;
            if dependent && square {
                h = y;
            }
        }
        Ok(h)
    })
    .await?;
    let per = |ms: f64| round4(ms * 1e3 / CHAIN as f64);
    let mut v = json!({"op": "chain", "kernel": name, "dependent": dependent,
        "dispatches": CHAIN, "ms": t.ms, "us": per(t.ms)});
    if let Some(g) = t.gpu_ms {
        v["gpu_us"] = json!(per(g));
    }
    Ok(v)
}

/// MiniLM's products at 1 / 8 / 32 texts of 128 tokens (rows up to `max_square`) with each matmul
/// kernel the device runs, as chains: `"bert 384x384"` is the attention output (`x · Wᵀ + bias + x`), `"bert 1536 gelu + 384"`
/// the feed-forward pair (`gelu(x · W1ᵀ + b1) · W2ᵀ + b2 + x`, two dispatches a link). The
/// tensor-core kernels take f16 weights (the mixed product MiniLM runs), the others f32.
pub(super) async fn bench_bert_chains(gpu: &Gpu, cfg: &BenchConfig) -> Result<Vec<Value>> {
    let (hidden, inter) = (384, 1536);
    let mut kernels = vec![
        Kernel::Auto,
        Kernel::Tiled16,
        Kernel::Tiled64,
        Kernel::Tiled128,
    ];
    if gpu.capabilities().cooperative_matrix {
        kernels.extend([Kernel::Coop64, Kernel::Coop]);
    }
    let mut lines = Vec::new();
    for &kernel in &kernels {
        let wt = if matches!(kernel, Kernel::Coop | Kernel::Coop64) {
            DType::F16
        } else {
            DType::F32
        };
        let w_sq = filled(gpu, wt, &[hidden, hidden])?;
        let w_up = filled(gpu, wt, &[inter, hidden])?;
        let w_down = filled(gpu, wt, &[hidden, inter])?;
        let b_h = filled(gpu, DType::F32, &[hidden])?;
        let b_i = filled(gpu, DType::F32, &[inter])?;
        let product = |rec: &mut Recorder, x: &Tensor, w: &Tensor, e: Epilogue| {
            matmul::matmul_with(rec, x, w, BLayout::NK, e, kernel)
        };
        // Up to the largest square product asked for (software adapters: 128 rows only).
        for rows in [128, 1024, 4096]
            .into_iter()
            .filter(|&r| r <= cfg.max_square.max(128))
        {
            let x = filled(gpu, DType::F32, &[rows, hidden])?;
            let cases: Vec<(&str, Step)> = vec![
                (
                    "bert 384x384",
                    Box::new(|rec, h, _| {
                        let e = Epilogue {
                            bias: Some(&b_h),
                            activation: None,
                            residual: Some(h),
                        };
                        product(rec, h, &w_sq, e)
                    }),
                ),
                (
                    "bert 1536 gelu + 384",
                    Box::new(|rec, h, _| {
                        let e = Epilogue {
                            bias: Some(&b_i),
                            activation: Some(Activation::Gelu),
                            residual: None,
                        };
                        let y = product(rec, h, &w_up, e)?;
                        let e = Epilogue {
                            bias: Some(&b_h),
                            activation: None,
                            residual: Some(h),
                        };
                        product(rec, &y, &w_down, e)
                    }),
                ),
            ];
            for (name, step) in &cases {
                for dependent in [true, false] {
                    let mut v = time_chain(gpu, cfg, name, &x, step, dependent).await?;
                    v["op"] = json!("bert_chain");
                    v["matmul_kernel"] = json!(format!("{kernel:?}"));
                    v["m"] = json!(rows);
                    lines.push(v);
                }
            }
        }
    }
    Ok(lines)
}
