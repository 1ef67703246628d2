//! The split decode (attention over a long KV cache for few query rows): one workgroup a (row,
//! head, key range), then a pass that merges the ranges' partial softmax states.

use super::{Params, SPLIT_KEYS, decode_constants, decode_shader, slot, split_size};
use crate::error::Result;
use crate::gpu::KernelSource;
use crate::kernels::to_u32;
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

/// The partial softmax states of a split decode of one query row (batch 1), before they are merged:
/// for each head and range of keys `[m, l, o_0 .. o_{head_dim-1}]` (f32: the running maximum, the
/// normaliser and the unnormalised output), for a kernel that merges them as it reads them
/// ([`crate::kernels::quant::gemv_merged`], the out-projection). [`super::decode_partials`] makes them.
pub struct Partials {
    pub(crate) part: Tensor,
    pub heads: usize,
    pub head_dim: usize,
    /// Ranges of keys a head.
    pub splits: usize,
    /// The type the merged output is rounded to (the query's, as [`super::attention`] returns it).
    pub dtype: DType,
}

/// The split decode: `decode_split` over (row × key range, head, batch) into a scratch tensor of
/// partial softmax states, then `decode_combine` over (row, head, batch).
pub(super) fn split_decode(
    rec: &mut Recorder,
    [q, k, v, mask, out]: [&Tensor; 5],
    params: &Params,
    dtype: DType,
) -> Result<()> {
    let part = split_pass(rec, [q, k, v, mask], params, dtype)?;
    let gpu = rec.gpu().clone();
    let (name, body) = decode_shader(&gpu);
    let pipeline = gpu.pipeline(&KernelSource {
        name,
        body,
        dtype,
        entry: "decode_combine",
        constants: &[],
    });
    let combine_bindings = [(slot::OUT, out.buffer()), (slot::PART, part.buffer())];
    let groups = [params.q_len, params.n_heads, params.batch];
    rec.dispatch_at(&pipeline, &combine_bindings, slot::PARAMS, params, groups);
    Ok(())
}

/// `decode_split` alone: the partial softmax states of every (batch, row, head, key range).
pub(super) fn split_pass(
    rec: &mut Recorder,
    [q, k, v, mask]: [&Tensor; 4],
    params: &Params,
    dtype: DType,
) -> Result<Tensor> {
    const OP: &str = "attention";
    let gpu = rec.gpu().clone();
    let (batch, q_len, n_heads, n_splits) = (
        params.batch as usize,
        params.q_len as usize,
        params.n_heads as usize,
        params.n_splits as usize,
    );
    let part_len = batch * q_len * n_heads * n_splits * (params.head_dim as usize + 2);
    let part = Tensor::empty(&gpu, &[part_len], DType::F32)?;
    let rows_x = to_u32(OP, "rows × key ranges", q_len * n_splits)?;
    for (what, n) in [
        ("attention rows × key ranges", rows_x),
        ("attention heads", params.n_heads),
        ("attention batch", params.batch),
    ] {
        gpu.check_workgroups(what, n)?;
    }
    let mut hd = decode_constants(params.head_dim);
    if split_size() != SPLIT_KEYS {
        hd.push(("SPLIT_KEYS", split_size() as f64));
    }
    let (name, body) = decode_shader(&gpu);
    let pipeline = gpu.pipeline(&KernelSource {
        name,
        body,
        dtype,
        entry: "decode_split",
        constants: &hd,
    });
    let split_bindings = [
        (slot::Q, q),
        (slot::K, k),
        (slot::V, v),
        (slot::MASK, mask),
        (slot::PART, &part),
    ];
    let groups = [rows_x, params.n_heads, params.batch];
    rec.dispatch_views(&pipeline, &split_bindings, slot::PARAMS, params, groups);
    Ok(part)
}
