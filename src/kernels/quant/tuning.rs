//! The quantized GEMVs' pipeline constants that native runs may set by environment variables, for
//! A/B runs on GPUs (browsers read no environment: there the shaders' defaults hold).

/// Natively, `WEBGPU_INFER_GEMV_UNROLL=N` (1..=16) sets the GEMVs' quads in flight a lane (`UNROLL`,
/// default 4), for A/B runs on GPUs.
static GEMV_UNROLL: crate::kernels::Tuned = crate::kernels::Tuned::new("WEBGPU_INFER_GEMV_UNROLL");

/// Natively, `WEBGPU_INFER_GEMV_WIDE_UNROLL=N` (1..=16) sets `UNROLL` for the plain GEMVs of at
/// least [`WIDE_ROWS`] rows only (a model's LM head: many waves of workgroups), for A/B runs on GPUs.
static GEMV_WIDE_UNROLL: crate::kernels::Tuned =
    crate::kernels::Tuned::new("WEBGPU_INFER_GEMV_WIDE_UNROLL");

/// Rows from which a GEMV is "wide" for [`GEMV_WIDE_UNROLL`].
const WIDE_ROWS: usize = 8192;

/// A quant.wgsl pipeline's constants with the tuning a run asked for.
pub(super) fn tuned(mut constants: Vec<(&'static str, f64)>) -> Vec<(&'static str, f64)> {
    if let Some(u) = GEMV_UNROLL.get().filter(|u| (1..=16).contains(u)) {
        constants.push(("UNROLL", u as f64));
    }
    constants
}

/// `constants` with [`GEMV_WIDE_UNROLL`]'s `UNROLL` where the GEMV has `n` ≥ [`WIDE_ROWS`] rows.
pub(super) fn wide(n: usize, mut constants: Vec<(&'static str, f64)>) -> Vec<(&'static str, f64)> {
    if n >= WIDE_ROWS
        && let Some(u) = GEMV_WIDE_UNROLL.get().filter(|u| (1..=16).contains(u))
    {
        constants.retain(|c| c.0 != "UNROLL");
        constants.push(("UNROLL", u as f64));
    }
    constants
}
