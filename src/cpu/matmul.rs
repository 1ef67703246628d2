//! Matrix products on the CPU, split into tiles over threads (`cpu::par`); bias and activation are
//! applied to each tile while it is still in cache. Products `x·wᵀ` go through `cpu::dot` in WASM
//! (SIMD128) and matrixmultiply's packed sgemm natively (AVX/FMA picked at run time); other
//! strided products (attention's weights·v) through matrixmultiply on both.

use crate::cpu::HostTensor;
pub(crate) use crate::cpu::dot::Ld;
use crate::cpu::math::activate;
use crate::error::{Error, Result};
use crate::kernels::activation::Activation;

/// Products `x·wᵀ` go through `cpu::dot` in WASM (SIMD128), matrixmultiply's AVX kernels natively.
/// Both are built optimized in debug builds too (Cargo.toml), so the browser tests run the kernel
/// the package ships.
const DOT_KERNEL: bool = cfg!(all(target_arch = "wasm32", target_feature = "simd128"));

/// A pointer tasks write disjoint parts of (tiles of one output).
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub(crate) *mut f32);
// SAFETY: every task given a `SharedOut` writes elements no other task reads or writes.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The pointer (a method, so that closures capture the whole `SharedOut`, which is `Send`).
    pub(crate) fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// Strides of a row-major matrix view: element (i, j) is at `i·row + j·col`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Strides {
    pub row: usize,
    pub col: usize,
}

impl Strides {
    pub(crate) fn rows(row: usize) -> Strides {
        Strides { row, col: 1 }
    }
}

/// `c = alpha·a·b + beta·c` for `a` m×k, `b` k×n and `c` m×n given by pointers and strides.
///
/// # Safety
/// Every element the strides address must be inside its allocation, and `c` must not overlap `a`
/// or `b` nor be written by another thread meanwhile.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm(
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    a: (*const f32, Strides),
    b: (*const f32, Strides),
    beta: f32,
    c: (*mut f32, Strides),
) {
    let s = |x: usize| x as isize;
    // SAFETY: the caller's contract.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.0,
            s(a.1.row),
            s(a.1.col),
            b.0,
            s(b.1.row),
            s(b.1.col),
            beta,
            c.0,
            s(c.1.row),
            s(c.1.col),
        );
    }
}

/// `c = x · wᵀ` (`accumulate`: `c += x · wᵀ`) for x `m × k` and w `n × k` with contiguous rows
/// (a linear layer's weight as stored; attention's keys): `cpu::dot`'s kernel in WASM,
/// matrixmultiply's natively.
///
/// # Safety
/// As [`crate::cpu::dot::xwt`].
pub(crate) unsafe fn xwt(
    dims: (usize, usize, usize),
    x: *const f32,
    w: *const f32,
    c: *mut f32,
    ld: Ld,
    accumulate: bool,
) {
    // SAFETY: the caller's contract.
    unsafe {
        if DOT_KERNEL {
            crate::cpu::dot::xwt(dims, x, w, c, ld, accumulate);
        } else {
            let beta = if accumulate { 1.0 } else { 0.0 };
            // wᵀ: element (kk, j) of the k×n operand is w[j][kk].
            let wt = Strides { row: 1, col: ld.w };
            let (xs, cs) = (Strides::rows(ld.x), Strides::rows(ld.c));
            gemm(dims, 1.0, (x, xs), (w, wt), beta, (c, cs));
        }
    }
}

