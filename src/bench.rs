//! Kernel benchmarks, one implementation for both targets: the native example
//! (`cargo run --release --example bench_kernels`) and the browser page (`www/bench/kernels.html`,
//! through `Device.benchKernels`). Each measurement is one JSON object:
//! `{"op","dtype","m","n","k","ms","gflops" | "gbps","adapter", ...}`.
//!
//! Timing is wall-clock around whole submissions, after a warm-up run (pipeline compilation) and a
//! sync: `iters` runs are recorded, several per submit for small ops, then the GPU is waited for.
//! Memory-bound ops rotate over enough copies of their weights to defeat the GPU's last-level cache.

mod chains;
use chains::{bench_bert_chains, bench_chains};

use crate::clock::now_ms;
use serde_json::{Value, json};

use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::attention::{self, Kernel as AttentionKernel, Options};
use crate::kernels::copy::copy;
use crate::kernels::matmul::{self, BLayout, Epilogue, Kernel};
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Largest square matmul (4096 natively; SwiftShader in a browser is happier with 512).
    pub max_square: usize,
    /// Longest attention sequence / KV cache.
    pub max_seq: usize,
    /// Bytes of the copy benchmark.
    pub copy_bytes: usize,
    /// Only these ops (`copy`, `matmul`, `linear`, `linear_kernels`, `matmul_kernels`, `gemv`,
    /// `attention`, `decode`, ...); empty: all.
    pub ops: Vec<String>,
    /// Aim for about this much GPU time per measurement.
    pub target_ms: f64,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            max_square: 4096,
            max_seq: 2048,
            copy_bytes: 256 << 20,
            ops: Vec::new(),
            target_ms: 300.0,
        }
    }
}

impl BenchConfig {
    fn wants(&self, op: &str) -> bool {
        self.ops.is_empty() || self.ops.iter().any(|o| o == op)
    }
}

