//! The decoder kernels against plain f64 loops written here.

use super::*;

fn fill(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * seed + 3) % 23) as f32 - 11.0) * 0.09)
        .collect()
}

#[test]
fn rms_norm_matches_f64() {
    let (rows, d) = (3, 10);
    let x = fill(rows * d, 5);
    let w = fill(d, 7);
    let got = rms_norm(
        &HostTensor::from_f32(x.clone(), &[rows, d]).unwrap(),
        &HostTensor::from_f32(w.clone(), &[d]).unwrap(),
        1e-5,
    )
    .unwrap()
    .to_vec()
    .unwrap();
    for r in 0..rows {
        let row = &x[r * d..(r + 1) * d];
        let ms: f64 = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            / d as f64;
        for i in 0..d {
            let want = f64::from(row[i]) / (ms + 1e-5).sqrt() * f64::from(w[i]);
            assert!((f64::from(got[r * d + i]) - want).abs() < 1e-5, "{r},{i}");
        }
    }
}

/// Both pair layouts, with and without frequency factors, at positions past 2π turns; f64 angles
/// (the kernel's f32 angle reduction costs ~1e-5 at these positions).
#[test]
fn rope_matches_f64() {
    let (seq, heads, hd, pos0, theta) = (3, 2, 8, 1000, 10000.0f32);
    let x = fill(seq * heads * hd, 3);
    let factors = [1.0f32, 2.0, 4.0, 8.0];
    for layout in [Layout::RotateHalf, Layout::Interleaved] {
        for with_factors in [false, true] {
            let f = HostTensor::from_f32(factors.to_vec(), &[4]).unwrap();
            let t = HostTensor::from_f32(x.clone(), &[1, seq, heads, hd]).unwrap();
            let got = rope(&t, pos0, theta, layout, with_factors.then_some(&f))
                .unwrap()
                .to_vec()
                .unwrap();
            for v in 0..seq * heads {
                let pos = (pos0 + v / heads) as f64;
                for (i, &factor) in factors.iter().enumerate() {
                    let mut inv = 1.0 / f64::from(theta).powf(2.0 * i as f64 / hd as f64);
                    if with_factors {
                        inv /= f64::from(factor);
                    }
                    let (s, c) = (pos * inv).sin_cos();
                    let (i0, i1) = match layout {
                        Layout::RotateHalf => (i, i + hd / 2),
                        Layout::Interleaved => (2 * i, 2 * i + 1),
                    };
                    let (x0, x1) = (f64::from(x[v * hd + i0]), f64::from(x[v * hd + i1]));
                    for (at, want) in [(i0, x0 * c - x1 * s), (i1, x1 * c + x0 * s)] {
                        let g = f64::from(got[v * hd + at]);
                        assert!(
                            (g - want).abs() < 2e-4,
                            "{layout:?} {v} {at}: {g} vs {want}"
                        );
                    }
                }
            }
        }
    }
}

/// Grouped-query attention of 3 queries (the last 3 of 7 positions) over a cache, against f64:
/// plain causal, a sliding window of 3, and Gemma 2's soft cap.
#[test]
fn causal_attention_matches_f64() {
    let (seq, heads, kvh, hd, kv_len, cap) = (3, 4, 2, 8, 7, 10);
    let q = fill(seq * heads * hd, 7);
    let (k, v) = (fill(kv_len * kvh * hd, 5), fill(kv_len * kvh * hd, 11));
    let mut kv = HostKv::new(cap, kvh, hd);
    kv.write_k(
        0,
        &HostTensor::from_f32(k.clone(), &[kv_len, kvh, hd]).unwrap(),
    )
    .unwrap();
    kv.write_v(
        0,
        &HostTensor::from_f32(v.clone(), &[kv_len, kvh, hd]).unwrap(),
    )
    .unwrap();
    let qt = HostTensor::from_f32(q.clone(), &[1, seq, heads, hd]).unwrap();
    for (window, softcap) in [(None, None), (Some(3), None), (None, Some(0.5f32))] {
        let spec = CausalSpec {
            kv_len,
            scale: 0.3,
            window,
            softcap,
        };
        let got = causal_attention(&qt, &kv, &spec).unwrap().to_vec().unwrap();
        for s in 0..seq {
            let pos = kv_len - seq + s;
            for h in 0..heads {
                let kh = h / (heads / kvh);
                let keys: Vec<usize> = (0..=pos)
                    .filter(|&j| window.is_none_or(|w| j + w > pos))
                    .collect();
                let scores: Vec<f64> = keys
                    .iter()
                    .map(|&j| {
                        let dot: f64 = (0..hd)
                            .map(|d| {
                                f64::from(q[(s * heads + h) * hd + d])
                                    * f64::from(k[(j * kvh + kh) * hd + d])
                            })
                            .sum::<f64>()
                            * 0.3;
                        softcap.map_or(dot, |c| f64::from(c) * (dot / f64::from(c)).tanh())
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                for d in 0..hd {
                    let want: f64 = keys
                        .iter()
                        .zip(&scores)
                        .map(|(&j, s)| {
                            (s - max).exp() / total * f64::from(v[(j * kvh + kh) * hd + d])
                        })
                        .sum();
                    let g = f64::from(got[(s * heads + h) * hd + d]);
                    assert!(
                        (g - want).abs() < 1e-5,
                        "{window:?} {softcap:?} {s} {h} {d}: {g} vs {want}"
                    );
                }
            }
        }
    }
    // A query past the cache, or rows past its capacity, are refused.
    let bad = CausalSpec {
        kv_len: 11,
        scale: 1.0,
        window: None,
        softcap: None,
    };
    assert!(causal_attention(&qt, &kv, &bad).is_err());
    let rows = HostTensor::from_f32(vec![0.0; 2 * kvh * hd], &[2, kvh, hd]).unwrap();
    assert!(kv.write_k(9, &rows).is_err());
}

#[test]
fn gated_activations() {
    let g = HostTensor::from_f32(vec![-2.0, 0.0, 1.5], &[3]).unwrap();
    let u = HostTensor::from_f32(vec![1.0, 3.0, -2.0], &[3]).unwrap();
    let silu = gated(&g, &u, false).unwrap().to_vec().unwrap();
    let gelu = gated(&g, &u, true).unwrap().to_vec().unwrap();
    for (i, (&gv, &uv)) in [-2.0f64, 0.0, 1.5]
        .iter()
        .zip(&[1.0f64, 3.0, -2.0])
        .enumerate()
    {
        let s = gv / (1.0 + (-gv).exp()) * uv;
        let t = 0.5
            * gv
            * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (gv + 0.044715 * gv.powi(3))).tanh())
            * uv;
        assert!((f64::from(silu[i]) - s).abs() < 1e-6, "silu {i}");
        assert!((f64::from(gelu[i]) - t).abs() < 1e-6, "gelu {i}");
    }
}
