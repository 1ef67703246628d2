//! A decoder's final RMSNorm folded into its LM head (`gemv_norm` in shaders/quant_norm.wgsl): one
//! dispatch a token fewer.

use super::checks::{check_norm, gemv_dims};
use super::{GEMV_ROWS, Norm, Params, qtype_constant, shader, slot, tuned, wide};
use crate::error::{Error, Result};
use crate::gpu::KernelSource;
use crate::kernels::{check_dtypes, to_u32};
use crate::qtensor::QTensor;
use crate::recorder::Recorder;
use crate::tensor::{DType, Tensor};

/// `norm(x) · Wᵀ` for one row `x [1, k]` and a quantized `W [n, k]`, the RMSNorm folded in
/// ([`Norm`]): `[1, n]` in `x`'s type, the same values as `rms_norm` then [`super::gemv`] up to
/// rounding (the norm's scale is applied to each output, not to each input). The cooperative (GPU)
/// kernel only: on CPU adapters ([`crate::Capabilities::cpu_kernels`]) compose the two.
pub fn gemv_norm(rec: &mut Recorder, x: &Tensor, w: &QTensor, norm: Norm<'_>) -> Result<Tensor> {
    Ok(norm_gemv(rec, x, w, norm, false)?.0)
}

/// [`gemv_norm`] that also writes, for each workgroup of 8 outputs, its largest output as stored
/// and the first of them holding it: i32 `[⌈n / 8⌉, 2]` (f32 bits, index; -1: none), in index
/// order, from which [`crate::kernels::sample::argmax_parts`] picks the outputs' argmax reading an
/// eighth of them. Returns (outputs, pairs).
pub fn gemv_norm_argmax(
    rec: &mut Recorder,
    x: &Tensor,
    w: &QTensor,
    norm: Norm<'_>,
) -> Result<(Tensor, Tensor)> {
    let (out, parts) = norm_gemv(rec, x, w, norm, true)?;
    let parts = parts.ok_or_else(|| Error::shape("quant::gemv_norm", "no outputs to pick from"))?;
    Ok((out, parts))
}

fn norm_gemv(
    rec: &mut Recorder,
    x: &Tensor,
    w: &QTensor,
    norm: Norm<'_>,
    argmax: bool,
) -> Result<(Tensor, Option<Tensor>)> {
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
        return Ok((out, None));
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
        entry: if argmax {
            "gemv_norm_argmax"
        } else {
            "gemv_norm"
        },
        constants: &wide(
            n,
            tuned(vec![("QTYPE", qtype_constant(w.qtype())), ("NORM", 1.0)]),
        ),
    });
    let mut bindings = vec![
        (slot::W, w.buffer()),
        (slot::X, x.buffer()),
        (slot::OUT, out.buffer()),
        (slot::NORM_W, norm.weight.buffer()),
    ];
    let parts = match argmax {
        true => Some(Tensor::empty(&gpu, &[groups as usize, 2], DType::I32)?),
        false => None,
    };
    if let Some(parts) = &parts {
        bindings.push((slot::PARTS, parts.buffer()));
    }
    rec.dispatch_at(&pipeline, &bindings, slot::PARAMS, &params, [groups, 1, 1]);
    Ok((out, parts))
}
