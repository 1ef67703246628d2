//! The model building blocks against CPU references (f64) over odd shapes: activations, SwiGLU, GeGLU,
//! scale, soft-capping, LayerNorm/RMSNorm/L2, RoPE, embedding gather, masked mean pooling. f32
//! everywhere, f16 where the adapter has `shader-f16`.
mod common;

use common::{Rng, assert_close, gpu, upload};
use half::f16;
use webgpu_infer::kernels::{activation, elementwise, embedding, norm, pool, rope};
use webgpu_infer::{DType, Gpu, Result, Tensor};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const LENGTHS: &[usize] = &[1, 3, 17, 63, 65, 129, 257, 1000];

/// The dtypes to run: f32, plus f16 where the adapter has it.
fn dtypes(gpu: &Gpu) -> Vec<DType> {
    if gpu.capabilities().shader_f16 {
        vec![DType::F32, DType::F16]
    } else {
        vec![DType::F32]
    }
}

/// Tolerance for a result of magnitude ~1: f32 arithmetic (1e-5), or one f16 rounding of the output
/// (2^-11 relative ≈ 4.9e-4, so 1e-3).
fn tol(dtype: DType) -> f32 {
    if dtype == DType::F32 { 1e-5 } else { 1e-3 }
}

fn gelu_ref(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

fn silu_ref(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

async fn activations() -> Result<()> {
    let gpu = gpu().await?;
    for dtype in dtypes(&gpu) {
        for &len in LENGTHS {
            let mut rng = Rng::new(len as u64);
            // ±6 covers GELU's curved region and both saturations.
            let mut x: Vec<f32> = rng.vec(len).iter().map(|v| v * 6.0).collect();
            let mut y: Vec<f32> = rng.vec(len);
            let tx = upload(&gpu, dtype, &mut x, &[len])?;
            let ty = upload(&gpu, dtype, &mut y, &[len])?;
            let mut rec = gpu.recorder();
            let g = activation::gelu(&mut rec, &tx)?;
            let s = activation::silu(&mut rec, &tx)?;
            let sw = elementwise::silu_mul(&mut rec, &tx, &ty)?;
            let gg = elementwise::gelu_tanh_mul(&mut rec, &tx, &ty)?;
            let sc = elementwise::scale(&mut rec, &tx, 0.37)?;
            // A cap of 2 on values up to ±6: well into tanh's curve and its saturation.
            let cap = elementwise::softcap(&mut rec, &tx, 2.0)?;
            rec.submit();
            let what = format!("{dtype:?} len {len}");
            // GELU: erf approximation error ≤ 1.5e-7·|x|/2 ≤ 4.5e-7 at |x| ≤ 6, under the f32 tolerance.
            let want: Vec<f32> = x.iter().map(|&v| gelu_ref(v.into()) as f32).collect();
            assert_close(
                &format!("gelu {what}"),
                &g.to_f32_vec().await?,
                &want,
                tol(dtype),
                tol(dtype),
            );
            let want: Vec<f32> = x.iter().map(|&v| silu_ref(v.into()) as f32).collect();
            assert_close(
                &format!("silu {what}"),
                &s.to_f32_vec().await?,
                &want,
                tol(dtype),
                tol(dtype),
            );
            let want: Vec<f32> = x
                .iter()
                .zip(&y)
                .map(|(&a, &b)| (silu_ref(a.into()) * f64::from(b)) as f32)
                .collect();
            assert_close(
                &format!("silu_mul {what}"),
                &sw.to_f32_vec().await?,
                &want,
                tol(dtype),
                tol(dtype),
            );
            let gelu_tanh = |x: f64| {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x.powi(3))).tanh())
            };
            let want: Vec<f32> = x
                .iter()
                .zip(&y)
                .map(|(&a, &b)| (gelu_tanh(a.into()) * f64::from(b)) as f32)
                .collect();
            assert_close(
                &format!("gelu_tanh_mul {what}"),
                &gg.to_f32_vec().await?,
                &want,
                tol(dtype),
                tol(dtype),
            );
            let want: Vec<f32> = x.iter().map(|&v| (f64::from(v) * 0.37) as f32).collect();
            let got = sc.to_f32_vec().await?;
            assert_close(
                &format!("scale {what}"),
                &got,
                &want,
                tol(dtype),
                tol(dtype),
            );
            let want: Vec<f32> = x
                .iter()
                .map(|&v| (2.0 * (f64::from(v) / 2.0).tanh()) as f32)
                .collect();
            let got = cap.to_f32_vec().await?;
            assert_close(
                &format!("softcap {what}"),
                &got,
                &want,
                tol(dtype),
                tol(dtype),
            );
        }
    }
    Ok(())
}
gpu_test!(
    gelu_silu_swiglu_geglu_scale_softcap_match_reference,
    activations
);

