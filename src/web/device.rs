//! `Device`: the adapter, its capabilities, and a GPU matmul for the demo and smoke tests.

use js_sys::{Array, Float32Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::bridge::web::tensor_from_js;
use crate::gpu::{Gpu, GpuOptions};
use crate::kernels::matmul::{self, BLayout};
use crate::tensor::DType;
use crate::web::backend::{Choice, Placement};

/// A WebGPU device with everything the library's kernels can use, and the CPU backend.
///
/// ```js
/// import init, { Device } from "webgpu-infer";
/// await init();
/// const device = await Device.create();  // { backend: "auto" }
/// console.log(device.info.adapter, device.info.shaderF16, device.backend, device.backendReason);
/// const c = await device.matmul(a, b, m, k, n); // Float32Array of m*n
/// ```
#[wasm_bindgen]
pub struct Device {
    place: Placement,
    info: Object,
}

#[wasm_bindgen]
impl Device {
    /// Requests the adapter and device. `backend` says where models with a CPU path (embedders) run:
    /// `"auto"` (default) on the GPU when the adapter is a hardware one, else on the CPU backend (no
    /// WebGPU, or a software adapter such as SwiftShader); `"gpu"` rejects with a clear message when
    /// the browser has no WebGPU; `"cpu"` requests no adapter at all. Pass `{ allowF16: false }` to
    /// keep to f32 kernels, `{ powerPreference: "low-power" }` to prefer an integrated GPU.
    /// `{ cpuKernels: false }` makes the GPU kernels run their hardware-GPU variants even on a software
    /// adapter (by default a software adapter gets variants suited to a CPU): for measuring, on a
    /// machine without a GPU, what a page on a real GPU records. `{ decodeMerge: true }` has decoding
    /// merge the split attention in its out-projection (one kernel fewer a layer past 128 cached keys;
    /// off by default in browsers: through Dawn on an H100 it decoded slower).
    pub async fn create(
        #[wasm_bindgen(
            unchecked_optional_param_type = "{ backend?: 'auto' | 'gpu' | 'cpu', allowF16?: boolean, powerPreference?: 'low-power' | 'high-performance', profile?: boolean, cpuKernels?: boolean, decodeMerge?: boolean }"
        )]
        options: Option<Object>,
    ) -> Result<Device, JsValue> {
        let mut opts = GpuOptions::default();
        if let Some(o) = &options {
            if let Some(f16) = Reflect::get(o, &"allowF16".into())?.as_bool() {
                opts.allow_f16 = f16;
            }
            if let Some(p) = Reflect::get(o, &"profile".into())?.as_bool() {
                opts.allow_timestamps = p;
            }
            opts.cpu_kernels = Reflect::get(o, &"cpuKernels".into())?.as_bool();
            opts.decode_merge = Reflect::get(o, &"decodeMerge".into())?.as_bool();
            if crate::web::js_string(o, "powerPreference") == "low-power" {
                opts.power_preference = wgpu::PowerPreference::LowPower;
            }
        }
        let choice = Choice::from_js(options.as_ref())?.unwrap_or(Choice::Auto);
        let place = Placement::acquire(choice, &opts).await?;
        let info = match &place.gpu {
            Some(gpu) => describe(gpu).await?,
            None => describe_cpu(&place)?,
        };
        Ok(Device { place, info })
    }

    /// `"gpu"` or `"cpu"`: where this device runs embedders (see `create`'s `backend`).
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.place.backend.into()
    }

    /// Why [`backend`](Device::backend) is what it is, in words for a page ("software adapter
    /// (SwiftShader): the CPU backend is faster", "no WebGPU (...)", "requested").
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> String {
        self.place.reason.clone()
    }

    /// What this device's buffers have moved so far: `{ wasmBytesIn, hostToGpuBytes, gpuToHostBytes,
    /// submits, liveBuffers, liveBufferBytes }`.
    #[wasm_bindgen(unchecked_return_type = "CopyStats")]
    pub fn stats(&self) -> Object {
        let mut s = self.place.cpu.stats();
        if let Some(gpu) = &self.place.gpu {
            s += gpu.stats();
        }
        crate::web::stats::to_js(&s)
    }

    /// Resolves when the GPU has finished everything submitted so far.
    pub async fn sync(&self) -> Result<(), JsValue> {
        if let Some(gpu) = &self.place.gpu {
            gpu.sync().await?;
        }
        Ok(())
    }

    /// Per-kernel GPU timing on or off (devices created with `{ profile: true }` on an adapter with
    /// `timestamp-query`): every dispatch then runs in a compute pass of its own with timestamps.
    /// Throws when the device has no timestamps, or runs on the CPU backend.
    #[wasm_bindgen(js_name = setProfiling)]
    pub fn set_profiling(&self, on: bool) -> Result<(), JsValue> {
        match &self.place.gpu {
            Some(gpu) => Ok(gpu.set_profiling(on)?),
            None => Err(JsError::new(
                "profiling times GPU kernels: this device runs on the CPU backend",
            )
            .into()),
        }
    }

    /// GPU time by kernel of everything profiled since the last call, most first:
    /// `[{ kernel, dispatches, ms }]` (`kernel`: shader/entry, type and override constants). Browsers
    /// may quantize timestamps (Chrome: to 100 µs without its developer features).
    #[wasm_bindgen(js_name = takeProfile, unchecked_return_type = "{ kernel: string, dispatches: number, ms: number }[]")]
    pub async fn take_profile(&self) -> Result<Array, JsValue> {
        let out = Array::new();
        if let Some(gpu) = &self.place.gpu {
            for t in gpu.take_profile().await? {
                let o = Object::new();
                Reflect::set(&o, &"kernel".into(), &t.kernel.as_str().into())?;
                Reflect::set(&o, &"dispatches".into(), &t.dispatches.into())?;
                Reflect::set(&o, &"ms".into(), &t.ms.into())?;
                out.push(&o);
            }
        }
        Ok(out)
    }

    /// Zeroes the byte and submit counters.
    #[wasm_bindgen(js_name = resetStats)]
    pub fn reset_stats(&self) {
        self.place.cpu.copy_stats_arc().reset();
        if let Some(gpu) = &self.place.gpu {
            gpu.reset_stats();
        }
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
        let gpu = self.gpu_for("matmul")?;
        let ta = tensor_from_js(gpu, &a, &[m, k], DType::F32)?;
        let tb = tensor_from_js(gpu, &b, &b_shape, DType::F32)?;
        let mut rec = gpu.recorder();
        let c = matmul::matmul(&mut rec, &ta, &tb, layout)?;
        rec.submit();
        let mapped = c.read_mapped().await?;
        // A JS-side copy out of the mapped range, so the result outlives the read-back buffer.
        let bytes = mapped.as_uint8array();
        Ok(Float32Array::new(&bytes.slice(0, bytes.length()).buffer()))
    }
}

