//! The row-wise operations of the CPU backend: embedding lookup, LayerNorm, residual add, mean
//! pooling and L2 normalization. Rows are split over the threads (`cpu::par`) where there are many.

use crate::cpu::{HostTensor, math, par};
use crate::error::{Error, Result};

/// Rows a task takes at least (below it, threads cost more than they save).
const MIN_ROWS: usize = 16;
/// Below this many values a row-wise pass runs on the calling thread: waking the pool (Web Workers
/// parked on `Atomics.wait` in a page) costs more than a LayerNorm of 128 × 384 values.
const MIN_PARALLEL_VALUES: usize = 1 << 17;

/// Applies `f(row_index, out_row)` to each `width`-wide row of `out`, over threads when there are
/// enough rows and values.
fn rows_mut(out: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if width == 0 {
        return;
    }
    let big = out.len() >= MIN_PARALLEL_VALUES && out.len() / width >= 2 * MIN_ROWS;
    if big && par::threads() > 1 {
        let rows = (out.len() / width)
            .div_ceil(par::threads() * 4)
            .max(MIN_ROWS);
        par::chunks_mut(out, rows * width, |c, block| {
            for (i, r) in block.chunks_mut(width).enumerate() {
                f(c * rows + i, r)
            }
        });
    } else {
        out.chunks_mut(width).enumerate().for_each(|(i, r)| f(i, r));
    }
}

fn last_dim(x: &HostTensor) -> usize {
    x.shape().last().copied().unwrap_or(1)
}

/// `table[ids] (+ positions[pos0 + s]) (+ type_table[type_ids])` for i32 `ids` `[batch, seq]`,
/// as `[batch, seq, hidden]`.
pub fn embedding(
    ids: &HostTensor,
    table: &HostTensor,
    positions: Option<(&HostTensor, usize)>,
    token_types: Option<(&HostTensor, &HostTensor)>,
) -> Result<HostTensor> {
    let [batch, seq] = *ids.shape() else {
        return Err(Error::shape(
            "embedding",
            format!("ids {:?} are not [batch, seq]", ids.shape()),
        ));
    };
    let [vocab, hidden] = *table.shape() else {
        return Err(Error::shape(
            "embedding",
            format!("table {:?} is not 2-D", table.shape()),
        ));
    };
    let ids = ids.i32s("embedding")?;
    let table = table.f32s("embedding")?;
    let row_of = |t: &[f32], len: usize, i: i32, what: &str| -> Result<std::ops::Range<usize>> {
        match usize::try_from(i) {
            Ok(i) if i < len => Ok(i * hidden..(i + 1) * hidden),
            _ => Err(Error::Input(format!(
                "{what} {i} is outside the table's {len} rows"
            ))),
        }
        .and_then(|r| {
            if r.end <= t.len() {
                Ok(r)
            } else {
                Err(Error::shape("embedding", "table too short"))
            }
        })
    };
    let mut out = vec![0.0f32; batch * seq * hidden];
    for (t, (&id, o)) in ids.iter().zip(out.chunks_exact_mut(hidden)).enumerate() {
        o.copy_from_slice(&table[row_of(table, vocab, id, "token id")?]);
        if let Some((pos, pos0)) = positions {
            let rows = pos.shape()[0];
            let p = pos.f32s("embedding")?;
            let r = row_of(p, rows, (pos0 + t % seq) as i32, "position")?;
            o.iter_mut().zip(&p[r]).for_each(|(o, p)| *o += p);
        }
        if let Some((types, type_table)) = token_types {
            let rows = type_table.shape()[0];
            let tt = type_table.f32s("embedding")?;
            let r = row_of(tt, rows, types.i32s("embedding")?[t], "token type")?;
            o.iter_mut().zip(&tt[r]).for_each(|(o, p)| *o += p);
        }
    }
    HostTensor::from_f32(out, &[batch, seq, hidden])
}

/// LayerNorm over the last axis: `(x - mean) / sqrt(var + eps) · weight + bias`.
pub fn layer_norm(
    x: &HostTensor,
    weight: &HostTensor,
    bias: &HostTensor,
    eps: f32,
) -> Result<HostTensor> {
    let n = last_dim(x);
    if weight.numel() != n || bias.numel() != n {
        return Err(Error::shape(
            "layer_norm",
            format!(
                "x {:?} with weight {:?}, bias {:?}",
                x.shape(),
                weight.shape(),
                bias.shape()
            ),
        ));
    }
    let (xs, w, b) = (
        x.f32s("layer_norm")?,
        weight.f32s("layer_norm")?,
        bias.f32s("layer_norm")?,
    );
    let mut out = vec![0.0f32; xs.len()];
    rows_mut(&mut out, n, |i, o| {
        let row = &xs[i * n..(i + 1) * n];
        let mean = math::sum(row) / n as f32;
        let var = math::sum_sq_dev(row, mean) / n as f32;
        let rstd = 1.0 / (var + eps).sqrt();
        for (((o, v), w), b) in o.iter_mut().zip(row).zip(w).zip(b) {
            *o = (v - mean) * rstd * w + b;
        }
    });
    HostTensor::from_f32(out, x.shape())
}

