//! A decoder's final RMSNorm folded into its LM head (`gemv_norm` in shaders/quant_norm.wgsl): one
//! dispatch a token fewer.

use super::checks::{check_norm, gemv_dims};
use super::{GEMV_ROWS, Norm, Params, qtype_constant, shader, slot, tuned, wide};
use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::{check_dtypes, to_u32};
use crate::qtensor::QTensor;
use crate::recorder::Recorder;
use crate::tensor::Tensor;

/// `norm(x) · Wᵀ` for one row `x [1, k]` and a quantized `W [n, k]`, the RMSNorm folded in
/// ([`Norm`]): `[1, n]` in `x`'s type, the same values as `rms_norm` then [`super::gemv`] up to
/// rounding (the norm's scale is applied to each output, not to each input). The cooperative (GPU)
/// kernel only: on CPU adapters ([`crate::Capabilities::cpu_kernels`]) compose the two.
pub fn gemv_norm(rec: &mut Recorder, x: &Tensor, w: &QTensor, norm: Norm<'_>) -> Result<Tensor> {
    const OP: &str = "quant::gemv_norm";
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(OP, &gpu, &[x, norm.weight])?;
    let (m, n, k) = gemv_dims(OP, x, w)?;
    if m != 1 {
        return Err(Error::shape(
            OP,
            format!("x {:?} must be one row", x.shape()),
        ));
    }
    check_norm(OP, Some(norm), x, m, k)?;
    let out = Tensor::empty(&gpu, &[1, n], dtype)?;
    if n == 0 {
        return Ok(out);
    }
    let groups = to_u32(OP, "row groups", n.div_ceil(GEMV_ROWS))?;
    gpu.check_workgroups("quant::gemv_norm output groups", groups)?;
    let params = Params {
        m: 1,
        n: to_u32(OP, "n", n)?,
        k: to_u32(OP, "k", k)?,
        x_offset: x.offset_elements(),
        out_offset: out.offset_elements(),
        eps: norm.eps,
        norm_offset: norm.weight.offset_elements(),
        ..Params::default()
    };
    let (name, body) = shader(&gpu);
    let pipeline = gpu.pipeline(&KernelSource {
        name,
        body,
        dtype,
        entry: "gemv_norm",
        constants: &wide(n, tuned(vec![("QTYPE", qtype_constant(w.qtype()))])),
    });
    let bindings = [
        (slot::W, w.buffer()),
        (slot::X, x.buffer()),
        (slot::OUT, out.buffer()),
        (slot::NORM_W, norm.weight.buffer()),
    ];
    rec.dispatch_at(&pipeline, &bindings, slot::PARAMS, &params, [groups, 1, 1]);
    Ok(out)
}