fn norm_ref(x: &[f32], cols: usize, mode: &str, w: &[f32], b: &[f32], eps: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(cols) {
        let n = cols as f64;
        let mean = if mode == "layer" {
            row.iter().map(|&v| f64::from(v)).sum::<f64>() / n
        } else {
            0.0
        };
        let sq: f64 = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum();
        let scale = match mode {
            "l2" => 1.0 / sq.sqrt().max(eps),
            _ => 1.0 / (sq / n + eps).sqrt(),
        };
        for (i, &v) in row.iter().enumerate() {
            let y = (f64::from(v) - mean) * scale;
            out.push(match mode {
                "layer" => (y * f64::from(w[i]) + f64::from(b[i])) as f32,
                "rms" => (y * f64::from(w[i])) as f32,
                _ => y as f32,
            });
        }
    }
    out
}

async fn norms() -> Result<()> {
    let gpu = gpu().await?;
    for dtype in dtypes(&gpu) {
        for (seed, &(rows, cols)) in [
            (1, 1),
            (3, 17),
            (7, 63),
            (2, 257),
            (5, 384),
            (1, 1000),
            (65, 129),
        ]
        .iter()
        .enumerate()
        {
            let mut rng = Rng::new(seed as u64 + 50);
            // An offset of 3 makes the mean matter (a wrong mean shows immediately).
            let mut x: Vec<f32> = rng.vec(rows * cols).iter().map(|v| v * 2.0 + 3.0).collect();
            let mut w: Vec<f32> = rng.vec(cols).iter().map(|v| v + 1.0).collect();
            let mut b: Vec<f32> = rng.vec(cols);
            let tx = upload(&gpu, dtype, &mut x, &[rows, cols])?;
            let tw = upload(&gpu, dtype, &mut w, &[cols])?;
            let tb = upload(&gpu, dtype, &mut b, &[cols])?;
            let mut rec = gpu.recorder();
            let ln = norm::layer_norm(&mut rec, &tx, &tw, &tb, 1e-12)?;
            let rms = norm::rms_norm(&mut rec, &tx, &tw, 1e-6)?;
            let l2 = norm::l2_normalize(&mut rec, &tx, 1e-12)?;
            rec.submit();
            let what = format!("{dtype:?} {rows}x{cols}");
            // A 1-column LayerNorm is all bias (x - mean = 0): still exact.
            let t = tol(dtype) * 4.0; // outputs up to ~4 in magnitude after the affine part
            assert_close(
                &format!("layer_norm {what}"),
                &ln.to_f32_vec().await?,
                &norm_ref(&x, cols, "layer", &w, &b, 1e-12),
                t,
                t,
            );
            assert_close(
                &format!("rms_norm {what}"),
                &rms.to_f32_vec().await?,
                &norm_ref(&x, cols, "rms", &w, &b, 1e-6),
                t,
                t,
            );
            assert_close(
                &format!("l2 {what}"),
                &l2.to_f32_vec().await?,
                &norm_ref(&x, cols, "l2", &w, &b, 1e-12),
                t,
                t,
            );
        }
    }
    Ok(())
}
gpu_test!(layer_rms_l2_norms_match_reference, norms);

