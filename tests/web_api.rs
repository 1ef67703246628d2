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
    device.reset_stats();
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
    // JS → GPU → JS: nothing went through WASM memory.
    let stats = device.stats();
    let wasm_in = Reflect::get(&stats, &"wasmBytesIn".into())
        .unwrap()
        .as_f64();
    assert_eq!(wasm_in, Some(0.0));
    // Same tolerance argument as tests/kernels.rs (f32, K = 65).
    assert_close("Device.matmul", &c.to_vec(), &want, 1e-4, 1e-4);
}

/// `{ profile: true }`: with `timestamp-query` on the adapter, a profiled matmul shows up in
/// `takeProfile()` under the matmul shader; without it, `setProfiling(true)` throws and says what is
/// missing. A device created without the option never has timestamps.
#[wasm_bindgen_test]
async fn profiling_devices_time_kernels() {
    let gpu_opts = || {
        let o = js_sys::Object::new();
        Reflect::set(&o, &"backend".into(), &"gpu".into()).unwrap();
        o
    };
    let plain = Device::create(Some(gpu_opts()))
        .await
        .expect("Device.create");
    assert!(
        plain.set_profiling(true).is_err(),
        "no timestamps unless asked"
    );
    let opts = gpu_opts();
    Reflect::set(&opts, &"profile".into(), &JsValue::TRUE).unwrap();
    let device = Device::create(Some(opts)).await.expect("Device.create");
    let features = Reflect::get(&device.info(), &"features".into()).unwrap();
    let has = js_sys::Array::from(&features)
        .iter()
        .any(|f| f.as_string().is_some_and(|f| f.contains("TIMESTAMP_QUERY")));
    log(&format!("timestamp-query: {has}"));
    let Ok(()) = device.set_profiling(true) else {
        assert!(
            !has,
            "setProfiling refused although the device has timestamp-query"
        );
        return;
    };
    let (m, k, n) = (33, 65, 17);
    let mut rng = Rng::new(3);
    let (a, b) = (rng.vec(m * k), rng.vec(k * n));
    let c = device
        .matmul(
            Float32Array::from(&a[..]),
            Float32Array::from(&b[..]),
            m,
            k,
            n,
            None,
        )
        .await
        .expect("profiled matmul");
    assert_close(
        "profiled matmul",
        &c.to_vec(),
        &matmul_ref(&a, &b, 1, m, n, k, false, false),
        1e-4,
        1e-4,
    );
    device.set_profiling(false).unwrap();
    let profile = device.take_profile().await.expect("takeProfile");
    let kernels: Vec<(String, f64, f64)> = profile
        .iter()
        .map(|k| {
            let get = |name: &str| Reflect::get(&k, &name.into()).unwrap();
            (
                get("kernel").as_string().unwrap(),
                get("dispatches").as_f64().unwrap(),
                get("ms").as_f64().unwrap(),
            )
        })
        .collect();
    log(&format!("{kernels:?}"));
    let (_, dispatches, ms) = kernels
        .iter()
        .find(|(name, _, _)| name.starts_with("matmul/"))
        .expect("the matmul in the profile");
    assert_eq!(*dispatches, 1.0);
    assert!(*ms >= 0.0 && ms.is_finite());
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

// ---- the bridge from JS ----

use std::cell::Cell;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use webgpu_infer::bridge::web::{Source, load};
use webgpu_infer::{Error, Gpu};

const MINILM_URL: &str = "/models/all-MiniLM-L6-v2/model.safetensors";

#[wasm_bindgen_test]
async fn abort_signal_stops_the_load_and_frees_its_buffers() {
    let gpu = Gpu::new().await.unwrap();
    let live = gpu.stats().live_buffers;
    let controller = web_sys::AbortController::new().unwrap();
    let signal = controller.signal();
    let mut calls = 0;
    let result = load(
        &gpu,
        Source::Url(MINILM_URL.into()),
        Some(&signal),
        &mut |p| {
            calls += 1;
            // Abort part-way through the data, after some tensors were created.
            if p.bytes_done > 20_000_000 {
                controller.abort();
            }
        },
    )
    .await;
    assert!(
        matches!(result, Err(Error::Aborted { .. })),
        "{:?}",
        result.err()
    );
    assert!(calls > 0);
    assert_eq!(
        gpu.stats().live_buffers,
        live,
        "buffers of the aborted load were freed"
    );
}

#[wasm_bindgen_test]
async fn http_error_status_is_reported() {
    let gpu = Gpu::new().await.unwrap();
    let result = load(
        &gpu,
        Source::Url("/models/no-such-model.safetensors".into()),
        None,
        &mut |_| {},
    )
    .await;
    match result {
        Err(Error::Http { status: 404, url }) => assert!(url.contains("no-such-model")),
        other => panic!("expected HTTP 404, got {:?}", other.err()),
    }
}

#[wasm_bindgen_test]
async fn blob_and_array_buffer_sources_load() {
    let gpu = Gpu::new().await.unwrap();
    let image = common::read_asset("tests/fixtures/sharded/model-00001-of-00002.safetensors").await;
    let bytes = js_sys::Uint8Array::from(&image[..]);
    let parts = js_sys::Array::of1(&bytes);
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap();
    for source in [Source::Blob(blob), Source::Bytes(bytes.clone())] {
        let weights = load(&gpu, source, None, &mut |_| {}).await.unwrap();
        common::check_against_file(&weights, &image).await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn load_weights_from_js_reads_back_as_views() {
    let device = Device::create(None).await.expect("Device.create");
    device.reset_stats();
    let progress_calls = Rc::new(Cell::new(0u32));
    let counter = Rc::clone(&progress_calls);
    let on_progress = Closure::<dyn FnMut(JsValue)>::new(move |p: JsValue| {
        let done = Reflect::get(&p, &"bytesDone".into())
            .unwrap()
            .as_f64()
            .unwrap();
        let total = Reflect::get(&p, &"bytesTotal".into())
            .unwrap()
            .as_f64()
            .unwrap();
        assert!(done <= total);
        counter.set(counter.get() + 1);
    });
    let options = js_sys::Object::new();
    Reflect::set(
        &options,
        &"onProgress".into(),
        on_progress.as_ref().unchecked_ref(),
    )
    .unwrap();
    let weights = device
        .load_weights(MINILM_URL.into(), Some(options))
        .await
        .expect("loadWeights");
    assert!(progress_calls.get() > 1);
    assert_eq!(weights.size(), 104);
    let stats = webgpu_infer::web::stats();
    let wasm_in = Reflect::get(&stats, &"wasmBytesIn".into())
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(wasm_in <= 11_416.0, "wasmBytesIn {wasm_in}");

    let name = "embeddings.LayerNorm.weight";
    let data = weights.read(name).await.expect("read");
    let values: js_sys::Float32Array = data.data().dyn_into().expect("a Float32Array");
    assert_eq!(values.length(), 384);
    // Reading through the view put nothing into WASM memory.
    let stats = device.stats();
    let wasm_after = Reflect::get(&stats, &"wasmBytesIn".into())
        .unwrap()
        .as_f64()
        .unwrap();
    assert_eq!(wasm_after, wasm_in);
    let image = common::read_asset(MINILM_URL.trim_start_matches('/')).await;
    let file = safetensors::SafeTensors::deserialize(&image).unwrap();
    let want: Vec<f32> = bytemuck::pod_collect_to_vec(file.tensor(name).unwrap().data());
    assert_eq!(values.to_vec(), want);
    let info = weights.info(name).unwrap();
    assert_eq!(
        Reflect::get(&info, &"dtype".into())
            .unwrap()
            .as_string()
            .as_deref(),
        Some("f32")
    );
    assert!(weights.info("nope").is_err());
}

#[wasm_bindgen_test]
async fn embedder_from_js_matches_goldens() {
    use webgpu_infer::web::{Embedder, similarity};
    let golden: serde_json::Value =
        serde_json::from_slice(&common::read_asset("tests/goldens/all-MiniLM-L6-v2.json").await)
            .unwrap();
    let want =
        |i: usize| -> Vec<f32> { serde_json::from_value(golden["embeddings"][i].clone()).unwrap() };
    let calls = Rc::new(Cell::new(0u32));
    let counter = Rc::clone(&calls);
    let on_progress =
        Closure::<dyn FnMut(JsValue)>::new(move |_p: JsValue| counter.set(counter.get() + 1));
    let options = js_sys::Object::new();
    Reflect::set(
        &options,
        &"onProgress".into(),
        on_progress.as_ref().unchecked_ref(),
    )
    .unwrap();
    let e = Embedder::load("/models/all-MiniLM-L6-v2".into(), Some(options))
        .await
        .expect("Embedder.load");
    assert!(calls.get() > 1, "progress was reported");
    assert_eq!((e.dims(), e.max_seq_length()), (384, 256));
    let texts = vec![
        golden["texts"][2].as_str().unwrap().to_string(),
        golden["texts"][0].as_str().unwrap().to_string(),
    ];
    let out = e.embed(texts).await.expect("embed");
    let a: Vec<f32> = out.get(0).dyn_into::<Float32Array>().unwrap().to_vec();
    let b: Vec<f32> = out.get(1).dyn_into::<Float32Array>().unwrap().to_vec();
    // Same tolerance as tests/bert.rs.
    assert!(similarity(&a, &want(2)).unwrap() >= 0.9999);
    assert!(similarity(&b, &want(0)).unwrap() >= 0.9999);
    assert!(a.iter().zip(&want(2)).all(|(x, y)| (x - y).abs() <= 1e-4));
    assert!(
        similarity(&a, &b[..3]).is_err(),
        "vectors of different lengths are refused"
    );
    let missing = Embedder::load("/models/no-such-model/".into(), None).await;
    let message = Reflect::get(
        &missing.err().expect("a missing model fails"),
        &"message".into(),
    )
    .unwrap();
    assert!(message.as_string().unwrap().contains("404"), "{message:?}");
}

fn backend(name: &str) -> js_sys::Object {
    let o = js_sys::Object::new();
    Reflect::set(&o, &"backend".into(), &name.into()).unwrap();
    o
}

/// The CPU backend through the JS API (issue #18): `backend: "auto"` on this software adapter places
/// the embedder on the CPU and says why; its weights are in WASM memory (`hostWeightBytes`, one copy
/// of the file, freed with the model) and nothing goes to the GPU; the vectors match the goldens
/// (tests/bert.rs's bound); a device created with `backend: "cpu"` has no adapter, refuses what needs
/// one by name, and a backend that does not exist is refused.
#[wasm_bindgen_test]
async fn embedder_on_the_cpu_backend() {
    use webgpu_infer::web::{Embedder, stats};
    let field = |k: &str| Reflect::get(&stats(), &k.into()).unwrap().as_f64().unwrap();
    let golden: serde_json::Value =
        serde_json::from_slice(&common::read_asset("tests/goldens/all-MiniLM-L6-v2.json").await)
            .unwrap();
    let (held, written) = (field("hostWeightBytes"), field("hostToGpuBytes"));
    let e = Embedder::load("/models/all-MiniLM-L6-v2/".into(), None)
        .await
        .expect("Embedder.load");
    log(&format!("auto: {} ({})", e.backend(), e.backend_reason()));
    assert_eq!(e.backend(), "cpu", "SwiftShader is a software adapter");
    assert!(
        e.backend_reason().contains("software adapter"),
        "{}",
        e.backend_reason()
    );
    let file = common::read_asset("models/all-MiniLM-L6-v2/model.safetensors")
        .await
        .len() as f64;
    assert_eq!(field("hostWeightBytes") - held, (file / 4.0).ceil() * 4.0);
    let texts = vec![golden["texts"][3].as_str().unwrap().to_string()];
    let out = e.embed(texts).await.expect("embed");
    let got: Vec<f32> = out.get(0).dyn_into::<Float32Array>().unwrap().to_vec();
    let want: Vec<f32> = serde_json::from_value(golden["embeddings"][3].clone()).unwrap();
    let max_diff = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    log(&format!(
        "cpu backend in the browser: max |diff| {max_diff:.2e}"
    ));
    assert!(max_diff <= 5e-6, "max |diff| {max_diff}");
    assert_eq!(field("hostToGpuBytes"), written, "nothing went to the GPU");
    drop(e);
    assert_eq!(field("hostWeightBytes"), held, "freed with the model");

    let device = Device::create(Some(backend("cpu")))
        .await
        .expect("Device.create");
    assert_eq!(device.backend(), "cpu");
    let info = device.info();
    let adapter = Reflect::get(&info, &"adapter".into())
        .unwrap()
        .as_string()
        .unwrap();
    assert!(adapter.starts_with("CPU"), "{adapter}");
    // A GGUF generator loads on the CPU backend there.
    let g = device
        .load_generator(
            JsValue::from_str("/tests/fixtures/tiny-gguf/tiny-kquants.gguf"),
            None,
        )
        .await
        .expect("loadGenerator on a CPU device");
    assert_eq!(g.backend(), "cpu");
    drop(g);
    // So does a classifier, whatever the image: pixels read through a canvas (an ImageBitmap) or an
    // ImageData's own bytes give the PyTorch goldens' top-5.
    let c = device
        .load_classifier("/models/efficientnet-lite0/".into(), None)
        .await
        .expect("loadClassifier on a CPU device");
    assert_eq!(c.backend(), "cpu");
    let goldens: serde_json::Value =
        serde_json::from_slice(&common::read_asset("tests/goldens/efficientnet_lite0.json").await)
            .unwrap();
    let cat = goldens["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["image"] == "cat.png")
        .unwrap();
    let want: Vec<u32> = cat["top5"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["index"].as_u64().unwrap() as u32)
        .collect();
    let png = common::read_asset("tests/fixtures/images/cat.png").await;
    let (rgba, w, h) = common::web::decode_rgba(&png).await;
    let data =
        web_sys::ImageData::new_with_u8_clamped_array_and_sh(wasm_bindgen::Clamped(&rgba), w, h)
            .unwrap();
    let global = js_sys::global();
    let create: js_sys::Function = Reflect::get(&global, &"createImageBitmap".into())
        .unwrap()
        .into();
    let promise: js_sys::Promise = create.call1(&global, &data).unwrap().into();
    let bitmap = wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
    for image in [JsValue::from(data), bitmap] {
        let top = c
            .classify(image, Some(5))
            .await
            .expect("classify on the CPU");
        let got: Vec<u32> = top
            .iter()
            .map(|p| Reflect::get(&p, &"index".into()).unwrap().as_f64().unwrap() as u32)
            .collect();
        assert_eq!(got, want, "top-5 of cat.png on the CPU backend");
    }
    drop(c);
    cpu_device_upscales(&device).await;
    // What only a GPU does is refused by name.
    let refused = device
        .load_weights("/no-such-weights.safetensors".into(), None)
        .await
        .err()
        .expect("loadWeights needs WebGPU");
    let message = Reflect::get(&refused, &"message".into())
        .unwrap()
        .as_string()
        .unwrap();
    assert!(message.contains("loadWeights needs WebGPU"), "{message}");
    let e = device
        .load_embedder("/models/all-MiniLM-L6-v2/".into(), None)
        .await
        .expect("loadEmbedder on a CPU device");
    assert_eq!(e.backend(), "cpu");
    let bad = Device::create(Some(backend("tpu")))
        .await
        .err()
        .expect("no such backend");
    let message = Reflect::get(&bad, &"message".into())
        .unwrap()
        .as_string()
        .unwrap();
    assert!(
        message.contains("\"auto\", \"gpu\" or \"cpu\""),
        "{message}"
    );
}

/// An upscaler on a CPU device: the top-left 32×24 pixels of the package's fixture as an `ImageData`
/// give an `ImageData` twice the size whose pixels away from the crop's right and bottom edges (where
/// the crop cut off the network's 10-pixel context) are the package's own 2× sample's, within one
/// step (the sums run in another order than TensorFlow.js's); `upscaleToCanvas` draws the same pixels
/// into an `OffscreenCanvas` through its 2D context.
async fn cpu_device_upscales(device: &Device) {
    use wasm_bindgen::JsCast;
    let u = device
        .load_upscaler("/models/esrgan-slim/x2/".into(), None)
        .await
        .expect("loadUpscaler on a CPU device");
    assert_eq!(u.backend(), "cpu");
    let decode = async |path: &str| common::web::decode_rgba(&common::read_asset(path).await).await;
    let (rgba, w, _) = decode("models/esrgan-slim/samples/fixture.png").await;
    let (want, sw, _) = decode("models/esrgan-slim/samples/2x.png").await;
    let (cw, ch) = (32usize, 24usize);
    let crop: Vec<u8> = (0..ch)
        .flat_map(|y| rgba[y * w as usize * 4..][..cw * 4].to_vec())
        .collect();
    // Pixels in a JS array (an ImageData made from a slice would view WASM memory).
    let js_pixels = js_sys::Uint8ClampedArray::new_with_length(crop.len() as u32);
    js_pixels.copy_from(&crop);
    let data =
        web_sys::ImageData::new_with_js_u8_clamped_array_and_sh(&js_pixels, cw as u32, ch as u32)
            .unwrap();
    let out = u
        .upscale(data.clone().into())
        .await
        .expect("upscale on the CPU");
    assert_eq!((out.width(), out.height()), (2 * cw as u32, 2 * ch as u32));
    let got = out.data().0;
    let mut worst = 0u8;
    for y in 0..2 * (ch - 10) {
        for x in 0..2 * (cw - 10) {
            for c in 0..3 {
                let g = got[(y * 2 * cw + x) * 4 + c];
                let e = want[(y * sw as usize + x) * 4 + c];
                worst = worst.max(g.abs_diff(e));
            }
        }
    }
    log(&format!(
        "upscaler on a CPU device: max difference from the package's sample {worst}"
    ));
    assert!(worst <= 1, "max difference {worst}");
    let canvas = web_sys::OffscreenCanvas::new(1, 1).unwrap();
    let size = u
        .upscale_to_canvas(data.into(), canvas.clone().into())
        .await
        .expect("upscaleToCanvas on the CPU");
    assert_eq!(
        Reflect::get(&size, &"width".into()).unwrap().as_f64(),
        Some(2.0 * cw as f64)
    );
    let ctx: web_sys::OffscreenCanvasRenderingContext2d = canvas
        .get_context("2d")
        .unwrap()
        .unwrap()
        .dyn_into()
        .unwrap();
    let drawn = ctx
        .get_image_data(0.0, 0.0, 2.0 * cw as f64, 2.0 * ch as f64)
        .unwrap()
        .data()
        .0;
    assert!(
        drawn == got,
        "the canvas holds other pixels than upscale() gave"
    );
}

/// Where generators go on an `auto` device (issue #18): a GGUF file and a Hugging Face folder on the
/// CPU backend when the adapter is a software one (SwiftShader decodes at a fraction of a token a
/// second), on the GPU on a hardware one; `backend: "gpu"` on the load keeps a GGUF on the GPU. Each
/// says why.
#[wasm_bindgen_test]
async fn generators_follow_the_device_backend() {
    let device = Device::create(None).await.expect("Device.create");
    let software = Reflect::get(&device.info(), &"software".into())
        .unwrap()
        .as_bool()
        .unwrap();
    let gguf = || JsValue::from_str("/tests/fixtures/tiny-gguf/tiny-kquants.gguf");
    let g = device.load_generator(gguf(), None).await.expect("GGUF");
    log(&format!(
        "auto: GGUF on {} ({})",
        g.backend(),
        g.backend_reason()
    ));
    let (g_backend, g_reason) = (g.backend(), g.backend_reason());
    if software {
        assert_eq!(g.backend(), "cpu");
        assert!(
            g.backend_reason().contains("software adapter"),
            "{}",
            g.backend_reason()
        );
    } else {
        assert_eq!(g.backend(), "gpu");
        assert!(g.backend_reason().contains("hardware adapter"));
    }
    drop(g);
    let folder = device
        .load_generator("/tests/fixtures/tiny-llama/".into(), None)
        .await
        .expect("HF folder");
    assert_eq!(folder.backend(), g_backend);
    assert_eq!(folder.backend_reason(), g_reason);
    drop(folder);
    let asked = device
        .load_generator(gguf(), Some(backend("gpu")))
        .await
        .expect("GGUF, backend gpu");
    assert_eq!(asked.backend(), "gpu");
    assert_eq!(asked.backend_reason(), "requested (backend: \"gpu\")");
}