/// Runs the configured benchmarks, handing each JSON line to `emit` as soon as it is measured.
pub async fn run(gpu: &Gpu, cfg: &BenchConfig, emit: &mut dyn FnMut(Value)) -> Result<()> {
    let adapter = gpu.adapter_name();
    let mut out = |mut v: Value| {
        v["adapter"] = json!(adapter);
        // Four significant digits are all the timing supports.
        for key in ["ms", "gflops", "gbps"] {
            if let Some(x) = v.get(key).and_then(Value::as_f64) {
                v[key] = json!(round4(x));
            }
        }
        emit(v)
    };
    let mut dtypes = vec![DType::F32];
    if gpu.capabilities().shader_f16 {
        dtypes.push(DType::F16);
    }
    if cfg.wants("copy") {
        // Within the device's binding limit (128 MiB by default in browsers).
        let limit = gpu.limits().max_storage_buffer_binding_size as usize;
        let n = cfg.copy_bytes.min(limit) / 4;
        let x = filled(gpu, DType::F32, &[n])?;
        let t = time(gpu, cfg, x.size_in_bytes(), &mut |rec| copy(rec, &x)).await?;
        let ms = t.ms;
        let gbps = 2.0 * x.size_in_bytes() as f64 / (ms * 1e6);
        out(t.tag(
            json!({"op": "copy", "dtype": "f32", "m": 1, "n": n, "k": 1, "ms": ms, "gbps": gbps}),
        ));
    }
    for &dtype in &dtypes {
        if cfg.wants("matmul") {
            for size in [256, 512, 1024, 2048, 4096]
                .into_iter()
                .filter(|&s| s <= cfg.max_square)
            {
                let v = bench_matmul(gpu, cfg, dtype, (size, size, size), BLayout::KN).await?;
                out(v);
            }
        }
        if cfg.wants("linear") {
            out(bench_matmul(gpu, cfg, dtype, (128, 1536, 384), BLayout::NK).await?);
        }
        if cfg.wants("linear_kernels") && dtype == DType::F32 {
            // Every tiled kernel on MiniLM's linears at 1 / 8 / 32 texts of 128 tokens: which one
            // Kernel::Auto should pick for each.
            let mut kernels = vec![Kernel::Tiled16, Kernel::Tiled64, Kernel::Tiled128];
            if gpu.capabilities().cooperative_matrix {
                kernels.extend([Kernel::Coop64, Kernel::Coop]);
            }
            for rows in [128, 1024, 4096] {
                for (n, k) in [(384, 384), (1536, 384), (384, 1536)] {
                    for &kernel in &kernels {
                        let shape = (rows, n, k);
                        let mut v = bench_kernel(gpu, cfg, shape, BLayout::NK, kernel).await?;
                        v["kernel"] = json!(format!("{kernel:?}"));
                        out(v);
                    }
                }
            }
        }
        if cfg.wants("matmul_kernels") && dtype == DType::F32 {
            // The 64×64 and 128×128 tiles on the square products `matmul` measures: where the
            // runtime's checks (browsers) move the best choice.
            for size in [512, 1024, 2048]
                .into_iter()
                .filter(|&s| s <= cfg.max_square)
            {
                for kernel in [Kernel::Tiled64, Kernel::Tiled128] {
                    let shape = (size, size, size);
                    let mut v = bench_kernel(gpu, cfg, shape, BLayout::KN, kernel).await?;
                    v["kernel"] = json!(format!("{kernel:?}"));
                    out(v);
                }
            }
        }
        if cfg.wants("gemv") {
            for n in [1536, 49152] {
                out(bench_matmul(gpu, cfg, dtype, (1, n, 576), BLayout::NK).await?);
            }
        }
        if cfg.wants("attention") {
            for seq in [128, 512, 2048].into_iter().filter(|&s| s <= cfg.max_seq) {
                for causal in [false, true] {
                    // What Auto picks (tensor cores for f16 where the device has them, else the
                    // tiled kernel on GPUs), the other of the two where the device has tensor
                    // cores (for f32: inputs rounded to f16), and the one-row-a-thread kernel.
                    let caps = gpu.capabilities();
                    let mut variants = vec![AttentionKernel::Auto, AttentionKernel::Prefill];
                    if caps.cooperative_matrix && caps.subgroups {
                        variants.insert(
                            1,
                            if dtype == DType::F16 {
                                AttentionKernel::PrefillTiledSubgroup
                            } else {
                                AttentionKernel::PrefillCoop
                            },
                        );
                    }
                    for variant in variants {
                        out(bench_attention(gpu, cfg, dtype, seq, causal, variant).await?);
                    }
                }
            }
        }
        if cfg.wants("conv") {
            use crate::kernels::conv::Kernel as ConvKernel;
            for case in CONV_CASES {
                out(bench_conv(gpu, cfg, dtype, case, ConvKernel::Direct).await?);
                // Dense convolutions with a real kernel: also through im2col + the tiled matmul.
                if case.4 == 1 && case.2[1] > 1 {
                    out(bench_conv(gpu, cfg, dtype, case, ConvKernel::Im2col).await?);
                }
            }
        }
        if cfg.wants("chain") && dtype == DType::F32 {
            for v in bench_chains(gpu, cfg).await? {
                out(v);
            }
        }
        // Long on a CPU adapter (minutes on llvmpipe): there only when asked for by name.
        let named = cfg.ops.iter().any(|o| o == "bert_chain");
        let software = gpu.capabilities().software;
        if cfg.wants("bert_chain") && dtype == DType::F32 && (named || !software) {
            for v in bench_bert_chains(gpu, cfg).await? {
                out(v);
            }
        }
        if cfg.wants("decode") {
            for kv_len in [1, 128, 512, 1024, 2048]
                .into_iter()
                .filter(|&s| s <= cfg.max_seq)
            {
                out(bench_decode(gpu, cfg, dtype, kv_len).await?);
            }
        }
    }
    Ok(())
}

fn round4(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// A tensor of small pseudo-random values (so no denormals or infinities skew the timing).
fn filled(gpu: &Gpu, dtype: DType, shape: &[usize]) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1e-3)
        .collect();
    match dtype {
        DType::F16 => {
            let h: Vec<half::f16> = values.iter().map(|&v| half::f16::from_f32(v)).collect();
            Tensor::from_f16(gpu, &h, shape)
        }
        _ => Tensor::from_f32(gpu, &values, shape),
    }
}

