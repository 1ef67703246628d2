//! Split K: a product with too few workgroup tiles to fill the GPU and a long K runs as several
//! products over parts of K (`Kernel::Tiled16`, `Tiled64` and `Coop64`; f32 results), into partial
//! sums that `splitk_reduce` adds up (with the epilogue).
//!
//! In a forward pass each product waits for the one before, so what a small product costs is how
//! long its workgroups run, not its throughput: on an H100 (`bench_kernels --ops bert_chain`,
//! `bench-results/h100-bert-chains-2026-12-07.jsonl`) MiniLM's 128 × 384 × 1 536 product on 12
//! tensor-core tiles of 64 steps K 24 times, ~2.5 µs a step, and the GPU's other 120 SMs wait.

use super::{Params, SHADER, slot};
use crate::error::Result;
use crate::kernels::activation::Activation;
use crate::kernels::to_u32;
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

/// Split a product's K until it runs on about this many workgroups, when it has at most half as many
/// tiles (an H100 has 132 SMs). Natively `WEBGPU_INFER_SPLIT_K=N` sets it (0: never split), for A/B
/// runs. On an H100 (2026-12-07, `bench_kernels --ops bert_chain` and `embed --bench` with 192 and
/// 0; `bench-results/h100-bert-chains-split-k-2026-12-07.jsonl`, `h100-minilm-split-k-ab-2026-12-07.jsonl`)
/// splitting products of 12–48 tiles paid (a 128-row MiniLM layer's feed-forward pair on 64×64
/// tensor-core tiles 68.6 → 36.1 µs, on `Tiled64` 179 → 71), but 96 tiles split in two, or 128×128
/// tensor-core tiles split at all, ran slower (MiniLM 8 × 128 2.0 → 2.6 ms, 32 × 128 3.9 → 4.4): the
/// GPU was already busy. So: 96, and `Kernel::Coop` never splits.
const TARGET_WORKGROUPS: usize = 96;

/// The operation errors name.
const OP: &str = "matmul (split K)";

/// Each part runs at least this many K steps (fewer would leave mostly the reduction's cost).
const MIN_STEPS: usize = 3;

/// At most this many parts (the partial sums are `parts` outputs' worth of memory).
const MAX_PARTS: usize = 16;

/// How to split K for a product of `tiles` workgroups with K step `step`: `(parts, chunk)`, each
/// part `chunk` elements of K (a multiple of `step`), the last one shorter; `(1, k)` for no split.
pub(super) fn plan(tiles: usize, k: usize, step: usize) -> (usize, usize) {
    static TARGET: crate::kernels::Tuned = crate::kernels::Tuned::new("WEBGPU_INFER_SPLIT_K");
    let target = TARGET.get().unwrap_or(TARGET_WORKGROUPS);
    let steps = k.div_ceil(step.max(1));
    if tiles == 0 || 2 * tiles > target || steps < 2 * MIN_STEPS {
        return (1, k);
    }
    let parts = target.div_ceil(tiles).min(steps / MIN_STEPS).min(MAX_PARTS);
    if parts < 2 {
        return (1, k);
    }
    let chunk = steps.div_ceil(parts) * step;
    (k.div_ceil(chunk), chunk)
}

/// The partial sums' buffer, `[batch · parts, M, N]` f32, and the product's `params` for writing
/// them: no epilogue (the reduction applies it), K split in `parts` of `chunk`.
pub(super) fn partial(
    gpu: &crate::Gpu,
    dims: &super::Dims,
    params: &Params,
    parts: usize,
    chunk: usize,
) -> Result<(Tensor, Params)> {
    let partial = Tensor::empty(gpu, &[dims.batch * parts, dims.m, dims.n], DType::F32)?;
    let params = Params {
        c_offset: partial.offset_elements(),
        has_bias: 0,
        has_res: 0,
        bias_stride: 0,
        k_split: to_u32(OP, "parts", parts)?,
        k_chunk: to_u32(OP, "K", chunk)?,
        ..*params
    };
    Ok((partial, params))
}

/// `c = act(Σ partial's parts + bias) + residual`: `partial` is `[batch · parts, M, N]` (f32), `c`
/// `[batch, M, N]`; `epilogue` holds the product's bias, residual and their strides (from its
/// `Params`), `act` its activation.
pub(super) fn reduce(
    rec: &mut Recorder,
    partial: &Tensor,
    c: &Tensor,
    epilogue: &Params,
    parts: usize,
    act: Option<Activation>,
    [bias, res]: [&Tensor; 2],
) -> Result<()> {
    let gpu = rec.gpu().clone();
    let batch = partial.shape()[0] / parts.max(1);
    let params = Params {
        k: to_u32(OP, "batch", batch)?,
        a_batch_stride: 0,
        b_batch_stride: 0,
        a_offset: partial.offset_elements(),
        b_offset: 0,
        c_offset: c.offset_elements(),
        k_split: to_u32(OP, "parts", parts)?,
        k_chunk: 0,
        ..*epilogue
    };
    let groups = c.numel().div_ceil(256);
    let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
    let (x, y) = (groups.min(max), groups.div_ceil(max));
    gpu.check_workgroups("split-K reduction rows", to_u32(OP, "rows", y)?)?;
    let pipeline = gpu.pipeline(&crate::gpu::KernelSource {
        name: "matmul",
        body: SHADER,
        dtype: DType::F32,
        entry: "splitk_reduce",
        constants: &[("ACT", f64::from(Activation::code(act)))],
    });
    let bindings = [
        (slot::A, partial.buffer()),
        (slot::BIAS, bias.buffer()),
        (slot::C, c.buffer()),
        (slot::RES, res.buffer()),
    ];
    rec.dispatch_at(
        &pipeline,
        &bindings,
        slot::PARAMS,
        &params,
        [to_u32(OP, "columns", x)?, to_u32(OP, "rows", y)?, 1],
    );
    Ok(())
}