/// RoPE reference: inv_freq and the angle in f32 as transformers computes them, sin/cos in f64.
fn rope_ref(x: &[f32], shape: [usize; 4], pos0: usize, theta: f32, interleaved: bool) -> Vec<f32> {
    rope_ref_scaled(x, shape, pos0, theta, interleaved, None)
}

/// With per-pair factors dividing the frequencies (Llama 3's scaling as llama.cpp stores it).
fn rope_ref_scaled(
    x: &[f32],
    shape: [usize; 4],
    pos0: usize,
    theta: f32,
    interleaved: bool,
    factors: Option<&[f32]>,
) -> Vec<f32> {
    let [batch, seq, heads, d] = shape;
    let mut out = x.to_vec();
    for b in 0..batch {
        for s in 0..seq {
            for h in 0..heads {
                let base = ((b * seq + s) * heads + h) * d;
                for i in 0..d / 2 {
                    let inv_freq = 1.0f32
                        / theta.powf((2 * i) as f32 / d as f32)
                        / factors.map_or(1.0, |f| f[i]);
                    let angle = f64::from((pos0 + s) as f32 * inv_freq);
                    let (sn, c) = angle.sin_cos();
                    let (i0, i1) = if interleaved {
                        (base + 2 * i, base + 2 * i + 1)
                    } else {
                        (base + i, base + i + d / 2)
                    };
                    let (x0, x1) = (f64::from(x[i0]), f64::from(x[i1]));
                    out[i0] = (x0 * c - x1 * sn) as f32;
                    out[i1] = (x1 * c + x0 * sn) as f32;
                }
            }
        }
    }
    out
}

async fn rope_rotations() -> Result<()> {
    let gpu = gpu().await?;
    for dtype in dtypes(&gpu) {
        for &(shape, pos0, theta) in &[
            ([1, 1, 1, 2], 0, 10_000.0),
            ([2, 7, 3, 64], 0, 10_000.0),
            ([1, 5, 9, 64], 123, 100_000.0),
            ([1, 1, 3, 128], 2047, 500_000.0),
            ([3, 17, 2, 6], 5, 10_000.0),
        ] {
            let n: usize = shape.iter().product();
            let mut x = Rng::new(n as u64 + pos0 as u64).vec(n);
            let tx = upload(&gpu, dtype, &mut x, &shape)?;
            // The interleaved layout, written into rows 1.. of a larger tensor (a KV cache's view).
            let [b0, s0, h0, d0] = shape;
            let mut big = vec![7.0f32; (b0 * s0 + 2) * h0 * d0];
            let tbig = upload(&gpu, dtype, &mut big, &[b0 * s0 + 2, h0, d0])?;
            let view = tbig.narrow(1, b0 * s0)?.reshape(&shape)?;
            // Frequency factors (1 to ~4), read from offset 3 of their buffer.
            let factors: Vec<f32> = (0..d0 / 2).map(|i| 1.0 + 0.37 * (i % 9) as f32).collect();
            let mut padded = vec![-1.0f32; 3];
            padded.extend(&factors);
            let tfactors = Tensor::from_f32(&gpu, &padded, &[padded.len()])?.narrow(3, d0 / 2)?;
            let mut rec = gpu.recorder();
            let y = rope::rope(&mut rec, &tx, pos0, theta)?;
            rope::rope_with(
                &mut rec,
                &tx,
                Some(&view),
                pos0,
                theta,
                rope::Layout::Interleaved,
            )?;
            let scaled = rope::rope_scaled(
                &mut rec,
                &tx,
                None,
                pos0,
                theta,
                rope::Layout::RotateHalf,
                Some(&tfactors),
            )?;
            rec.submit();
            // WGSL specifies sin/cos to 2^-11 absolute on [-π, π]; each output sums two products with
            // |x| ≤ 1: 2e-3 absolute. A wrong pairing or position is off by O(1).
            let t = if dtype == DType::F32 { 2e-3 } else { 3e-3 };
            assert_close(
                &format!("rope {dtype:?} {shape:?} pos0 {pos0}"),
                &y.to_f32_vec().await?,
                &rope_ref(&x, shape, pos0, theta, false),
                t,
                0.0,
            );
            assert_close(
                &format!("scaled rope {dtype:?} {shape:?} pos0 {pos0}"),
                &scaled.to_f32_vec().await?,
                &rope_ref_scaled(&x, shape, pos0, theta, false, Some(&factors)),
                t,
                0.0,
            );
            let mut want = big.clone();
            let row = h0 * d0;
            want[row..row * (1 + b0 * s0)].copy_from_slice(&rope_ref(&x, shape, pos0, theta, true));
            assert_close(
                &format!("interleaved rope into a view {dtype:?} {shape:?} pos0 {pos0}"),
                &tbig.to_f32_vec().await?,
                &want,
                t,
                0.0,
            );
        }
    }
    Ok(())
}
gpu_test!(rope_matches_reference, rope_rotations);