/// How many copies of `bytes` of weights to rotate over so they do not fit a 64 MiB cache.
fn copies_for(bytes: u64) -> usize {
    (256u64 << 20).div_ceil(bytes.max(1)).clamp(1, 16) as usize
}

async fn bench_matmul(
    gpu: &Gpu,
    cfg: &BenchConfig,
    dtype: DType,
    (m, n, k): (usize, usize, usize),
    layout: BLayout,
) -> Result<Value> {
    let a = filled(gpu, dtype, &[m, k])?;
    let b_shape = if layout == BLayout::NK {
        [n, k]
    } else {
        [k, n]
    };
    let b_bytes = (n * k * dtype.size_in_bytes()) as u64;
    let copies = if m <= 2 { copies_for(b_bytes) } else { 1 };
    let bs: Vec<Tensor> = (0..copies)
        .map(|_| filled(gpu, dtype, &b_shape))
        .collect::<Result<_>>()?;
    let out_bytes = (m * n * dtype.size_in_bytes()) as u64;
    let mut i = 0;
    let t = time(gpu, cfg, out_bytes, &mut |rec| {
        i += 1;
        let b = &bs[i % bs.len()];
        matmul::matmul_with(rec, &a, b, layout, Epilogue::default(), Kernel::Auto)
    })
    .await?;
    let ms = t.ms;
    let gflops = matmul::flops(1, m, n, k) / (ms * 1e6);
    let op = if m <= 2 {
        "gemv"
    } else if layout == BLayout::NK {
        "linear"
    } else {
        "matmul"
    };
    let mut v = json!({"op": op, "dtype": dtype.name(), "m": m, "n": n, "k": k, "ms": ms, "gflops": gflops});
    if dtype == DType::F16 && m > 32 && gpu.capabilities().cooperative_matrix {
        v["kernel"] = json!("coop"); // Kernel::Auto's choice: tensor cores
    }
    if m <= 2 {
        // Memory-bound: what matters is the weight bytes streamed per second.
        v["gbps"] = json!(b_bytes as f64 / (ms * 1e6));
        if let Some(g) = t.gpu_ms {
            v["gpu_gbps"] = json!(b_bytes as f64 / (g * 1e6));
        }
    }
    Ok(t.tag(v))
}

/// `x [m, k] · W [n, k]ᵀ` in f32 with one given kernel.
async fn bench_kernel(
    gpu: &Gpu,
    cfg: &BenchConfig,
    (m, n, k): (usize, usize, usize),
    layout: BLayout,
    kernel: Kernel,
) -> Result<Value> {
    let a = filled(gpu, DType::F32, &[m, k])?;
    let b_shape = if layout == BLayout::NK {
        [n, k]
    } else {
        [k, n]
    };
    // The tensor-core kernels take f16 weights (f32 activations: the mixed product).
    let b_dtype = if matches!(kernel, Kernel::Coop | Kernel::Coop64) {
        DType::F16
    } else {
        DType::F32
    };
    let b = filled(gpu, b_dtype, &b_shape)?;
    let t = time(gpu, cfg, (m * n * 4) as u64, &mut |rec| {
        matmul::matmul_with(rec, &a, &b, layout, Epilogue::default(), kernel)
    })
    .await?;
    let gflops = matmul::flops(1, m, n, k) / (t.ms * 1e6);
    let op = if layout == BLayout::NK {
        "linear_kernel"
    } else {
        "matmul_kernel"
    };
    Ok(t.tag(
        json!({"op": op, "dtype": "f32", "b_dtype": b_dtype.name(), "m": m, "n": n, "k": k,
               "ms": t.ms, "gflops": gflops}),
    ))
}

