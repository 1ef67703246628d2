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
    DEVICES.with(|d| {
        let mut d = d.borrow_mut();
        d.retain(|w| w.strong_count() > 0);
        d.push(Arc::downgrade(gpu.copy_stats_arc()));
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
            let s = s.snapshot();
            sum.wasm_bytes_in += s.wasm_bytes_in;
            sum.host_to_gpu_bytes += s.host_to_gpu_bytes;
            sum.gpu_to_host_bytes += s.gpu_to_host_bytes;
            sum.submits += s.submits;
            sum.dispatches += s.dispatches;
            sum.bind_groups_created += s.bind_groups_created;
            sum.live_buffers += s.live_buffers;
            sum.live_buffer_bytes += s.live_buffer_bytes;
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
    ] {
        let _ = Reflect::set(&o, &k.into(), &(v as f64).into());
    }
    o
}

#[wasm_bindgen(typescript_custom_section)]
const COPY_STATS_TS: &str = r#"
/** Bytes the library moved, by path. */
export interface CopyStats {
  /** Bytes copied into WASM memory (headers, read-backs into Rust). Loading tensors adds 0. */
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
}
"#;