async fn embeddings() -> Result<()> {
    let gpu = gpu().await?;
    let (vocab, hidden, n_pos, n_types, batch, seq, pos0) = (50, 17, 40, 2, 2, 7, 3);
    let mut rng = Rng::new(77);
    let word = rng.vec(vocab * hidden);
    let pos = rng.vec(n_pos * hidden);
    let types = rng.vec(n_types * hidden);
    let ids: Vec<i32> = (0..batch * seq)
        .map(|i| ((i * 37 + 11) % vocab) as i32)
        .collect();
    let type_ids: Vec<i32> = (0..batch * seq).map(|i| (i % 3 == 0) as i32).collect();
    let t = |v: &[f32], s: &[usize]| Tensor::from_f32(&gpu, v, s);
    let i =
        |v: &[i32]| Tensor::from_bytes(&gpu, bytemuck::cast_slice(v), &[batch, seq], DType::I32);
    let (tw, tp, tt, tids, ttids) = (
        t(&word, &[vocab, hidden])?,
        t(&pos, &[n_pos, hidden])?,
        t(&types, &[n_types, hidden])?,
        i(&ids)?,
        i(&type_ids)?,
    );
    let mut rec = gpu.recorder();
    let plain = embedding::embedding(&mut rec, &tids, &tw, Default::default())?;
    let bert = embedding::embedding(
        &mut rec,
        &tids,
        &tw,
        embedding::Extras {
            positions: Some(&tp),
            pos0,
            token_types: Some((&ttids, &tt)),
        },
    )?;
    rec.submit();
    let mut want_plain = Vec::new();
    let mut want_bert = Vec::new();
    for (k, &id) in ids.iter().enumerate() {
        let (id, ty, p) = (id as usize, type_ids[k] as usize, pos0 + k % seq);
        for j in 0..hidden {
            want_plain.push(word[id * hidden + j]);
            // f32, in BERT's order: (word + type) + position.
            want_bert.push((word[id * hidden + j] + types[ty * hidden + j]) + pos[p * hidden + j]);
        }
    }
    assert_eq!(plain.shape(), &[batch, seq, hidden]);
    assert_close(
        "embedding",
        &plain.to_f32_vec().await?,
        &want_plain,
        0.0,
        0.0,
    );
    assert_close(
        "embedding+pos+type",
        &bert.to_f32_vec().await?,
        &want_bert,
        0.0,
        0.0,
    );
    Ok(())
}
gpu_test!(embedding_gather_matches_reference, embeddings);