/// The tiles of an m×n output for `threads` workers: row bands when there are at least as many rows
/// as columns, else column bands (a few tokens, decoding: each worker packs and reads only its share
/// of the weight). One tile when single-threaded or small.
fn tiles(
    m: usize,
    n: usize,
    threads: usize,
) -> Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let split = |len: usize, parts: usize, align: usize| {
        let step = len.div_ceil(parts).div_ceil(align) * align;
        (0..len)
            .step_by(step.max(1))
            .map(move |s| s..(s + step).min(len))
    };
    if threads <= 1 || m * n < 4096 {
        return vec![(0..m, 0..n)];
    }
    // Each tile packs its own share of both operands: row bands each pack all of the weight (n × k),
    // column bands all of x (m × k). Split the one that repacks less.
    if m >= n && m >= 8 * threads {
        split(m, threads * 2, 8).map(|r| (r, 0..n)).collect()
    } else {
        split(n, threads * 2, 16).map(|c| (0..m, c)).collect()
    }
}

/// `act(x · wᵀ + bias)` for `x` `[.., in]` and `w` `[out, in]` (a linear layer's weight as PyTorch
/// stores it), as `[.., out]`.
pub fn linear(
    x: &HostTensor,
    w: &HostTensor,
    bias: Option<&HostTensor>,
    act: Option<Activation>,
) -> Result<HostTensor> {
    let mut out = linears(x, &[(w, bias, act)])?;
    out.pop().ok_or_else(|| Error::shape("linear", "no output"))
}

/// A layer of [`linears`]: its weight `[out, in]`, bias and activation.
pub type Layer<'a> = (&'a HostTensor, Option<&'a HostTensor>, Option<Activation>);

/// Several linear layers of the same input (attention's Q, K and V) in one parallel region: the
/// threads are woken once for all of their tiles, which matters in a page, where waking a Web
/// Worker costs far more than a native thread.
pub fn linears(x: &HostTensor, layers: &[Layer<'_>]) -> Result<Vec<HostTensor>> {
    let xs = x.f32s("linear")?;
    let k = *x.shape().last().unwrap_or(&0);
    let m = xs.len().checked_div(k).unwrap_or(0);
    let mut outs = Vec::with_capacity(layers.len());
    let mut work = Vec::new();
    let threads = crate::cpu::par::threads();
    for &(w, bias, act) in layers {
        let Checked { w: ws, n, bias } = check(x, k, w, bias)?;
        let mut out = vec![0.0f32; m * n];
        if let Some(b) = bias {
            out.chunks_exact_mut(n)
                .for_each(|row| row.copy_from_slice(b));
        }
        let c = SharedOut(out.as_mut_ptr());
        for (rows, cols) in tiles(m, n, threads) {
            work.push(Tile {
                rows,
                cols,
                w: ws,
                n,
                accumulate: bias.is_some(),
                act,
                c,
            });
        }
        outs.push(out);
    }
    let run = |t: Tile<'_>| {
        let Tile {
            rows,
            cols,
            w: ws,
            n,
            accumulate,
            act,
            c,
        } = t;
        // SAFETY: x is m×k and w n×k, both read in bounds; the tiles of one output are disjoint.
        unsafe {
            let (x, w) = (
                xs.as_ptr().add(rows.start * k),
                ws.as_ptr().add(cols.start * k),
            );
            let out = c.ptr().add(rows.start * n + cols.start);
            let dims = (rows.len(), k, cols.len());
            xwt(dims, x, w, out, Ld { x: k, w: k, c: n }, accumulate);
            if let Some(act) = act {
                for i in rows {
                    let row =
                        std::slice::from_raw_parts_mut(c.ptr().add(i * n + cols.start), cols.len());
                    activate(row, act);
                }
            }
        }
    };
    crate::cpu::par::for_each(work.len(), |i| run(work[i].clone()));
    layers
        .iter()
        .zip(outs)
        .map(|((w, _, _), out)| {
            let mut shape = x.shape().to_vec();
            if let Some(last) = shape.last_mut() {
                *last = w.shape()[0];
            }
            HostTensor::from_f32(out, &shape)
        })
        .collect()
}

