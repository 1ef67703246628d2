//! Flash attention against a CPU reference (f64, full score matrix): bidirectional with padding,
//! causal, grouped-query heads, a KV cache read in place up to kv_len, both kernels, odd sizes.
mod common;

use common::{Rng, assert_close, gpu, upload};
use webgpu_infer::kernels::attention::{Kernel, Options, attention};
use webgpu_infer::{DType, Gpu, Result, Tensor};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[derive(Clone, Copy, Debug)]
struct Case {
    batch: usize,
    q_len: usize,
    kv_len: usize,
    kv_cap: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    causal: bool,
    /// Row b keeps keys < kv_len - pad·b (a padding mask) when set.
    pad: Option<usize>,
    /// A sliding window: the query at position t sees keys > t - window.
    window: Option<usize>,
    /// Scores soft-capped: cap · tanh(score / cap).
    softcap: Option<f32>,
    /// The scores' scale (default 1/sqrt(head_dim)).
    scale: Option<f32>,
}

fn reference(c: &Case, q: &[f32], k: &[f32], v: &[f32], mask: &[i32]) -> Vec<f32> {
    let d = c.head_dim;
    let scale = c.scale.map_or(1.0 / (d as f64).sqrt(), f64::from);
    let mut out = vec![0f32; c.batch * c.q_len * c.heads * d];
    for b in 0..c.batch {
        for i in 0..c.q_len {
            for h in 0..c.heads {
                let kvh = h / (c.heads / c.kv_heads);
                let qi = ((b * c.q_len + i) * c.heads + h) * d;
                let keys: Vec<usize> = (0..c.kv_len)
                    .filter(|&j| !c.causal || j <= c.kv_len - c.q_len + i)
                    .filter(|&j| c.window.is_none_or(|w| j + w > c.kv_len - c.q_len + i))
                    .filter(|&j| mask.is_empty() || mask[b * c.kv_cap + j] != 0)
                    .collect();
                let scores: Vec<f64> = keys
                    .iter()
                    .map(|&j| {
                        let kj = ((b * c.kv_cap + j) * c.kv_heads + kvh) * d;
                        (0..d)
                            .map(|e| f64::from(q[qi + e]) * f64::from(k[kj + e]))
                            .sum::<f64>()
                            * scale
                    })
                    .map(|s| match c.softcap {
                        Some(cap) => f64::from(cap) * (s / f64::from(cap)).tanh(),
                        None => s,
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = w.iter().sum();
                for e in 0..d {
                    let o: f64 = keys
                        .iter()
                        .zip(&w)
                        .map(|(&j, &wj)| {
                            wj * f64::from(v[((b * c.kv_cap + j) * c.kv_heads + kvh) * d + e])
                        })
                        .sum();
                    out[qi + e] = if sum > 0.0 { (o / sum) as f32 } else { 0.0 };
                }
            }
        }
    }
    out
}

async fn run(gpu: &Gpu, c: Case, dtype: DType, variants: &[Kernel]) -> Result<()> {
    run_with(gpu, c, dtype, variants, Inputs::default()).await
}

/// How [`run_with`] gives the kernels q, k and v.
#[derive(Clone, Copy, Default)]
struct Inputs {
    /// Rounded to f16 before they are uploaded (for kernels that round f32 inputs to f16
    /// themselves: the reference then sees what they multiply).
    f16: bool,
    /// As views of one buffer (each starting at an aligned offset past the one before: what a
    /// stacked Q/K/V product gives), not tensors of their own.
    views: bool,
}

/// [`run`] with q, k and v given as `inputs` says.
async fn run_with(
    gpu: &Gpu,
    c: Case,
    dtype: DType,
    variants: &[Kernel],
    inputs: Inputs,
) -> Result<()> {
    let f16_inputs = inputs.f16;
    let mut rng = Rng::new((c.q_len * 1000 + c.kv_len * 10 + c.head_dim) as u64);
    let d = c.head_dim;
    // Queries scaled by 3 so that softmax is peaked enough for a wrong key to show.
    let mut q: Vec<f32> = rng
        .vec(c.batch * c.q_len * c.heads * d)
        .iter()
        .map(|x| x * 3.0)
        .collect();
    let mut k = rng.vec(c.batch * c.kv_cap * c.kv_heads * d);
    let mut v = rng.vec(c.batch * c.kv_cap * c.kv_heads * d);
    if f16_inputs {
        for x in q.iter_mut().chain(k.iter_mut()).chain(v.iter_mut()) {
            *x = half::f16::from_f32(*x).to_f32();
        }
    }
    let q_shape = [c.batch, c.q_len, c.heads, d];
    let kv_shape = [c.batch, c.kv_cap, c.kv_heads, d];
    let (tq, tk, tv) = if inputs.views {
        let [q_view, k_view, v_view] = views_of(gpu, dtype, [&mut q, &mut k, &mut v])?;
        (
            q_view.reshape(&q_shape)?,
            k_view.reshape(&kv_shape)?,
            v_view.reshape(&kv_shape)?,
        )
    } else {
        (
            upload(gpu, dtype, &mut q, &q_shape)?,
            upload(gpu, dtype, &mut k, &kv_shape)?,
            upload(gpu, dtype, &mut v, &kv_shape)?,
        )
    };
    let mask: Vec<i32> = match c.pad {
        None => vec![],
        Some(pad) => (0..c.batch * c.kv_cap)
            .map(|e| ((e % c.kv_cap) < c.kv_len - pad * (e / c.kv_cap)) as i32)
            .collect(),
    };
    let tmask = if mask.is_empty() {
        None
    } else {
        Some(Tensor::from_bytes(
            gpu,
            bytemuck::cast_slice(&mask),
            &[c.batch, c.kv_cap],
            DType::I32,
        )?)
    };
    let want = reference(&c, &q, &k, &v, &mask);
    for &variant in variants {
        // A fresh output: a pooled one could hold the last kernel's answer.
        gpu.trim_pool();
        let mut rec = gpu.recorder();
        let opts = Options {
            causal: c.causal,
            kv_len: Some(c.kv_len),
            mask: tmask.as_ref(),
            window: c.window,
            softcap: c.softcap,
            scale: c.scale,
            variant,
        };
        let out = attention(&mut rec, &tq, &tk, &tv, opts)?;
        rec.submit();
        // Outputs are convex combinations of values in [-1, 1]: f32 sums and exp() give ~1e-6; f16
        // storage of q, k, v is mirrored in the reference, leaving the f16 output rounding (2^-11).
        let t = if dtype == DType::F32 && !f16_inputs {
            1e-5
        } else {
            2e-3
        };
        assert_close(
            &format!(
                "attention {dtype:?} {variant:?} {c:?} views={}",
                inputs.views
            ),
            &out.to_f32_vec().await?,
            &want,
            t,
            0.0,
        );
    }
    Ok(())
}

/// `parts` uploaded into one buffer, each starting at the first multiple of the device's storage
/// offset alignment past the one before (rounded to `dtype` in place), and the views of them.
fn views_of(gpu: &Gpu, dtype: DType, parts: [&mut Vec<f32>; 3]) -> Result<[Tensor; 3]> {
    let size = if dtype == DType::F16 { 2 } else { 4 };
    let align = gpu.limits().min_storage_buffer_offset_alignment as usize / size;
    let starts: Vec<usize> = parts
        .iter()
        .scan(0, |at, p| {
            let start = *at;
            *at = (start + p.len()).next_multiple_of(align) + align;
            Some(start)
        })
        .collect();
    let total = starts[2] + parts[2].len();
    let mut all = vec![0.0f32; total];
    for (p, &start) in parts.iter().zip(&starts) {
        all[start..start + p.len()].copy_from_slice(p);
    }
    let whole = upload(gpu, dtype, &mut all, &[total])?;
    let mut views = Vec::new();
    for (p, &start) in parts.into_iter().zip(&starts) {
        // What the GPU sees (f16-rounded) is what the reference gets.
        let len = p.len();
        p.copy_from_slice(&all[start..start + len]);
        views.push(whole.narrow(start, len)?);
    }
    Ok(views.try_into().expect("three views"))
}

/// The prefill kernels that can run head_dim on this device: the one-row-a-thread kernel always, the
/// tiled ones for head_dim 32 and 64 where the device has the workgroup memory (and for the subgroup
/// variant, the subgroups) they need.
fn prefills(gpu: &Gpu, head_dim: usize) -> Vec<Kernel> {
    let mut variants = vec![Kernel::Prefill];
    if head_dim != 32 && head_dim != 64 {
        return variants;
    }
    let row = head_dim as u32 * 4;
    let limit = gpu.limits().max_compute_workgroup_storage_size;
    let caps = gpu.capabilities();
    if limit >= 96 * row + 8192 {
        variants.push(Kernel::PrefillTiled);
    }
    if caps.subgroups && caps.subgroup_min_size >= 8 && limit >= 128 * row + 8192 {
        variants.push(Kernel::PrefillTiledSubgroup);
    }
    if variants.len() < 3 {
        eprintln!(
            "attention: head_dim {head_dim}: {variants:?} only (workgroup memory {limit}, {caps:?})"
        );
    }
    variants
}

const fn case(
    batch: usize,
    q_len: usize,
    kv_len: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    causal: bool,
) -> Case {
    Case {
        batch,
        q_len,
        kv_len,
        kv_cap: kv_len,
        heads,
        kv_heads,
        head_dim,
        causal,
        pad: None,
        window: None,
        softcap: None,
        scale: None,
    }
}

async fn bidirectional_with_padding() -> Result<()> {
    let gpu = gpu().await?;
    for c in [
        Case {
            pad: Some(2),
            ..case(2, 7, 7, 3, 3, 64, false)
        },
        Case {
            pad: Some(30),
            ..case(2, 65, 65, 2, 2, 32, false)
        },
        case(1, 1, 1, 1, 1, 64, false),
        Case {
            pad: Some(1),
            ..case(3, 17, 17, 4, 4, 16, false)
        },
        // Two row blocks of the tiled kernel, four key tiles, the last partial; rows of padding.
        Case {
            pad: Some(37),
            ..case(2, 100, 100, 2, 1, 64, false)
        },
    ] {
        run(&gpu, c, DType::F32, &prefills(&gpu, c.head_dim)).await?;
    }
    Ok(())
}
gpu_test!(
    attention_bidirectional_padding_mask,
    bidirectional_with_padding
);

async fn causal_gqa() -> Result<()> {
    let gpu = gpu().await?;
    for c in [
        case(1, 17, 17, 9, 3, 64, true),
        case(2, 129, 129, 4, 2, 64, true),
        case(1, 70, 70, 2, 1, 128, true),
        case(1, 3, 3, 6, 3, 8, true),
        case(1, 200, 200, 2, 2, 32, true),
        // Gemma's head size: the prefill kernel's larger build.
        case(1, 70, 70, 2, 1, 256, true),
    ] {
        run(&gpu, c, DType::F32, &prefills(&gpu, c.head_dim)).await?;
        if gpu.capabilities().shader_f16 {
            run(&gpu, c, DType::F16, &prefills(&gpu, c.head_dim)).await?;
        }
    }
    Ok(())
}
gpu_test!(attention_causal_grouped_query, causal_gqa);

/// Few queries over a cache that is longer than what is valid: both kernels, f32 and f16.
async fn kv_cache_decode() -> Result<()> {
    let gpu = gpu().await?;
    let mut dtypes = vec![DType::F32];
    if gpu.capabilities().shader_f16 {
        dtypes.push(DType::F16);
    }
    for dtype in dtypes {
        for c in [
            Case {
                kv_cap: 40,
                ..case(1, 1, 23, 9, 3, 64, true)
            },
            Case {
                kv_cap: 600,
                ..case(2, 3, 517, 4, 2, 64, true)
            },
            Case {
                kv_cap: 300,
                ..case(1, 1, 300, 2, 1, 128, true)
            },
            Case {
                kv_cap: 64,
                ..case(1, 5, 33, 2, 2, 32, false)
            },
            // 30 key ranges of 64, the last one partial; grouped heads as SmolLM2's.
            Case {
                kv_cap: 2100,
                ..case(1, 1, 1900, 9, 3, 64, true)
            },
        ] {
            let mut variants = vec![Kernel::Decode, Kernel::DecodeSplit];
            variants.extend(prefills(&gpu, c.head_dim));
            run(&gpu, c, dtype, &variants).await?;
        }
    }
    Ok(())
}
gpu_test!(attention_kv_cache_decode_and_prefill_agree, kv_cache_decode);

/// Q, K and V as views of one buffer at aligned offsets (BERT's stacked Q/K/V product gives them so):
/// every kernel binds each from its first element. A view the device cannot bind there is refused.
async fn views_of_one_buffer() -> Result<()> {
    let gpu = gpu().await?;
    let views = Inputs {
        views: true,
        ..Default::default()
    };
    let mut dtypes = vec![DType::F32];
    if gpu.capabilities().shader_f16 {
        dtypes.push(DType::F16);
    }
    for dtype in dtypes {
        // MiniLM's shape (12 heads of 32, padding), and a decode past the split's threshold.
        let encoder = Case {
            pad: Some(9),
            ..case(2, 40, 40, 12, 12, 32, false)
        };
        run_with(&gpu, encoder, dtype, &prefills(&gpu, 32), views).await?;
        let decode = Case {
            kv_cap: 320,
            ..case(1, 1, 300, 9, 3, 64, true)
        };
        let variants = [Kernel::Auto, Kernel::Decode, Kernel::DecodeSplit];
        run_with(&gpu, decode, dtype, &variants, views).await?;
        let caps = gpu.capabilities();
        if dtype == DType::F16 && caps.cooperative_matrix && caps.subgroups {
            run_with(&gpu, encoder, dtype, &[Kernel::PrefillCoop], views).await?;
        }
    }
    // One element into its buffer: not a bindable offset.
    let x = Tensor::from_f32(&gpu, &[0.5; 65], &[65])?;
    let q = x.narrow(1, 64)?.reshape(&[1, 2, 1, 32])?;
    let got = attention(&mut gpu.recorder(), &q, &q, &q, Options::default());
    assert!(
        matches!(&got, Err(webgpu_infer::Error::Shape { message, .. })
            if message.contains("minStorageBufferOffsetAlignment")),
        "a misaligned view gave {:?}",
        got.map(|t| t.shape().to_vec())
    );
    Ok(())
}
gpu_test!(attention_reads_views_of_one_buffer, views_of_one_buffer);

/// Gemma 2/3's attention: a sliding window (keys more than `window - 1` positions back are not seen)
/// and soft-capped scores (Gemma 2: 50), in every kernel, prefill and decode, windows shorter and
/// longer than the tiles and key ranges, with the scores large enough that the cap bends them.
async fn sliding_window_and_softcap() -> Result<()> {
    let gpu = gpu().await?;
    for (c, decode) in [
        // Prefill: windows inside one tile, across tiles, one key; with and without a cap.
        (
            Case {
                window: Some(5),
                ..case(1, 40, 40, 4, 2, 64, true)
            },
            false,
        ),
        (
            Case {
                window: Some(33),
                softcap: Some(2.0),
                ..case(1, 130, 130, 2, 1, 64, true)
            },
            false,
        ),
        (
            Case {
                window: Some(1),
                ..case(1, 9, 9, 2, 2, 32, true)
            },
            false,
        ),
        (
            Case {
                softcap: Some(1.5),
                ..case(2, 21, 21, 3, 3, 64, true)
            },
            false,
        ),
        (
            Case {
                window: Some(7),
                softcap: Some(3.0),
                ..case(1, 70, 70, 2, 1, 128, true)
            },
            false,
        ),
        // Decode over a long cache: the window inside one key range, and spanning several.
        (
            Case {
                kv_cap: 1100,
                window: Some(100),
                ..case(1, 1, 1000, 4, 2, 64, true)
            },
            true,
        ),
        (
            Case {
                kv_cap: 1100,
                window: Some(700),
                softcap: Some(2.0),
                ..case(1, 2, 1050, 2, 1, 64, true)
            },
            true,
        ),
        (
            Case {
                kv_cap: 64,
                window: Some(4),
                softcap: Some(1.0),
                ..case(1, 3, 50, 2, 2, 32, true)
            },
            true,
        ),
    ] {
        let mut variants = prefills(&gpu, c.head_dim);
        if decode {
            variants.extend([Kernel::Decode, Kernel::DecodeSplit]);
        }
        run(&gpu, c, DType::F32, &variants).await?;
    }
    Ok(())
}
gpu_test!(
    attention_sliding_window_and_softcap,
    sliding_window_and_softcap
);

/// The tensor-core kernel ([`Kernel::PrefillCoop`], head_dim 64 or 32, native devices with
/// cooperative matrices) against the f64 reference in every mode it serves: padding masks, causal
/// grouped-query heads, a cache longer than what is valid, rows and keys that end mid-tile, sliding
/// windows across tiles, a soft cap, scores spread wide enough that rows' maxima keep moving;
/// `Kernel::Auto` picks it there for f16. Elsewhere asking for it is a typed error, not a wrong
/// answer. f16 inputs, and f32 ones (which the kernel rounds to f16 as it stages them: the test
/// rounds them before uploading, so the reference multiplies the same numbers). Head_dim 32 (as
/// MiniLM's 12 heads of 32): padded batches, causal grouped-query heads, a window.
/// Tolerance as the other f16 kernels' (2e-3): the probabilities' rounding to f16 for P·V moves an
/// output by at most 2⁻¹¹ of the values' range ([-1, 1]), an f16 output's rounding as much again.
async fn tensor_core_prefill() -> Result<()> {
    let gpu = gpu().await?;
    let caps = gpu.capabilities();
    if !(caps.cooperative_matrix && caps.subgroups) {
        let mut rng = Rng::new(5);
        let mut x = rng.vec(64 * 64);
        let t = upload(&gpu, DType::F32, &mut x, &[1, 64, 1, 64])?;
        let opts = Options {
            variant: Kernel::PrefillCoop,
            ..Default::default()
        };
        let got = attention(&mut gpu.recorder(), &t, &t, &t, opts);
        assert!(
            got.is_err(),
            "Kernel::PrefillCoop without tensor cores gave {:?}",
            got.map(|t| t.shape().to_vec())
        );
        eprintln!(
            "attention: no cooperative matrices here ({caps:?}); the tensor-core kernel was not run"
        );
        return Ok(());
    }
    for c in [
        Case {
            pad: Some(37),
            ..case(2, 100, 100, 2, 1, 64, false)
        },
        case(1, 17, 17, 9, 3, 64, true),
        case(1, 64, 64, 2, 1, 64, true),
        // Scores spread ~16× wider than 1/sqrt(d) gives: rows' maxima keep moving (the outputs
        // rescaled mid-range).
        Case {
            scale: Some(2.0),
            ..case(1, 300, 600, 2, 1, 64, true)
        },
        Case {
            kv_cap: 256,
            ..case(2, 3, 200, 2, 2, 64, false)
        },
        case(2, 129, 129, 4, 2, 64, true),
        case(1, 256, 256, 2, 2, 64, false),
        Case {
            kv_cap: 600,
            ..case(2, 70, 517, 4, 2, 64, true)
        },
        Case {
            window: Some(33),
            softcap: Some(2.0),
            ..case(1, 130, 130, 2, 1, 64, true)
        },
        Case {
            window: Some(100),
            kv_cap: 400,
            ..case(1, 200, 333, 3, 3, 64, true)
        },
        Case {
            pad: Some(41),
            ..case(3, 128, 128, 4, 4, 32, false)
        },
        case(1, 70, 70, 4, 2, 32, true),
        Case {
            window: Some(50),
            kv_cap: 300,
            ..case(2, 90, 211, 2, 1, 32, true)
        },
    ] {
        run(&gpu, c, DType::F16, &[Kernel::PrefillCoop, Kernel::Auto]).await?;
        let f16_inputs = Inputs {
            f16: true,
            ..Default::default()
        };
        run_with(&gpu, c, DType::F32, &[Kernel::PrefillCoop], f16_inputs).await?;
    }
    Ok(())
}
gpu_test!(attention_tensor_cores, tensor_core_prefill);

/// A Q8_0 matrix `[n, k]` made for the test: per block of 32 a scale of 2^-7 (exact in f16) and
/// int8 values from `rng`; returns the blocks and the matrix they stand for.
fn q8_0_matrix(rng: &mut Rng, n: usize, k: usize) -> (Vec<u8>, Vec<f32>) {
    let scale = half::f16::from_f32(1.0 / 128.0);
    let mut bytes = Vec::new();
    let mut values = Vec::new();
    for _ in 0..n * k / 32 {
        bytes.extend_from_slice(&scale.to_le_bytes());
        for _ in 0..32 {
            let q = (rng.next_f32() * 127.0).round() as i8;
            bytes.push(q as u8);
            values.push(scale.to_f32() * f32::from(q));
        }
    }
    (bytes, values)
}

/// Decoding's attention merged into its out-projection (`decode_partials`, then
/// `quant::gemv_merged`, which the GPU decoder runs): bit for bit what the split decode and then the
/// cooperative GEMV give (the same operations in the same order), and against the f64 reference
/// (attention, the Q8_0 product, the residual); f32 and f16, from the first cache length that
/// splits (129 keys: 3 ranges of 64) to 30 ranges, SmolLM2's heads among them, an output count that
/// is not a multiple of the GEMV's 8 rows.
async fn decode_merged_out_projection() -> Result<()> {
    use webgpu_infer::kernels::attention::decode_partials;
    use webgpu_infer::kernels::quant::{self, GemvOptions};
    use webgpu_infer::{QTensor, QuantType};
    let gpu = gpu().await?;
    let mut dtypes = vec![DType::F32];
    if gpu.capabilities().shader_f16 {
        dtypes.push(DType::F16);
    }
    for dtype in dtypes {
        for (kv_len, heads, kv_heads, d, n) in [
            (129, 9, 3, 64, 576),
            (200, 9, 3, 64, 100),
            (517, 4, 2, 128, 256),
            (300, 2, 1, 32, 24),
            (1900, 9, 3, 64, 576),
        ] {
            let c = Case {
                kv_cap: kv_len + 7,
                ..case(1, 1, kv_len, heads, kv_heads, d, true)
            };
            let what = format!("merged out-projection {dtype:?} {c:?} n {n}");
            let mut rng = Rng::new((kv_len * 10 + n) as u64);
            let mut q: Vec<f32> = rng.vec(heads * d).iter().map(|x| x * 3.0).collect();
            let mut k = rng.vec(c.kv_cap * kv_heads * d);
            let mut v = rng.vec(c.kv_cap * kv_heads * d);
            let mut res = rng.vec(n);
            let tq = upload(&gpu, dtype, &mut q, &[1, 1, heads, d])?;
            let tk = upload(&gpu, dtype, &mut k, &[1, c.kv_cap, kv_heads, d])?;
            let tv = upload(&gpu, dtype, &mut v, &[1, c.kv_cap, kv_heads, d])?;
            let tres = upload(&gpu, dtype, &mut res, &[1, n])?;
            let (blocks, wf) = q8_0_matrix(&mut rng, n, heads * d);
            let w = QTensor::from_blocks(&gpu, &blocks, &[n, heads * d], QuantType::Q8_0)?;
            let opts = Options {
                causal: true,
                kv_len: Some(kv_len),
                ..Default::default()
            };
            let mut rec = gpu.recorder();
            let parts = decode_partials(&mut rec, &tq, &tk, &tv, opts)?.expect("a split decode");
            let merged = quant::gemv_merged(&mut rec, &parts, &w, Some(&tres))?;
            let split = Options {
                variant: Kernel::DecodeSplit,
                ..opts
            };
            let a = attention(&mut rec, &tq, &tk, &tv, split)?.reshape(&[1, heads * d])?;
            let gemv = GemvOptions {
                residual: Some(&tres),
                variant: quant::Kernel::Cooperative,
                ..Default::default()
            };
            let composed = quant::gemv_with(&mut rec, &a, &w, gemv)?;
            rec.submit();
            let got = merged.to_f32_vec().await?;
            assert_eq!(got, composed.to_f32_vec().await?, "{what}: bit for bit");
            let mut att = reference(&c, &q, &k, &v, &[]);
            if dtype == DType::F16 {
                att.iter_mut()
                    .for_each(|x| *x = half::f16::from_f32(*x).to_f32());
            }
            let kk = heads * d;
            let want: Vec<f32> = (0..n)
                .map(|j| {
                    let dot: f64 = (0..kk)
                        .map(|e| f64::from(att[e]) * f64::from(wf[j * kk + e]))
                        .sum();
                    (dot + f64::from(res[j])) as f32
                })
                .collect();
            // An attention output off by ε (1e-5 in f32, the attention tests' bound; one f16 step,
            // 2^-11 ≤ 4.9e-4, in f16) moves an output by at most ε · Σ|w| of its row; plus the
            // product's own f32 sums (1e-4) and, in f16, the output's rounding (2^-11 relative).
            let row_abs = (0..n)
                .map(|j| {
                    wf[j * kk..(j + 1) * kk]
                        .iter()
                        .map(|w| w.abs())
                        .sum::<f32>()
                })
                .fold(0f32, f32::max);
            let (eps, rtol) = if dtype == DType::F32 {
                (1e-5, 0.0)
            } else {
                (4.9e-4, 4.9e-4)
            };
            assert_close(&what, &got, &want, eps * row_abs + 1e-4, rtol);
        }
    }
    // Not a split decode: two query rows, or no more than 128 keys. Refused: a weight whose inputs
    // are not heads × head_dim; more ranges than the merge holds (16 heads × 66 > 1024).
    let mut rng = Rng::new(7);
    let (blocks, _) = q8_0_matrix(&mut rng, 8, 64);
    let w = QTensor::from_blocks(&gpu, &blocks, &[8, 64], QuantType::Q8_0)?;
    let kv = Tensor::from_f32(&gpu, &rng.vec(4200 * 64), &[1, 4200, 1, 64])?;
    let kv_len = |n| Options {
        causal: true,
        kv_len: Some(n),
        ..Default::default()
    };
    let mut rec = gpu.recorder();
    let q2 = Tensor::from_f32(&gpu, &rng.vec(2 * 2 * 64), &[1, 2, 2, 64])?;
    assert!(decode_partials(&mut rec, &q2, &kv, &kv, kv_len(300))?.is_none());
    let q = Tensor::from_f32(&gpu, &rng.vec(2 * 64), &[1, 1, 2, 64])?;
    assert!(decode_partials(&mut rec, &q, &kv, &kv, kv_len(128))?.is_none());
    let parts = decode_partials(&mut rec, &q, &kv, &kv, kv_len(129))?.expect("a split decode");
    let err = quant::gemv_merged(&mut rec, &parts, &w, None).unwrap_err();
    assert!(err.to_string().contains("heads"), "{err}");
    let q16 = Tensor::from_f32(&gpu, &rng.vec(16 * 64), &[1, 1, 16, 64])?;
    let parts = decode_partials(&mut rec, &q16, &kv, &kv, kv_len(4097))?.expect("a split decode");
    let (blocks, _) = q8_0_matrix(&mut rng, 8, 16 * 64);
    let w16 = QTensor::from_blocks(&gpu, &blocks, &[8, 16 * 64], QuantType::Q8_0)?;
    let err = quant::gemv_merged(&mut rec, &parts, &w16, None).unwrap_err();
    assert!(err.to_string().contains("1024"), "{err}");
    rec.submit();
    gpu.check()
}
gpu_test!(
    attention_decode_merged_out_projection,
    decode_merged_out_projection
);
