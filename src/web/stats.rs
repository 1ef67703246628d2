//! `stats()`, `resetStats()` and `wasmMemoryBytes()` for JS: the copy counters of every device the page
//! created, summed, and the size of WASM linear memory (to show that loading weights does not grow it).

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::gpu::Gpu;
use crate::runtime::stats::{CopyStats, Stats};

thread_local! {
    static DEVICES: RefCell<Vec<Weak<CopyStats>>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn register(gpu: &Gpu) {
    register_stats(gpu.copy_stats_arc());
}

/// Adds a backend's counters (a GPU's, a CPU backend's) to the page-wide sum.
pub(crate) fn register_stats(stats: &Arc<CopyStats>) {
    DEVICES.with(|d| {
        let mut d = d.borrow_mut();
        d.retain(|w| w.strong_count() > 0);
        d.push(Arc::downgrade(stats));
    });
}

/// The copy counters summed over every live `Device`:
/// `{ wasmBytesIn, hostToGpuBytes, gpuToHostBytes, submits, dispatches, bindGroupsCreated,
/// liveBuffers, liveBufferBytes }`.
#[wasm_bindgen(unchecked_return_type = "CopyStats")]
pub fn stats() -> Object {
    let mut sum = Stats::default();
    DEVICES.with(|d| {
        for s in d.borrow().iter().filter_map(Weak::upgrade) {
            sum += s.snapshot();
        }
    });
    to_js(&sum)
}

/// Zeroes the byte and submit counters of every live `Device`.
#[wasm_bindgen(js_name = resetStats)]
pub fn reset_stats() {
    DEVICES.with(|d| {
        d.borrow()
            .iter()
            .filter_map(Weak::upgrade)
            .for_each(|s| s.reset())
    });
}

/// Bytes of WASM linear memory now (it only grows).
#[wasm_bindgen(js_name = wasmMemoryBytes)]
pub fn wasm_memory_bytes() -> f64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    let buffer: js_sys::ArrayBuffer = memory.buffer().unchecked_into();
    f64::from(buffer.byte_length())
}

pub(crate) fn to_js(s: &Stats) -> Object {
    let o = Object::new();
    for (k, v) in [
        ("wasmBytesIn", s.wasm_bytes_in),
        ("hostToGpuBytes", s.host_to_gpu_bytes),
        ("gpuToHostBytes", s.gpu_to_host_bytes),
        ("submits", s.submits),
        ("dispatches", s.dispatches),
        ("bindGroupsCreated", s.bind_groups_created),
        ("liveBuffers", s.live_buffers),
        ("liveBufferBytes", s.live_buffer_bytes),
        ("hostWeightBytes", s.host_weight_bytes),
    ] {
        let _ = Reflect::set(&o, &k.into(), &(v as f64).into());
    }
    o
}

#[wasm_bindgen(typescript_custom_section)]
const COPY_STATS_TS: &str = r#"
/** Bytes the library moved, by path. */
export interface CopyStats {
  /** Bytes copied into WASM memory (headers, read-backs into Rust). Loading tensors onto the GPU adds
   *  0; loading them for the CPU backend adds the file once (that is where the CPU reads them). */
  wasmBytesIn: number;
  hostToGpuBytes: number;
  gpuToHostBytes: number;
  submits: number;
  /** Compute dispatches recorded. */
  dispatches: number;
  /** Bind groups created: a dispatch that binds what an earlier one bound reuses its group. */
  bindGroupsCreated: number;
  liveBuffers: number;
  liveBufferBytes: number;
  /** Bytes of weights held in WASM memory: the CPU backend's models' (0 for GPU models). */
  hostWeightBytes: number;
}
"#;