/// BERT-base-like prefill: 12 heads of 64, batch 1.
async fn bench_attention(
    gpu: &Gpu,
    cfg: &BenchConfig,
    dtype: DType,
    seq: usize,
    causal: bool,
    variant: AttentionKernel,
) -> Result<Value> {
    let (heads, d) = (12, 64);
    let q = filled(gpu, dtype, &[1, seq, heads, d])?;
    let k = filled(gpu, dtype, &[1, seq, heads, d])?;
    let v = filled(gpu, dtype, &[1, seq, heads, d])?;
    let out_bytes = q.size_in_bytes();
    let opts = Options {
        causal,
        variant,
        ..Default::default()
    };
    let t = time(gpu, cfg, out_bytes, &mut |rec| {
        attention::attention(rec, &q, &k, &v, opts)
    })
    .await?;
    let ms = t.ms;
    // Causal attention does about half the work; count the work done.
    let flops = attention::flops(1, heads, seq, seq, d) * if causal { 0.5 } else { 1.0 };
    Ok(t.tag(json!({
        "op": "attention", "dtype": dtype.name(), "m": seq, "n": seq, "k": d, "heads": heads,
        "causal": causal, "variant": format!("{variant:?}").to_lowercase(), "ms": ms,
        "gflops": flops / (ms * 1e6),
    })))
}

/// SmolLM2-135M-like decoding step: one query, 9 heads over 3 KV heads of 64, `kv_len` cached.
async fn bench_decode(gpu: &Gpu, cfg: &BenchConfig, dtype: DType, kv_len: usize) -> Result<Value> {
    let (heads, kv_heads, d) = (9, 3, 64);
    let q = filled(gpu, dtype, &[1, 1, heads, d])?;
    let kv_bytes = (2 * kv_len * kv_heads * d * dtype.size_in_bytes()) as u64;
    let copies = copies_for(kv_bytes);
    let caches: Vec<(Tensor, Tensor)> = (0..copies)
        .map(|_| {
            Ok((
                filled(gpu, dtype, &[1, kv_len, kv_heads, d])?,
                filled(gpu, dtype, &[1, kv_len, kv_heads, d])?,
            ))
        })
        .collect::<Result<_>>()?;
    let opts = Options {
        causal: true,
        variant: AttentionKernel::Decode,
        ..Default::default()
    };
    let mut i = 0;
    let t = time(gpu, cfg, q.size_in_bytes(), &mut |rec| {
        i += 1;
        let (k, v) = &caches[i % caches.len()];
        attention::attention(rec, &q, k, v, opts)
    })
    .await?;
    let ms = t.ms;
    Ok(t.tag(json!({
        "op": "decode_attention", "dtype": dtype.name(), "m": 1, "n": kv_len, "k": d, "heads": heads,
        "kv_heads": kv_heads, "ms": ms, "gbps": kv_bytes as f64 / (ms * 1e6),
        "gflops": attention::flops(1, heads, 1, kv_len, d) / (ms * 1e6),
    })))
}

