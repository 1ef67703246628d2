//! Element-wise `add`, `mul` and the gated activations (`shaders/elementwise.wgsl`), with `b` repeated
//! over `a`'s leading axes; `scale` and `softcap` of one tensor by a constant.

use crate::error::{Error, Result};
use crate::kernels::{check_dtypes, grid_1d, to_u32};
use crate::recorder::Recorder;
use crate::tensor::Tensor;

const SHADER: &str = include_str!("../../shaders/elementwise.wgsl");
const WORKGROUP: u32 = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    b_len: u32,
    a_offset: u32,
    b_offset: u32,
    out_offset: u32,
    scalar: f32,
    _pad: [u32; 2],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add = 0,
    Mul = 1,
    SiluMul = 2,
    Copy = 3,
    GeluTanhMul = 4,
    Scale = 5,
    Softcap = 6,
}

/// `a + b`. `b` has `a`'s shape or a suffix of it (leading 1s allowed), and repeats over the rest:
/// a `[N]` bias added to each row of `[M, N]`.
///
/// ```no_run
/// # async fn demo(gpu: &webgpu_infer::Gpu) -> webgpu_infer::Result<()> {
/// use webgpu_infer::{Tensor, kernels::elementwise::add};
/// let x = Tensor::from_f32(gpu, &[1.0, 2.0, 3.0, 4.0], &[2, 2])?;
/// let bias = Tensor::from_f32(gpu, &[10.0, 20.0], &[2])?;
/// let mut rec = gpu.recorder();
/// let y = add(&mut rec, &x, &bias)?;
/// rec.submit();
/// assert_eq!(y.to_f32_vec().await?, vec![11.0, 22.0, 13.0, 24.0]);
/// # Ok(()) }
/// ```
pub fn add(rec: &mut Recorder, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(rec, Op::Add, a, b)
}

/// `a * b`, element by element, with `b` broadcast as in [`add`].
pub fn mul(rec: &mut Recorder, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(rec, Op::Mul, a, b)
}

/// SwiGLU's product `silu(gate) * up`, element by element (same shapes, or `up` broadcast as in
/// [`add`]).
pub fn silu_mul(rec: &mut Recorder, gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    binary(rec, Op::SiluMul, gate, up)
}

/// GeGLU's product `gelu_tanh(gate) * up` (transformers' `gelu_pytorch_tanh`, Gemma's MLP), shapes
/// as in [`silu_mul`].
pub fn gelu_tanh_mul(rec: &mut Recorder, gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    binary(rec, Op::GeluTanhMul, gate, up)
}

/// `x · c` (Gemma's embedding scale √hidden).
pub fn scale(rec: &mut Recorder, x: &Tensor, c: f32) -> Result<Tensor> {
    unary(rec, Op::Scale, x, c)
}

/// `cap · tanh(x / cap)` (Gemma 2's `final_logit_softcapping`); `cap` finite and > 0.
pub fn softcap(rec: &mut Recorder, x: &Tensor, cap: f32) -> Result<Tensor> {
    if !(cap.is_finite() && cap > 0.0) {
        return Err(Error::shape(
            "softcap",
            format!("the cap must be finite and > 0, got {cap}"),
        ));
    }
    unary(rec, Op::Softcap, x, cap)
}

fn unary(rec: &mut Recorder, op: Op, x: &Tensor, c: f32) -> Result<Tensor> {
    binary_into_with(rec, op, x, x, None, c)
}

/// Copies `src` into `dst`, a tensor (typically a view: [`Tensor::narrow`]) of the same shape and type:
/// how new keys and values land in a KV cache.
pub fn copy_into(rec: &mut Recorder, src: &Tensor, dst: &Tensor) -> Result<()> {
    if dst.shape() != src.shape() || dst.dtype() != src.dtype() {
        return Err(Error::shape(
            "copy_into",
            format!(
                "dst {:?} {:?} must match src {:?} {:?}",
                dst.shape(),
                dst.dtype(),
                src.shape(),
                src.dtype()
            ),
        ));
    }
    binary_into(rec, Op::Copy, src, src, Some(dst)).map(drop)
}

fn binary(rec: &mut Recorder, op: Op, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary_into(rec, op, a, b, None)
}

fn binary_into(
    rec: &mut Recorder,
    op: Op,
    a: &Tensor,
    b: &Tensor,
    out: Option<&Tensor>,
) -> Result<Tensor> {
    binary_into_with(rec, op, a, b, out, 0.0)
}

fn binary_into_with(
    rec: &mut Recorder,
    op: Op,
    a: &Tensor,
    b: &Tensor,
    out: Option<&Tensor>,
    scalar: f32,
) -> Result<Tensor> {
    let name = match op {
        Op::Add => "add",
        Op::Mul => "mul",
        Op::SiluMul => "silu_mul",
        Op::Copy => "copy_into",
        Op::GeluTanhMul => "gelu_tanh_mul",
        Op::Scale => "scale",
        Op::Softcap => "softcap",
    };
    let gpu = rec.gpu().clone();
    let dtype = check_dtypes(name, &gpu, &[a, b])?;
    check_suffix(name, a.shape(), b.shape())?;
    let out = match out {
        Some(o) => o.clone(),
        None => Tensor::empty(&gpu, a.shape(), dtype)?,
    };
    if out.numel() == 0 {
        return Ok(out);
    }
    let len = to_u32(name, "elements", a.numel())?;
    let params = Params {
        len,
        b_len: to_u32(name, "elements of b", b.numel())?,
        a_offset: a.offset_elements(),
        b_offset: b.offset_elements(),
        out_offset: out.offset_elements(),
        scalar,
        _pad: [0; 2],
    };
    let grid = grid_1d(&gpu, name, len.div_ceil(WORKGROUP))?;
    let pipeline = gpu.pipeline(&crate::gpu::KernelSource {
        name: "elementwise",
        body: SHADER,
        dtype,
        entry: "main",
        constants: &[("OP", f64::from(op as u8))],
    });
    rec.dispatch(
        &pipeline,
        &[a.buffer(), b.buffer(), out.buffer()],
        &params,
        grid,
    );
    Ok(out)
}

/// `b`, without its leading 1s, must equal the trailing axes of `a` (and b must not be empty).
fn check_suffix(op: &'static str, a: &[usize], b: &[usize]) -> Result<()> {
    let lead = b.iter().take_while(|&&d| d == 1).count();
    let core = &b[lead..];
    let fits = core.len() <= a.len() && a[a.len() - core.len()..] == *core;
    if !fits || b.contains(&0) && !a.contains(&0) {
        return Err(Error::shape(
            op,
            format!("b {b:?} does not broadcast to a {a:?}: b must equal a's trailing axes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_suffix;

    #[test]
    fn suffix_broadcasting() {
        assert!(check_suffix("add", &[4, 3, 5], &[4, 3, 5]).is_ok());
        assert!(check_suffix("add", &[4, 3, 5], &[3, 5]).is_ok());
        assert!(check_suffix("add", &[4, 3, 5], &[1, 1, 5]).is_ok());
        assert!(check_suffix("add", &[4, 3, 5], &[1]).is_ok());
        assert!(check_suffix("add", &[4, 3, 5], &[4, 1, 5]).is_err());
        assert!(check_suffix("add", &[4, 3, 5], &[3]).is_err());
        assert!(check_suffix("add", &[3, 5], &[2, 3, 5]).is_err());
    }
}
