//! Page-wide `stats()` across the devices that models' own loads create (browser only). In a file of
//! its own: a fresh page, since run after tests/web_api.rs's others (whose page holds a CPU
//! embedder's weights and several devices) its four devices intermittently left the renderer
//! unresponsive on SwiftShader (ChromeDriver: "Timed out receiving message from renderer: 300").
#![cfg(target_arch = "wasm32")]
mod common;

use common::log;
use js_sys::Reflect;
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn backend(name: &str) -> js_sys::Object {
    let o = js_sys::Object::new();
    Reflect::set(&o, &"backend".into(), &name.into()).unwrap();
    o
}

/// Every device the page makes counts in the page-wide `stats()` (issue #17 item 4): a model's own
/// `load` creates a device, and its weights' bytes and buffers show up there as `Device.create`'s do;
/// freeing the model takes its buffers off again.
#[wasm_bindgen_test]
async fn each_models_own_device_counts_in_page_stats() {
    use webgpu_infer::web::{Classifier, Embedder, Generator, Upscaler, stats};
    let field = |k: &str| Reflect::get(&stats(), &k.into()).unwrap().as_f64().unwrap();
    // (what, the smallest weight bytes it must add)
    let loads: Vec<(&str, f64)> = vec![
        ("Embedder", 80e6),
        ("Generator", 0.8e6),
        ("Classifier", 10e6),
        ("Upscaler", 0.1e6),
    ];
    for (what, min_bytes) in loads {
        let (live, written) = (field("liveBufferBytes"), field("hostToGpuBytes"));
        let model: Box<dyn std::any::Any> = match what {
            // Every model on the GPU backend (on this software adapter "auto" would take the CPU
            // one).
            "Embedder" => Box::new(
                Embedder::load("/models/all-MiniLM-L6-v2/".into(), Some(backend("gpu")))
                    .await
                    .expect("Embedder.load"),
            ),
            "Generator" => Box::new(
                Generator::load(
                    "/tests/fixtures/tiny-gguf/tiny-kquants.gguf".into(),
                    Some(backend("gpu")),
                )
                .await
                .expect("Generator.load"),
            ),
            "Classifier" => Box::new(
                Classifier::load("/models/efficientnet-lite0/".into(), Some(backend("gpu")))
                    .await
                    .expect("Classifier.load"),
            ),
            _ => Box::new(
                Upscaler::load("/models/esrgan-slim/x2/".into(), Some(backend("gpu")))
                    .await
                    .expect("Upscaler.load"),
            ),
        };
        let grown = field("liveBufferBytes") - live;
        let uploaded = field("hostToGpuBytes") - written;
        log(&format!(
            "{what}.load: +{grown} live buffer bytes, +{uploaded} written"
        ));
        assert!(
            grown >= min_bytes,
            "{what}: live buffer bytes grew by {grown}"
        );
        assert!(
            uploaded >= min_bytes,
            "{what}: bytes written grew by {uploaded}"
        );
        drop(model);
        let left = field("liveBufferBytes") - live;
        assert!(
            left < min_bytes,
            "{what}: {left} bytes still live after the model was freed"
        );
    }
}
