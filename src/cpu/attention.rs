//! Multi-head attention on the CPU, one task per (sequence, head): the scores `q·kᵀ` and the
//! weighted sum of values by sgemm over strided views of `[batch, seq, heads, head_dim]` (no
//! transposes), a padding mask and a softmax in between.

use crate::cpu::HostTensor;
use crate::cpu::math::softmax;
use crate::cpu::matmul::{Ld, SharedOut, Strides, gemm, xwt};
use crate::error::{Error, Result};

/// `softmax(q·kᵀ·scale + mask)·v` for `q`, `k`, `v` of shape `[batch, seq, heads, head_dim]` and an
/// optional i32 `mask` `[batch, seq]` (1 for keys that may be attended, 0 for padding). Returns
/// `[batch, seq, heads, head_dim]`; `scale` defaults to 1/√head_dim.
pub fn attention(
    q: &HostTensor,
    k: &HostTensor,
    v: &HostTensor,
    mask: Option<&HostTensor>,
    scale: Option<f32>,
) -> Result<HostTensor> {
    let [batch, seq, heads, dim] = *q.shape() else {
        return Err(Error::shape(
            "attention",
            format!("q {:?} is not [batch, seq, heads, head_dim]", q.shape()),
        ));
    };
    if k.shape() != q.shape() || v.shape() != q.shape() {
        return Err(Error::shape(
            "attention",
            format!(
                "q {:?}, k {:?}, v {:?} differ",
                q.shape(),
                k.shape(),
                v.shape()
            ),
        ));
    }
    let mask = match mask {
        Some(m) if m.shape() != [batch, seq] => {
            return Err(Error::shape(
                "attention",
                format!("mask {:?} is not [{batch}, {seq}]", m.shape()),
            ));
        }
        Some(m) => Some(m.i32s("attention")?),
        None => None,
    };
    let (qs, ks, vs) = (
        q.f32s("attention")?,
        k.f32s("attention")?,
        v.f32s("attention")?,
    );
    let scale = scale.unwrap_or(1.0 / (dim as f32).sqrt());
    let mut out = vec![0.0f32; qs.len()];
    let o = SharedOut(out.as_mut_ptr());
    let row = Strides::rows(heads * dim);
    let task = |bh: usize| {
        let (b, h) = (bh / heads, bh % heads);
        let base = b * seq * heads * dim + h * dim;
        let mut scores = vec![0.0f32; seq * seq];
        // SAFETY: every view stays inside its [batch, seq, heads, dim] tensor; each task writes only
        // its own (b, h) slice of `out`.
        unsafe {
            // q·kᵀ: both read along head_dim, rows heads·dim apart.
            let ld = Ld {
                x: heads * dim,
                w: heads * dim,
                c: seq,
            };
            let (qp, kp) = (qs.as_ptr().add(base), ks.as_ptr().add(base));
            xwt((seq, dim, seq), qp, kp, scores.as_mut_ptr(), ld, false);
        }
        // The padding mask as an additive row: 0 to keep a key, -inf to drop it.
        let bias: Option<Vec<f32>> = mask.map(|m| {
            m[b * seq..(b + 1) * seq]
                .iter()
                .map(|&k| if k == 0 { f32::NEG_INFINITY } else { 0.0 })
                .collect()
        });
        for r in scores.chunks_exact_mut(seq) {
            r.iter_mut().for_each(|s| *s *= scale);
            if let Some(bias) = &bias {
                r.iter_mut().zip(bias).for_each(|(s, b)| *s += b);
            }
            softmax(r);
        }
        // SAFETY: as above.
        unsafe {
            gemm(
                (seq, seq, dim),
                1.0,
                (scores.as_ptr(), Strides::rows(seq)),
                (vs.as_ptr().add(base), row),
                0.0,
                (o.ptr().add(base), row),
            );
        }
    };
    crate::cpu::par::for_each(batch * heads, task);
    HostTensor::from_f32(out, q.shape())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_plain_loop_with_padding() {
        let (batch, seq, heads, dim) = (2, 5, 3, 4);
        let n = batch * seq * heads * dim;
        let fill = |s: usize| {
            (0..n)
                .map(|i| (((i * s) % 17) as f32 - 8.0) * 0.1)
                .collect::<Vec<_>>()
        };
        let (q, k, v) = (fill(3), fill(5), fill(7));
        let mask: Vec<i32> = (0..batch * seq)
            .map(|i| i32::from(i != 3 && i != 9))
            .collect();
        let t = |x: &Vec<f32>| HostTensor::from_f32(x.clone(), &[batch, seq, heads, dim]).unwrap();
        let m = HostTensor::from_i32(mask.clone(), &[batch, seq]).unwrap();
        let got = attention(&t(&q), &t(&k), &t(&v), Some(&m), None).unwrap();
        let got = got.f32s("test").unwrap();
        let at = |x: &[f32], b, s, h, d| x[((b * seq + s) * heads + h) * dim + d] as f64;
        for b in 0..batch {
            for h in 0..heads {
                for i in 0..seq {
                    let w: Vec<f64> = (0..seq)
                        .map(|j| {
                            if mask[b * seq + j] == 0 {
                                return 0.0;
                            }
                            let dot: f64 = (0..dim)
                                .map(|d| at(&q, b, i, h, d) * at(&k, b, j, h, d))
                                .sum();
                            (dot / (dim as f64).sqrt()).exp()
                        })
                        .collect();
                    let total: f64 = w.iter().sum();
                    for d in 0..dim {
                        let want: f64 = (0..seq).map(|j| w[j] / total * at(&v, b, j, h, d)).sum();
                        let g = at(got, b, i, h, d);
                        assert!((g - want).abs() < 1e-5, "({b},{i},{h},{d}): {g} vs {want}");
                    }
                }
            }
        }
    }
}