async fn pooling() -> Result<()> {
    let gpu = gpu().await?;
    let (batch, seq, hidden) = (3, 7, 65);
    let x = Rng::new(5).vec(batch * seq * hidden);
    // Row 0 all valid, row 1 padded after 4 tokens, row 2 fully masked (gives zeros, no NaN).
    let mask: Vec<i32> = (0..batch * seq)
        .map(|k| match k / seq {
            0 => 1,
            1 => (k % seq < 4) as i32,
            _ => 0,
        })
        .collect();
    let tx = Tensor::from_f32(&gpu, &x, &[batch, seq, hidden])?;
    let tm = Tensor::from_bytes(&gpu, bytemuck::cast_slice(&mask), &[batch, seq], DType::I32)?;
    let mut rec = gpu.recorder();
    let pooled = pool::mean_pool(&mut rec, &tx, &tm)?;
    let normed = norm::l2_normalize(&mut rec, &pooled, 1e-12)?;
    rec.submit();
    let mut want = vec![0f32; batch * hidden];
    for b in 0..batch {
        let count: f64 = (0..seq).map(|s| f64::from(mask[b * seq + s])).sum();
        for j in 0..hidden {
            let sum: f64 = (0..seq)
                .map(|s| f64::from(x[(b * seq + s) * hidden + j]) * f64::from(mask[b * seq + s]))
                .sum();
            want[b * hidden + j] = (sum / count.max(1e-9)) as f32;
        }
    }
    assert_close("mean_pool", &pooled.to_f32_vec().await?, &want, 1e-6, 1e-5);
    let want_norm = norm_ref(&want, hidden, "l2", &[], &[], 1e-12);
    assert_close(
        "mean_pool + l2",
        &normed.to_f32_vec().await?,
        &want_norm,
        1e-6,
        1e-5,
    );
    Ok(())
}
gpu_test!(masked_mean_pool_and_l2_match_reference, pooling);

/// f32 ⇄ f16 and bf16 → f16 on the GPU: exact where the value is representable, within one f16
/// ulp otherwise (WGSL lets an inexact conversion round to either neighbour).
async fn casts() -> Result<()> {
    use webgpu_infer::kernels::cast::{Cast, cast, to_f16, to_f32};
    let gpu = gpu().await?;
    for &len in LENGTHS {
        let mut x: Vec<f32> = Rng::new(len as u64 + 9)
            .vec(len)
            .iter()
            .map(|v| v * 100.0)
            .collect();
        // Specials: overflow to inf, a subnormal f16, exact values, negative zero.
        for (i, v) in [7e4f32, -7e4, 3e-6, 0.5, -0.0].into_iter().enumerate() {
            if i < len {
                x[i] = v;
            }
        }
        let tx = Tensor::from_f32(&gpu, &x, &[len])?;
        let bf: Vec<half::bf16> = x.iter().map(|&v| half::bf16::from_f32(v)).collect();
        let tbf = Tensor::from_bytes(&gpu, bytemuck::cast_slice(&bf), &[len], DType::F16)?;
        let mut rec = gpu.recorder();
        let h = to_f16(&mut rec, &tx)?;
        let back = to_f32(&mut rec, &h)?;
        let from_bf = cast(&mut rec, tbf.buffer(), &[len], Cast::Bf16ToF16)?;
        rec.submit();
        let got = h.to_f16_vec().await?;
        let got_bf = from_bf.to_f16_vec().await?;
        for i in 0..len {
            let want = f16::from_f32(x[i]);
            let want_bf = f16::from_f32(bf[i].to_f32());
            for (what, g, w) in [("f32→f16", got[i], want), ("bf16→f16", got_bf[i], want_bf)] {
                let ulps = (i32::from(g.to_bits() as i16) - i32::from(w.to_bits() as i16)).abs();
                assert!(ulps <= 1, "{what} len {len} element {i}: got {g}, want {w}");
            }
        }
        // f16 → f32 is exact.
        let want: Vec<f32> = got.iter().map(|h| h.to_f32()).collect();
        let back = back.to_f32_vec().await?;
        assert!(
            back.iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "f16→f32 len {len}"
        );
    }
    Ok(())
}
gpu_test!(f32_f16_bf16_casts, casts);
