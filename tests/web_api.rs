//! The JavaScript-facing `Device` class, called as JS would call it (browser only).
#![cfg(target_arch = "wasm32")]
mod common;

use common::{Rng, assert_close, log, matmul_ref};
use js_sys::{Float32Array, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;
use webgpu_infer::web::Device;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn device_info_names_the_adapter() {
    let device = Device::create(None).await.expect("Device.create");
    let info = device.info();
    let get = |k: &str| Reflect::get(&info, &JsValue::from_str(k)).unwrap();
    let adapter = get("adapter").as_string().unwrap();
    log(&format!(
        "adapter {adapter}, architecture {:?}, software {:?}",
        get("architecture").as_string(),
        get("software").as_bool()
    ));
    assert!(!adapter.is_empty());
    assert!(get("shaderF16").as_bool().is_some());
    let limits = get("limits");
    let max_binding = Reflect::get(&limits, &"maxStorageBufferBindingSize".into())
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(max_binding >= (128 << 20) as f64);
}

#[wasm_bindgen_test]
async fn device_matmul_matches_cpu() {
    let device = Device::create(None).await.expect("Device.create");
    let (m, k, n) = (33, 65, 17);
    let mut rng = Rng::new(9);
    let (a, b) = (rng.vec(m * k), rng.vec(n * k));
    let c = device
        .matmul(
            Float32Array::from(&a[..]),
            Float32Array::from(&b[..]),
            m,
            k,
            n,
            Some(true),
        )
        .await
        .expect("matmul");
    let want = matmul_ref(&a, &b, 1, m, n, k, true, false);
    // Same tolerance argument as tests/kernels.rs (f32, K = 65).
    assert_close("Device.matmul", &c.to_vec(), &want, 1e-4, 1e-4);
}

#[wasm_bindgen_test]
async fn device_matmul_reports_shape_errors_as_js_errors() {
    let device = Device::create(None).await.expect("Device.create");
    let a = Float32Array::new_with_length(6);
    let err = device
        .matmul(a.clone(), a, 2, 3, 3, None)
        .await
        .expect_err("a 2x3 · 3x3 product needs 9 values of b, not 6");
    let message = Reflect::get(&err, &"message".into())
        .unwrap()
        .as_string()
        .unwrap();
    assert!(message.contains("bytes given"), "{message}");
}
