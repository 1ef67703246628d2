//! The attention's out-projection over a split decode's partial states (`gemv_merged` in
//! shaders/quant.wgsl): the ranges' merge happens in each GEMV workgroup, so a decoding layer's
//! attention costs one dispatch whatever the cache's length.

use super::{GEMV_ROWS, Params, qtype_constant, shader, slot, tuned};
use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::attention::Partials;
use crate::kernels::{check_dtypes, to_u32};
use crate::qtensor::QTensor;
use crate::recorder::Recorder;
use crate::tensor::Tensor;

/// The (head, range of keys) pairs the merge holds (`WS_LEN` in the shader).
const MERGE_WEIGHTS: usize = 1024;

/// Workgroup memory of the merged GEMV for `k` inputs: the merged row (counted as f32; f16 halves
/// it), each pair's two values and the row sums' 256 floats.
fn workgroup_bytes(k: usize) -> u64 {
    4 * (k + 2 * MERGE_WEIGHTS + 256) as u64
}

/// Whether [`gemv_merged`] fits this device for `heads` × `head_dim` inputs and `ranges` ranges of
/// keys a head: the merged row and the ranges' weights are held in workgroup memory (WebGPU's
/// minimum of 16 KiB takes up to 1 792 inputs; 9 heads, SmolLM2's, take 113 ranges: 7 232 keys).
pub fn gemv_merged_fits(gpu: &crate::Gpu, heads: usize, head_dim: usize, ranges: usize) -> bool {
    heads * ranges <= MERGE_WEIGHTS
        && workgroup_bytes(heads * head_dim)
            <= u64::from(gpu.limits().max_compute_workgroup_storage_size)
}

/// `merge(parts) · Wᵀ (+ residual)` for a quantized `W [n, heads × head_dim]`: the split decode's
/// output ([`crate::kernels::attention::decode_partials`]), merged as `attention` merges it (the same
/// values), projected in the same kernel. Returns `[1, n]` in the attention's type.
pub fn gemv_merged(
    rec: &mut Recorder,
    parts: &Partials,
    w: &QTensor,
    residual: Option<&Tensor>,
) -> Result<Tensor> {
    const OP: &str = "quant::gemv_merged";
    let gpu = rec.gpu().clone();
    let k = parts.heads * parts.head_dim;
    let &[n, wk] = w.shape() else {
        return Err(Error::shape(
            OP,
            format!("the weight must be [n, k], got {:?}", w.shape()),
        ));
    };
    if wk != k {
        return Err(Error::shape(
            OP,
            format!(
                "the weight's {wk} inputs must be the attention's {} heads × {} = {k}",
                parts.heads, parts.head_dim
            ),
        ));
    }
    if let Some(r) = residual {
        check_dtypes(OP, &gpu, &[r])?;
        if r.dtype() != parts.dtype || r.numel() != n {
            return Err(Error::shape(
                OP,
                format!(
                    "residual {:?} {:?} must hold [1, {n}] {:?}",
                    r.shape(),
                    r.dtype(),
                    parts.dtype
                ),
            ));
        }
    }
    if parts.heads * parts.splits > MERGE_WEIGHTS {
        return Err(Error::shape(
            OP,
            format!(
                "{} heads × {} ranges of keys must be ≤ {MERGE_WEIGHTS}: use the attention's own merge",
                parts.heads, parts.splits
            ),
        ));
    }
    if !gemv_merged_fits(&gpu, parts.heads, parts.head_dim, parts.splits) {
        return Err(Error::LimitExceeded {
            what: format!("the merged GEMV's workgroup memory for {k} inputs"),
            value: workgroup_bytes(k),
            limit_name: "maxComputeWorkgroupStorageSize",
            limit: u64::from(gpu.limits().max_compute_workgroup_storage_size),
        });
    }
    let out = Tensor::empty(&gpu, &[1, n], parts.dtype)?;
    if n == 0 {
        return Ok(out);
    }
    let groups = to_u32(OP, "row groups", n.div_ceil(GEMV_ROWS))?;
    gpu.check_workgroups("quant::gemv_merged output groups", groups)?;
    let params = Params {
        m: 1,
        n: to_u32(OP, "n", n)?,
        k: to_u32(OP, "k", k)?,
        out_offset: out.offset_elements(),
        res_offset: residual.map_or(0, Tensor::offset_elements),
        head_dim: to_u32(OP, "head_dim", parts.head_dim)?,
        splits: to_u32(OP, "key ranges", parts.splits)?,
        ..Params::default()
    };
    let (name, body) = shader(&gpu);
    let pipeline = gpu.pipeline(&KernelSource {
        name,
        body,
        dtype: parts.dtype,
        entry: "gemv_merged",
        constants: &tuned(vec![
            ("QTYPE", qtype_constant(w.qtype())),
            ("HAS_RESIDUAL", f64::from(u8::from(residual.is_some()))),
            ("MERGED", 1.0),
            ("XS_LEN", k as f64),
        ]),
    });
    // x is never read with MERGED (the partial states stand in for its binding); without a
    // residual, the partial states stand in for it too.
    let bindings = [
        (slot::W, w.buffer()),
        (slot::X, parts.part.buffer()),
        (slot::OUT, out.buffer()),
        (
            slot::RESIDUAL,
            residual.map_or(parts.part.buffer(), Tensor::buffer),
        ),
        (slot::PART, parts.part.buffer()),
    ];
    rec.dispatch_at(&pipeline, &bindings, slot::PARAMS, &params, [groups, 1, 1]);
    Ok(out)
}
