//! The quantized kernels' input checks (shapes, types, buffers), apart from the dispatching code.

use super::{GEMV_ROWS, Norm, Rope};
use crate::error::{Error, Result};
use crate::qtensor::QTensor;
use crate::tensor::Tensor;

/// [`gemv_qkv`]'s inputs checked: one row of x, k and v of one shape, q and k of one type, row counts
/// multiples of 8, outputs of `nkv` values in their own buffers, RoPE's head size and factors, the
/// folded norm. Returns (nq, nkv, k).
pub(super) fn check_qkv(
    op: &'static str,
    x: &Tensor,
    [wq, wk, wv]: [&QTensor; 3],
    [k_out, v_out]: [&Tensor; 2],
    rope: Option<Rope<'_>>,
    norm: Option<Norm<'_>>,
) -> Result<(usize, usize, usize)> {
    let (m, nq, k) = gemv_dims(op, x, wq)?;
    let (_, nkv, _) = gemv_dims(op, x, wk)?;
    if m != 1 {
        return Err(Error::shape(
            op,
            format!("x must be one row, got {:?}", x.shape()),
        ));
    }
    if wv.shape() != wk.shape() || wk.qtype() != wq.qtype() {
        return Err(Error::shape(
            op,
            format!(
                "k {:?} and v {:?} must have one shape, and q ({:?}) and k ({:?}) one type",
                wk.shape(),
                wv.shape(),
                wq.qtype(),
                wk.qtype()
            ),
        ));
    }
    if nq % GEMV_ROWS != 0 || nkv % GEMV_ROWS != 0 {
        return Err(Error::shape(
            op,
            format!("q's {nq} and k's {nkv} rows must be multiples of {GEMV_ROWS}"),
        ));
    }
    if k_out.numel() != nkv || v_out.numel() != nkv {
        return Err(Error::shape(
            op,
            format!(
                "k_out {:?} and v_out {:?} must hold {nkv} values",
                k_out.shape(),
                v_out.shape()
            ),
        ));
    }
    let same = |a: &Tensor, b: &Tensor| std::sync::Arc::ptr_eq(a.buffer(), b.buffer());
    if same(k_out, v_out) || same(x, k_out) || same(x, v_out) {
        return Err(Error::shape(
            op,
            "x, k_out and v_out must be three buffers (WebGPU binds a written buffer once)",
        ));
    }
    if let Some(r) = rope {
        if r.head_dim == 0 || r.head_dim % 2 != 0 || nq % r.head_dim != 0 || nkv % r.head_dim != 0 {
            return Err(Error::shape(
                op,
                format!(
                    "RoPE's head size {} must be even and divide {nq} and {nkv}",
                    r.head_dim
                ),
            ));
        }
        crate::kernels::rope::check_factors(op, r.factors, r.head_dim)?;
    }
    check_norm(op, norm, x, m, k)?;
    Ok((nq, nkv, k))
}

pub(super) fn check_norm(
    op: &'static str,
    norm: Option<Norm<'_>>,
    x: &Tensor,
    m: usize,
    k: usize,
) -> Result<()> {
    let Some(n) = norm else { return Ok(()) };
    if m != 1 || n.weight.shape() != [k] || n.weight.dtype() != x.dtype() {
        return Err(Error::shape(
            op,
            format!(
                "a folded norm needs one row of x and a [{k}] {:?} weight, got x {:?} and {:?} {:?}",
                x.dtype(),
                x.shape(),
                n.weight.shape(),
                n.weight.dtype()
            ),
        ));
    }
    Ok(())
}

/// The weight as `[n, k]`, checked against `x [.., k]`; returns (rows of x, n, k).
pub(super) fn gemv_dims(
    op: &'static str,
    x: &Tensor,
    w: &QTensor,
) -> Result<(usize, usize, usize)> {
    let &[n, k] = w.shape() else {
        return Err(Error::shape(
            op,
            format!("the weight must be [out, in], got {:?}", w.shape()),
        ));
    };
    let Some((&xk, lead)) = x.shape().split_last() else {
        return Err(Error::shape(op, "x must have an input axis"));
    };
    if xk != k {
        return Err(Error::shape(
            op,
            format!(
                "x {:?} has {xk} inputs, the weight [{n}, {k}] takes {k}",
                x.shape()
            ),
        ));
    }
    Ok((lead.iter().product(), n, k))
}
