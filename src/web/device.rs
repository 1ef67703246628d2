//! `Device`: the adapter, its capabilities, and a GPU matmul for the demo and smoke tests.

use js_sys::{Array, Float32Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::bridge::web::tensor_from_js;
use crate::gpu::{Gpu, GpuOptions};
use crate::kernels::matmul::{self, BLayout};
use crate::tensor::DType;

/// A WebGPU device with everything the library's kernels can use.
///
/// ```js
/// import init, { Device } from "webgpu-infer";
/// await init();
/// const device = await Device.create();
/// console.log(device.info.adapter, device.info.shaderF16);
/// const c = await device.matmul(a, b, m, k, n); // Float32Array of m*n
/// ```
#[wasm_bindgen]
pub struct Device {
    gpu: Gpu,
    info: Object,
}

#[wasm_bindgen]
impl Device {
    /// Requests the adapter and device. Rejects with a clear message when the browser has no WebGPU.
    /// Pass `{ allowF16: false }` to keep to f32 kernels, `{ powerPreference: "low-power" }` to prefer
    /// an integrated GPU.
    pub async fn create(
        #[wasm_bindgen(
            unchecked_optional_param_type = "{ allowF16?: boolean, powerPreference?: 'low-power' | 'high-performance' }"
        )]
        options: Option<Object>,
    ) -> Result<Device, JsValue> {
        let mut opts = GpuOptions::default();
        if let Some(o) = &options {
            if let Some(f16) = Reflect::get(o, &"allowF16".into())?.as_bool() {
                opts.allow_f16 = f16;
            }
            if crate::web::js_string(o, "powerPreference") == "low-power" {
                opts.power_preference = wgpu::PowerPreference::LowPower;
            }
        }
        let gpu = Gpu::with_options(&opts).await?;
        let info = describe(&gpu).await?;
        crate::web::stats::register(&gpu);
        Ok(Device { gpu, info })
    }

    /// What this device's buffers have moved so far: `{ wasmBytesIn, hostToGpuBytes, gpuToHostBytes,
    /// submits, liveBuffers, liveBufferBytes }`.
    #[wasm_bindgen(unchecked_return_type = "CopyStats")]
    pub fn stats(&self) -> Object {
        crate::web::stats::to_js(&self.gpu.stats())
    }

    /// Resolves when the GPU has finished everything submitted so far.
    pub async fn sync(&self) -> Result<(), JsValue> {
        Ok(self.gpu.sync().await?)
    }

    /// Zeroes the byte and submit counters.
    #[wasm_bindgen(js_name = resetStats)]
    pub fn reset_stats(&self) {
        self.gpu.reset_stats();
    }

    /// `{ adapter, vendor, architecture, description, backend, software, shaderF16, subgroups,
    /// features: string[], limits: {...} }`: what the browser says of the adapter and what the library
    /// will use.
    #[wasm_bindgen(getter, unchecked_return_type = "DeviceInfo")]
    pub fn info(&self) -> Object {
        self.info.clone()
    }

    /// `C = A · B` on the GPU, for row-major `a` (`m × k`) and `b` (`k × n`, or `n × k` when
    /// `transposeB`). Resolves to a new `Float32Array` of `m × n`.
    pub async fn matmul(
        &self,
        a: Float32Array,
        b: Float32Array,
        m: usize,
        k: usize,
        n: usize,
        transpose_b: Option<bool>,
    ) -> Result<Float32Array, JsValue> {
        let layout = if transpose_b.unwrap_or(false) {
            BLayout::NK
        } else {
            BLayout::KN
        };
        let b_shape = match layout {
            BLayout::KN => [k, n],
            BLayout::NK => [n, k],
        };
        // JS → GPU and GPU → JS directly: the matrices never enter WASM memory.
        let ta = tensor_from_js(&self.gpu, &a, &[m, k], DType::F32)?;
        let tb = tensor_from_js(&self.gpu, &b, &b_shape, DType::F32)?;
        let mut rec = self.gpu.recorder();
        let c = matmul::matmul(&mut rec, &ta, &tb, layout)?;
        rec.submit();
        let mapped = c.read_mapped().await?;
        // A JS-side copy out of the mapped range, so the result outlives the read-back buffer.
        let bytes = mapped.as_uint8array();
        Ok(Float32Array::new(&bytes.slice(0, bytes.length()).buffer()))
    }
}

impl Device {
    pub(crate) fn gpu(&self) -> &Gpu {
        &self.gpu
    }
}