/// `a + b`, same shapes, or `b` one row broadcast over `a`'s rows.
pub fn add(a: &HostTensor, b: &HostTensor) -> Result<HostTensor> {
    let n = last_dim(a);
    if a.shape() != b.shape() && b.numel() != n {
        return Err(Error::shape(
            "add",
            format!("{:?} + {:?}", a.shape(), b.shape()),
        ));
    }
    let (xs, ys) = (a.f32s("add")?, b.f32s("add")?);
    let mut out = xs.to_vec();
    if ys.len() == xs.len() {
        out.iter_mut().zip(ys).for_each(|(o, y)| *o += y);
    } else {
        out.chunks_exact_mut(n.max(1))
            .for_each(|r| r.iter_mut().zip(ys).for_each(|(o, y)| *o += y));
    }
    HostTensor::from_f32(out, a.shape())
}

/// The mean over the real tokens (`mask` 1) of `x` `[batch, seq, hidden]`, as `[batch, hidden]`
/// (zeros for a sequence without one).
pub fn mean_pool(x: &HostTensor, mask: &HostTensor) -> Result<HostTensor> {
    let [batch, seq, hidden] = *x.shape() else {
        return Err(Error::shape(
            "mean_pool",
            format!("x {:?} is not 3-D", x.shape()),
        ));
    };
    if mask.shape() != [batch, seq] {
        return Err(Error::shape(
            "mean_pool",
            format!("mask {:?} for x {:?}", mask.shape(), x.shape()),
        ));
    }
    let (xs, m) = (x.f32s("mean_pool")?, mask.i32s("mean_pool")?);
    let mut out = vec![0.0f32; batch * hidden];
    for (b, o) in out.chunks_exact_mut(hidden).enumerate() {
        let mut count = 0usize;
        for s in (0..seq).filter(|&s| m[b * seq + s] != 0) {
            count += 1;
            let row = &xs[(b * seq + s) * hidden..][..hidden];
            o.iter_mut().zip(row).for_each(|(o, v)| *o += v);
        }
        let inv = 1.0 / count.max(1) as f32;
        o.iter_mut().for_each(|v| *v *= inv);
    }
    HostTensor::from_f32(out, &[batch, hidden])
}

/// Each row divided by `max(‖row‖, eps)` (PyTorch's `F.normalize`).
pub fn l2_normalize(x: &HostTensor, eps: f32) -> Result<HostTensor> {
    let n = last_dim(x);
    let mut out = x.f32s("l2_normalize")?.to_vec();
    for r in out.chunks_exact_mut(n.max(1)) {
        let norm = math::sum_sq_dev(r, 0.0).sqrt().max(eps);
        r.iter_mut().for_each(|v| *v /= norm);
    }
    HostTensor::from_f32(out, x.shape())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32], shape: &[usize]) -> HostTensor {
        HostTensor::from_f32(v.to_vec(), shape).unwrap()
    }

    #[test]
    fn layer_norm_and_pooling_against_hand_values() {
        let x = t(&[1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 1.0, 2.0], &[2, 4]);
        let y = layer_norm(
            &x,
            &t(&[1.0, 2.0, 1.0, 1.0], &[4]),
            &t(&[0.0, 0.0, 0.0, 1.0], &[4]),
            0.0,
        )
        .unwrap();
        let s = (1.25f32).sqrt(); // both rows have variance 1.25
        let want = [-1.5 / s, -1.0 / s, 0.5 / s, 1.5 / s + 1.0];
        for (g, w) in y.f32s("t").unwrap()[..4].iter().zip(want) {
            assert!((g - w).abs() < 1e-6);
        }
        let h = t(&[1.0, 2.0, 3.0, 4.0, 9.0, 9.0], &[1, 3, 2]);
        let m = HostTensor::from_i32(vec![1, 1, 0], &[1, 3]).unwrap();
        assert_eq!(mean_pool(&h, &m).unwrap().f32s("t").unwrap(), [2.0, 3.0]);
        let n = l2_normalize(&t(&[3.0, 4.0], &[1, 2]), 1e-12).unwrap();
        assert_eq!(n.f32s("t").unwrap(), [0.6, 0.8]);
    }

    #[test]
    fn embedding_adds_positions_and_types_and_refuses_bad_ids() {
        let table = t(&[0.0, 0.0, 1.0, 1.0, 2.0, 2.0], &[3, 2]);
        let pos = t(&[0.1, 0.1, 0.2, 0.2], &[2, 2]);
        let types = t(&[10.0, 10.0, 20.0, 20.0], &[2, 2]);
        let ids = HostTensor::from_i32(vec![2, 1], &[1, 2]).unwrap();
        let tids = HostTensor::from_i32(vec![0, 1], &[1, 2]).unwrap();
        let e = embedding(&ids, &table, Some((&pos, 0)), Some((&tids, &types))).unwrap();
        assert_eq!(e.f32s("t").unwrap(), [12.1, 12.1, 21.2, 21.2]);
        let bad = HostTensor::from_i32(vec![3, 0], &[1, 2]).unwrap();
        assert!(matches!(
            embedding(&bad, &table, None, None),
            Err(Error::Input(_))
        ));
    }
}