impl Device {
    /// The GPU, or an error saying that `what` needs one and this device has none.
    pub(crate) fn gpu_for(&self, what: &str) -> crate::Result<&Gpu> {
        self.place.gpu_for(what)
    }

    pub(crate) fn placement(&self) -> &Placement {
        &self.place
    }
}

#[wasm_bindgen(typescript_custom_section)]
const DEVICE_INFO_TS: &str = r#"
/** What the browser says of the adapter, and what webgpu-infer will use. */
export interface DeviceInfo {
  /** Name for logs: the browser's description, else "vendor architecture"; on a device without an
   *  adapter (`backend: "cpu"`, or no WebGPU), "CPU (WASM SIMD128, 1 thread)". */
  adapter: string;
  vendor: string;
  architecture: string;
  description: string;
  /** The adapter's API as wgpu names it ("BrowserWebGpu"), or "cpu" on a device without one. */
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

/// `info` of a device without an adapter: the CPU backend, no GPU features, zero limits.
fn describe_cpu(place: &Placement) -> Result<Object, JsValue> {
    let info = Object::new();
    let set = |k: &str, v: JsValue| Reflect::set(&info, &k.into(), &v);
    let threads = place.cpu.threads();
    let s = if threads == 1 { "" } else { "s" };
    let name = format!("CPU (WASM SIMD128, {threads} thread{s})");
    set("adapter", name.into())?;
    for k in ["vendor", "architecture", "description"] {
        set(k, "".into())?;
    }
    set("backend", "cpu".into())?;
    for k in ["software", "shaderF16", "subgroups"] {
        set(k, false.into())?;
    }
    set("features", Array::new().into())?;
    let limits = Object::new();
    for k in [
        "maxBufferSize",
        "maxStorageBufferBindingSize",
        "maxComputeWorkgroupStorageSize",
        "maxComputeInvocationsPerWorkgroup",
        "maxComputeWorkgroupsPerDimension",
    ] {
        Reflect::set(&limits, &k.into(), &0.into())?;
    }
    set("limits", limits.into())?;
    Ok(info)
}

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
        crate::bench::run(self.gpu_for("benchKernels")?, &cfg, &mut |line| {
            let _ = on_line.call1(&JsValue::NULL, &line.to_string().into());
        })
        .await?;
        Ok(())
    }
}