/// One task of [`linears`]: a block of one layer's output.
#[derive(Clone)]
struct Tile<'a> {
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    /// The layer's weight `[n, k]` and its row count.
    w: &'a [f32],
    n: usize,
    /// Whether the output was filled with the bias first (the product adds to it).
    accumulate: bool,
    act: Option<Activation>,
    c: SharedOut,
}

/// A layer's weight values, row count and bias values.
struct Checked<'a> {
    w: &'a [f32],
    n: usize,
    bias: Option<&'a [f32]>,
}

/// The layer checked against `x`'s inner size `k`.
fn check<'a>(
    x: &HostTensor,
    k: usize,
    w: &'a HostTensor,
    bias: Option<&'a HostTensor>,
) -> Result<Checked<'a>> {
    let [n, wk] = *w.shape() else {
        return Err(Error::shape(
            "linear",
            format!("weight {:?} is not 2-D", w.shape()),
        ));
    };
    if wk != k || k == 0 {
        return Err(Error::shape(
            "linear",
            format!("x {:?} · wᵀ {:?}: inner sizes differ", x.shape(), w.shape()),
        ));
    }
    let bias = match bias {
        Some(b) if b.numel() != n => {
            return Err(Error::shape(
                "linear",
                format!("bias {:?} for {n} outputs", b.shape()),
            ));
        }
        Some(b) => Some(b.f32s("linear")?),
        None => None,
    };
    Ok(Checked {
        w: w.f32s("linear")?,
        n,
        bias,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], w: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut y = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| x[i * k + p] as f64 * w[j * k + p] as f64)
                    .sum();
                y[i * n + j] = (dot + b[j] as f64) as f32;
            }
        }
        y
    }

    #[test]
    fn linear_matches_a_plain_loop_over_odd_shapes() {
        for &(m, k, n) in &[
            (1, 7, 5),
            (3, 64, 65),
            (65, 33, 257),
            (257, 96, 40),
            (1, 384, 1536),
        ] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.1)
                .collect();
            let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.01).collect();
            let y = linear(
                &HostTensor::from_f32(x.clone(), &[m, k]).unwrap(),
                &HostTensor::from_f32(w.clone(), &[n, k]).unwrap(),
                Some(&HostTensor::from_f32(b.clone(), &[n]).unwrap()),
                None,
            )
            .unwrap();
            assert_eq!(y.shape(), [m, n]);
            let want = reference(&x, &w, &b, m, k, n);
            let got = y.f32s("test").unwrap();
            // f32 sums of up to 384 terms of magnitude ≤ 0.36 in another order: ≤ ~1e-5.
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                    "{m}×{k}×{n}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn linears_in_one_region_match_one_at_a_time() {
        let (m, k) = (70, 48);
        let t = |n: usize, shape: &[usize]| {
            let v = (0..n)
                .map(|i| ((i * 11 % 17) as f32 - 8.0) * 0.05)
                .collect();
            HostTensor::from_f32(v, shape).unwrap()
        };
        let x = t(m * k, &[m, k]);
        let (w1, w2, b2) = (t(33 * k, &[33, k]), t(65 * k, &[65, k]), t(65, &[65]));
        let gelu = Some(Activation::Gelu);
        let together = linears(&x, &[(&w1, None, None), (&w2, Some(&b2), gelu)]).unwrap();
        let one = linear(&x, &w1, None, None).unwrap();
        let two = linear(&x, &w2, Some(&b2), gelu).unwrap();
        assert_eq!(together[0].f32s("t").unwrap(), one.f32s("t").unwrap());
        assert_eq!(together[1].f32s("t").unwrap(), two.f32s("t").unwrap());
        assert_eq!(together[1].shape(), [m, 65]);
    }

    #[test]
    fn linear_refuses_mismatched_shapes() {
        let x = HostTensor::from_f32(vec![0.0; 6], &[2, 3]).unwrap();
        let w = HostTensor::from_f32(vec![0.0; 8], &[2, 4]).unwrap();
        assert!(linear(&x, &w, None, None).is_err());
    }
}
