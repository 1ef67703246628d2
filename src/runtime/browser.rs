//! What the runtime layer asks the browser directly (wasm32 only): whether `navigator.gpu` exists, and
//! the browser's own description of its adapter, which wgpu's web backend reduces to a name.

use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;

/// `navigator.gpu` exists (in a window or a worker).
pub(crate) fn navigator_has_gpu() -> bool {
    let gpu = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|nav| js_sys::Reflect::get(&nav, &"gpu".into()));
    matches!(gpu, Ok(g) if !g.is_undefined() && !g.is_null())
}

/// The browser's own description of its adapter (`GPUAdapterInfo`), which wgpu's web backend reduces to
/// `description` (often empty): vendor, architecture, description and `isFallbackAdapter`.
pub(crate) async fn browser_adapter_info() -> Option<js_sys::Object> {
    let global = js_sys::global();
    let gpu = js_sys::Reflect::get(&global, &"navigator".into())
        .and_then(|nav| js_sys::Reflect::get(&nav, &"gpu".into()))
        .ok()?;
    let request: js_sys::Function = js_sys::Reflect::get(&gpu, &"requestAdapter".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    if adapter.is_null() || adapter.is_undefined() {
        return None;
    }
    js_sys::Reflect::get(&adapter, &"info".into())
        .ok()?
        .dyn_into()
        .ok()
}

/// wgpu's web backend keeps only the adapter's `description`, which browsers often leave empty: name
/// the adapter "vendor architecture" instead (e.g. "google swiftshader"), so logs, benchmark JSON and
/// the software-adapter check see what it is.
pub(crate) async fn complete_adapter_info(info: &mut wgpu::AdapterInfo) {
    let Some(browser) = browser_adapter_info().await else {
        return;
    };
    if info.name.is_empty() {
        let vendor = js_string(&browser, "vendor");
        let architecture = js_string(&browser, "architecture");
        info.name = format!("{vendor} {architecture}").trim().to_string();
    }
    let fallback = js_sys::Reflect::get(&browser, &"isFallbackAdapter".into())
        .ok()
        .and_then(|v| v.as_bool());
    if fallback == Some(true) {
        info.device_type = wgpu::DeviceType::Cpu;
    }
}

/// `obj[key]` as a string ("" when absent or not a string).
pub(crate) fn js_string(obj: &JsValue, key: &str) -> String {
    js_sys::Reflect::get(obj, &key.into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}