/// Convolution shapes of the image models: (name, [H, W, C_in], [C_out, KH, KW], stride, groups).
type ConvCase = (&'static str, [usize; 3], [usize; 3], usize, usize);
const CONV_CASES: &[ConvCase] = &[
    // EfficientNet-Lite0: the stem, a depthwise 3x3 and a pointwise projection of the first stages.
    ("stem 3x3/2", [224, 224, 3], [32, 3, 3], 2, 1),
    ("depthwise 3x3", [112, 112, 96], [96, 3, 3], 1, 96),
    ("pointwise", [56, 56, 144], [24, 1, 1], 1, 1),
    // RDN (esrgan-slim): the 64-channel 3x3 and the 5x5 of the upsampling network, on a 128² tile.
    ("rdn 3x3", [128, 128, 64], [64, 3, 3], 1, 1),
    ("rdn 5x5", [128, 128, 64], [64, 5, 5], 1, 1),
];

async fn bench_conv(
    gpu: &Gpu,
    cfg: &BenchConfig,
    dtype: DType,
    case: &ConvCase,
    kernel: crate::kernels::conv::Kernel,
) -> Result<Value> {
    use crate::kernels::conv::{Conv2d, ConvEpilogue, Padding, conv2d_with};
    let &(name, [h, w, c_in], [c_out, kh, kw], stride, groups) = case;
    let x = filled(gpu, dtype, &[1, h, w, c_in])?;
    let weight = filled(gpu, dtype, &[c_out, c_in / groups, kh, kw])?;
    let conv = Conv2d {
        stride: [stride, stride],
        padding: Padding::Same,
        groups,
    };
    let (oh, ow) = (h.div_ceil(stride), w.div_ceil(stride));
    let out_bytes = (oh * ow * c_out * dtype.size_in_bytes()) as u64;
    let t = time(gpu, cfg, out_bytes, &mut |rec| {
        conv2d_with(rec, &x, &weight, &conv, ConvEpilogue::default(), kernel)
    })
    .await?;
    let ms = t.ms;
    let flops = crate::kernels::conv::flops(&[1, oh, ow, c_out], weight.shape());
    Ok(t.tag(json!({
        "op": "conv2d", "dtype": dtype.name(), "name": name, "kernel": format!("{kernel:?}").to_lowercase(),
        "m": oh * ow, "n": c_out, "k": c_in / groups * kh * kw,
        "ms": ms, "gflops": flops / (ms * 1e6),
    })))
}

/// Milliseconds per run of `op`: a warm-up (compiles the pipeline), a calibration run, then enough runs
/// for about `cfg.target_ms`, several per submit when each output is small.
/// Operations recorded into one submit by [`time`] and [`gpu_time`]: up to 32, fewer for big outputs.
fn per_submit(out_bytes: u64) -> usize {
    ((64u64 << 20) / out_bytes.max(1)).clamp(1, 32) as usize
}

/// GPU time of one `op` in ms, from timestamps written at the start and end of a compute pass of
/// [`per_submit`] of them: what the GPU spends, launches and the gaps between dispatches included,
/// CPU-side recording and submission left out (which [`time`] counts). `None` where the device has
/// no `TIMESTAMP_QUERY`, and in browsers, which quantize timestamps (Chrome: to 100 µs). Call after
/// [`time`], so that pipelines exist and caches are warm.
async fn gpu_time(
    gpu: &Gpu,
    out_bytes: u64,
    op: &mut dyn FnMut(&mut Recorder) -> Result<Tensor>,
) -> Result<Option<f64>> {
    if !gpu
        .device()
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY)
    {
        return Ok(None);
    }
    let n = per_submit(out_bytes);
    let device = gpu.device();
    let query_set = device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("bench timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count: 2,
    });
    let buffer = |usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bench timestamps"),
            size: 16,
            usage,
            mapped_at_creation: false,
        })
    };
    let resolved = buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC);
    let read = buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
    let mut rec = gpu.recorder();
    rec.time_pass(&query_set);
    for _ in 0..n {
        op(&mut rec)?;
    }
    rec.resolve_timestamps(&resolved, &read);
    rec.submit();
    let ticks = crate::profile::read_ticks(gpu, &read, 2).await?;
    let ns =
        ticks[1].saturating_sub(ticks[0]) as f64 * f64::from(gpu.queue().get_timestamp_period());
    Ok(Some(ns / 1e6 / n as f64))
}

/// Wall-clock time of one `op` (CPU recording, submission and GPU work, as a caller sees it) and,
/// where the device has timestamps, its GPU time ([`gpu_time`]).
struct Timing {
    ms: f64,
    gpu_ms: Option<f64>,
}

impl Timing {
    /// `v` with `"gpu_ms"` added where measured.
    fn tag(&self, mut v: Value) -> Value {
        if let Some(g) = self.gpu_ms {
            v["gpu_ms"] = json!(g);
        }
        v
    }
}

async fn time(
    gpu: &Gpu,
    cfg: &BenchConfig,
    out_bytes: u64,
    op: &mut dyn FnMut(&mut Recorder) -> Result<Tensor>,
) -> Result<Timing> {
    let per_submit = per_submit(out_bytes);
    let run =
        async |n: usize, op: &mut dyn FnMut(&mut Recorder) -> Result<Tensor>| -> Result<f64> {
            let start = now_ms();
            let mut left = n;
            while left > 0 {
                let mut rec = gpu.recorder();
                for _ in 0..left.min(per_submit) {
                    op(&mut rec)?;
                }
                left -= left.min(per_submit);
                rec.submit();
            }
            gpu.sync().await?;
            Ok(now_ms() - start)
        };
    run(1, op).await?;
    let once = run(per_submit.min(4), op).await? / per_submit.min(4) as f64;
    let iters = ((cfg.target_ms / once.max(1e-3)) as usize).clamp(3, 2000);
    let ms = run(iters, op).await? / iters as f64;
    let gpu_ms = gpu_time(gpu, out_bytes, op).await?;
    Ok(Timing { ms, gpu_ms })
}