#[wasm_bindgen(typescript_custom_section)]
const DEVICE_INFO_TS: &str = r#"
/** What the browser says of the adapter, and what webgpu-infer will use. */
export interface DeviceInfo {
  /** Name for logs: the browser's description, else "vendor architecture". */
  adapter: string;
  vendor: string;
  architecture: string;
  description: string;
  backend: string;
  /** A CPU implementation (SwiftShader and the like): 10-100x slower than a GPU. */
  software: boolean;
  shaderF16: boolean;
  subgroups: boolean;
  features: string[];
  limits: {
    maxBufferSize: number;
    maxStorageBufferBindingSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
  };
}
"#;

async fn describe(gpu: &Gpu) -> Result<Object, JsValue> {
    let browser = crate::web::browser_adapter_info().await;
    let get = |k: &str| {
        browser
            .as_ref()
            .map(|o| crate::web::js_string(o, k))
            .unwrap_or_default()
    };
    let caps = gpu.capabilities();
    let info = Object::new();
    let set = |k: &str, v: JsValue| Reflect::set(&info, &k.into(), &v);
    set("adapter", gpu.adapter_name().into())?;
    set("vendor", get("vendor").into())?;
    set("architecture", get("architecture").into())?;
    set("description", get("description").into())?;
    set("backend", format!("{:?}", gpu.info().backend).into())?;
    set("software", caps.software.into())?;
    set("shaderF16", caps.shader_f16.into())?;
    set("subgroups", caps.subgroups.into())?;
    let features = Array::new();
    for (name, _) in gpu.device().features().iter_names() {
        features.push(&name.into());
    }
    set("features", features.into())?;
    let l = gpu.limits();
    let limits = Object::new();
    for (k, v) in [
        ("maxBufferSize", l.max_buffer_size as f64),
        (
            "maxStorageBufferBindingSize",
            l.max_storage_buffer_binding_size as f64,
        ),
        (
            "maxComputeWorkgroupStorageSize",
            l.max_compute_workgroup_storage_size.into(),
        ),
        (
            "maxComputeInvocationsPerWorkgroup",
            l.max_compute_invocations_per_workgroup.into(),
        ),
        (
            "maxComputeWorkgroupsPerDimension",
            l.max_compute_workgroups_per_dimension.into(),
        ),
    ] {
        Reflect::set(&limits, &k.into(), &v.into())?;
    }
    set("limits", limits.into())?;
    Ok(info)
}

#[wasm_bindgen]
impl Device {
    /// Runs the kernel benchmarks (see `webgpu_infer::bench`) and calls `onLine(json)` with each
    /// measurement, a JSON string `{"op","dtype","m","n","k","ms","gflops"|"gbps","adapter",...}`.
    /// `options`: `{ maxSquare, maxSeq, copyBytes, targetMs, ops: string[] }` (defaults suit a real
    /// GPU; software adapters want `{ maxSquare: 512, maxSeq: 512, copyBytes: 32 << 20 }`).
    #[wasm_bindgen(js_name = benchKernels)]
    pub async fn bench_kernels(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "{ maxSquare?: number, maxSeq?: number, copyBytes?: number, targetMs?: number, ops?: string[] }"
        )]
        options: Option<Object>,
        #[wasm_bindgen(unchecked_param_type = "(json: string) => void")] on_line: js_sys::Function,
    ) -> Result<(), JsValue> {
        let mut cfg = crate::bench::BenchConfig::default();
        if let Some(o) = &options {
            let num = |k: &str| Reflect::get(o, &k.into()).ok().and_then(|v| v.as_f64());
            if let Some(v) = num("maxSquare") {
                cfg.max_square = v as usize;
            }
            if let Some(v) = num("maxSeq") {
                cfg.max_seq = v as usize;
            }
            if let Some(v) = num("copyBytes") {
                cfg.copy_bytes = v as usize;
            }
            if let Some(v) = num("targetMs") {
                cfg.target_ms = v;
            }
            if let Ok(ops) = Reflect::get(o, &"ops".into()).and_then(|v| v.dyn_into::<Array>()) {
                cfg.ops = ops.iter().filter_map(|v| v.as_string()).collect();
            }
        }
        crate::bench::run(&self.gpu, &cfg, &mut |line| {
            let _ = on_line.call1(&JsValue::NULL, &line.to_string().into());
        })
        .await?;
        Ok(())
    }
}
