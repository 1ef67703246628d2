//! Device acquisition, capabilities, tensors' round trip and their errors.
mod common;

use common::{Rng, gpu, log};
use half::f16;
use webgpu_infer::{DType, Error, Result, Tensor};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

async fn device_has_capabilities() -> Result<()> {
    let gpu = gpu().await?;
    let limits = gpu.limits();
    // WebGPU's guaranteed minimums: a device below them would be a bug in acquisition.
    assert!(limits.max_storage_buffer_binding_size >= 128 << 20);
    assert!(limits.max_compute_invocations_per_workgroup >= 256);
    assert!(limits.max_compute_workgroup_storage_size >= 16 << 10);
    let caps = gpu.capabilities();
    log(&format!("adapter: {} {caps:?}", gpu.adapter_name()));
    assert_eq!(
        caps.shader_f16,
        gpu.device().features().contains(wgpu::Features::SHADER_F16)
    );
    assert!(!gpu.adapter_name().is_empty());
    gpu.check()
}
gpu_test!(device_reports_limits_and_features, device_has_capabilities);

async fn round_trip_f32_and_f16() -> Result<()> {
    let gpu = gpu().await?;
    for len in [1usize, 3, 17, 63, 65, 129] {
        let data = Rng::new(len as u64).vec(len);
        let t = Tensor::from_f32(&gpu, &data, &[len])?;
        assert_eq!(t.to_f32_vec().await?, data, "f32 round trip of {len}");
        // f16 of odd length: the last write is padded to 4 bytes and the read trimmed back.
        let h: Vec<f16> = data.iter().map(|&v| f16::from_f32(v)).collect();
        let t = Tensor::from_f16(&gpu, &h, &[len])?;
        assert_eq!(t.dtype(), DType::F16);
        assert_eq!(t.to_f16_vec().await?, h, "f16 round trip of {len}");
    }
    Ok(())
}
gpu_test!(tensor_round_trip_odd_lengths, round_trip_f32_and_f16);

async fn tensor_errors() -> Result<()> {
    let gpu = gpu().await?;
    let err = Tensor::from_f32(&gpu, &[1.0; 5], &[2, 3]).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let t = Tensor::from_f32(&gpu, &[1.0; 6], &[2, 3])?;
    assert_eq!(t.reshape(&[3, 2])?.shape(), &[3, 2]);
    assert!(matches!(t.reshape(&[4, 2]), Err(Error::Shape { .. })));
    assert!(matches!(t.to_f16_vec().await, Err(Error::DType { .. })));
    // Past the adapter's buffer limits: refused with the limit named, before any allocation.
    let limit = gpu.limits().max_storage_buffer_binding_size;
    let too_many = (limit / 4 + 1) as usize;
    let err = Tensor::empty(&gpu, &[too_many], DType::F32).unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    assert!(err.to_string().contains("max"), "{err}");
    gpu.check()
}
gpu_test!(tensor_shape_and_limit_errors, tensor_errors);

/// A lost device (here destroyed on purpose) makes the next read-back fail with a typed error instead
/// of hanging or panicking.
async fn lost_device_is_an_error() -> Result<()> {
    let gpu = gpu().await?;
    let t = Tensor::from_f32(&gpu, &[1.0, 2.0], &[2])?;
    gpu.device().destroy();
    match t.to_f32_vec().await {
        Err(Error::DeviceLost { .. } | Error::Readback(_) | Error::Gpu(_)) => {}
        other => panic!("reading from a destroyed device gave {other:?}"),
    }
    assert!(gpu.check().is_err(), "the loss is remembered");
    // Later calls on the lost device fail too, with an error rather than a hang.
    let later = Tensor::from_f32(&gpu, &[3.0], &[1]);
    let later = match later {
        Ok(t) => t.to_f32_vec().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(later.is_err(), "a call after the loss succeeded");
    // A new device can be made, and works.
    let fresh = common::gpu().await?;
    let t = Tensor::from_f32(&fresh, &[1.0, 2.0], &[2])?;
    assert_eq!(t.to_f32_vec().await?, vec![1.0, 2.0]);
    Ok(())
}
gpu_test!(
    lost_device_fails_reads_with_an_error,
    lost_device_is_an_error
);

/// Where the device has no timestamp queries (browsers: not requested): asserts that `turn_on`
/// (turning a timing on) is refused with the feature named, and returns true; false (and nothing
/// called) where it has them.
fn refused_without_timestamps(
    gpu: &webgpu_infer::Gpu,
    turn_on: impl FnOnce() -> Result<()>,
) -> bool {
    if gpu
        .device()
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY)
    {
        return false;
    }
    let err = turn_on().unwrap_err();
    assert!(
        matches!(
            err,
            Error::MissingFeature {
                feature: "timestamp-query",
                ..
            }
        ),
        "{err}"
    );
    true
}

/// Profiling times each dispatch under its kernel's label, changes no result, and stops when turned
/// off. In browsers (no timestamp queries requested) it is refused with the feature named.
async fn profile_counts_dispatches() -> Result<()> {
    use webgpu_infer::kernels::{elementwise, matmul};
    let gpu = gpu().await?;
    if refused_without_timestamps(&gpu, || gpu.set_profiling(true)) {
        return gpu.check();
    }
    let (m, k, n) = (64, 96, 80);
    let mut rng = Rng::new(7);
    let (av, bv) = (rng.vec(m * k), rng.vec(k * n));
    let a = Tensor::from_f32(&gpu, &av, &[m, k])?;
    let b = Tensor::from_f32(&gpu, &bv, &[k, n])?;
    let run = async || -> Result<Vec<f32>> {
        let mut rec = gpu.recorder();
        let c = matmul::matmul(&mut rec, &a, &b, matmul::BLayout::KN)?;
        let mut d = elementwise::add(&mut rec, &c, &c)?;
        for _ in 0..2 {
            d = elementwise::add(&mut rec, &d, &c)?;
        }
        let e = elementwise::mul(&mut rec, &d, &c)?;
        rec.submit();
        e.to_f32_vec().await
    };
    let plain = run().await?;
    gpu.set_profiling(true)?;
    let profiled = run().await?;
    gpu.set_profiling(false)?;
    // The same kernels on the same inputs: bit for bit the same output.
    assert_eq!(plain, profiled);
    let kernels = gpu.take_profile().await?;
    log(&format!("{kernels:?}"));
    let count = |prefix: &str| -> u32 {
        kernels
            .iter()
            .filter(|k| k.kernel.starts_with(prefix))
            .map(|k| k.dispatches)
            .sum()
    };
    assert_eq!(count("matmul/"), 1, "{kernels:?}");
    assert_eq!(count("elementwise/"), 4, "{kernels:?}");
    assert_eq!(kernels.iter().map(|k| k.dispatches).sum::<u32>(), 5);
    // Times are GPU durations: not negative, and the matmul's (64×96×80) is not zero.
    assert!(kernels.iter().all(|k| k.ms >= 0.0), "{kernels:?}");
    assert!(
        kernels
            .iter()
            .any(|k| k.kernel.starts_with("matmul/") && k.ms > 0.0)
    );
    // Sorted, most time first.
    assert!(kernels.windows(2).all(|w| w[0].ms >= w[1].ms));
    // Off: nothing more is recorded.
    run().await?;
    assert!(gpu.take_profile().await?.is_empty());
    gpu.check()
}
gpu_test!(profile_times_each_dispatch, profile_counts_dispatches);

/// Pass timing (`Gpu::set_pass_timing`) gives one start and end a submitted recorder that dispatched
/// something, in submission order (each pass starts no earlier than the last one did, and ends no
/// earlier than it starts), changes no result, and stops when turned off. A recorder with nothing
/// recorded adds no entry. Refused with the feature named where timestamps are not offered.
async fn pass_timing_body() -> Result<()> {
    use webgpu_infer::kernels::elementwise;
    let gpu = gpu().await?;
    if refused_without_timestamps(&gpu, || gpu.set_pass_timing(true)) {
        return gpu.check();
    }
    let av = Rng::new(11).vec(4096);
    let a = Tensor::from_f32(&gpu, &av, &[4096])?;
    let run = async || -> Result<Vec<f32>> {
        let mut out = Vec::new();
        for _ in 0..3 {
            let mut rec = gpu.recorder();
            let b = elementwise::add(&mut rec, &a, &a)?;
            let c = elementwise::mul(&mut rec, &b, &a)?;
            rec.submit();
            out = c.to_f32_vec().await?;
        }
        gpu.recorder().submit(); // nothing recorded: no pass, no entry
        Ok(out)
    };
    let plain = run().await?;
    gpu.set_pass_timing(true)?;
    let timed = run().await?;
    gpu.set_pass_timing(false)?;
    assert_eq!(plain, timed);
    let passes = gpu.take_pass_times().await?;
    log(&format!("{passes:?}"));
    assert_eq!(passes.len(), 3, "{passes:?}");
    assert!(passes.iter().all(|p| p.end_ms >= p.start_ms), "{passes:?}");
    assert!(
        passes.windows(2).all(|w| w[1].start_ms >= w[0].start_ms),
        "{passes:?}"
    );
    run().await?;
    assert!(gpu.take_pass_times().await?.is_empty());
    gpu.check()
}
gpu_test!(pass_timing_times_each_submit, pass_timing_body);
