//! [`CopyStats`]: every byte the library moves between JS, WASM memory, the host and the GPU, counted,
//! so that tests and benchmarks prove the zero-copy claims instead of asserting them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters shared by everything created from one [`Gpu`](crate::Gpu).
#[derive(Debug, Default)]
pub struct CopyStats {
    wasm_bytes_in: AtomicU64,
    host_to_gpu_bytes: AtomicU64,
    gpu_to_host_bytes: AtomicU64,
    submits: AtomicU64,
    dispatches: AtomicU64,
    bind_groups_created: AtomicU64,
    live_buffers: AtomicU64,
    live_buffer_bytes: AtomicU64,
    pooled_buffers: AtomicU64,
    pooled_bytes: AtomicU64,
    host_weight_bytes: AtomicU64,
}

/// A snapshot of [`CopyStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes the library copied *into* WASM linear memory from JS or from a mapped GPU buffer (a safetensors
    /// header, a read-back into a `Vec`). Natively: bytes copied into the heap from a mapped buffer.
    pub wasm_bytes_in: u64,
    /// Bytes written to GPU buffers: `write_buffer`, mapped-at-creation fills, uniform parameters.
    pub host_to_gpu_bytes: u64,
    /// Bytes read back from GPU buffers (to WASM or to a JS view).
    pub gpu_to_host_bytes: u64,
    /// `queue.submit` calls.
    pub submits: u64,
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// Bind groups created (a dispatch whose pipeline and buffers were bound before reuses its group:
    /// see `bind_groups.rs`); on the web path each one is a dear JS call.
    pub bind_groups_created: u64,
    /// GPU buffers in use now, and their bytes (not reset by [`CopyStats::reset`]: they are state).
    pub live_buffers: u64,
    pub live_buffer_bytes: u64,
    /// Free buffers kept for reuse by the buffer pool, and their bytes (GPU memory still held).
    pub pooled_buffers: u64,
    pub pooled_bytes: u64,
    /// Bytes of weights held in WASM (host) memory: the CPU backend's, which is where the CPU reads
    /// them; 0 for GPU models (not reset by [`CopyStats::reset`]).
    pub host_weight_bytes: u64,
}

/// Sums counters (a page's devices and CPU backends).
impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, s: Stats) {
        self.wasm_bytes_in += s.wasm_bytes_in;
        self.host_to_gpu_bytes += s.host_to_gpu_bytes;
        self.gpu_to_host_bytes += s.gpu_to_host_bytes;
        self.submits += s.submits;
        self.dispatches += s.dispatches;
        self.bind_groups_created += s.bind_groups_created;
        self.live_buffers += s.live_buffers;
        self.live_buffer_bytes += s.live_buffer_bytes;
        self.pooled_buffers += s.pooled_buffers;
        self.pooled_bytes += s.pooled_bytes;
        self.host_weight_bytes += s.host_weight_bytes;
    }
}

impl CopyStats {
    pub fn snapshot(&self) -> Stats {
        Stats {
            wasm_bytes_in: self.wasm_bytes_in.load(Relaxed),
            host_to_gpu_bytes: self.host_to_gpu_bytes.load(Relaxed),
            gpu_to_host_bytes: self.gpu_to_host_bytes.load(Relaxed),
            submits: self.submits.load(Relaxed),
            dispatches: self.dispatches.load(Relaxed),
            bind_groups_created: self.bind_groups_created.load(Relaxed),
            live_buffers: self.live_buffers.load(Relaxed),
            live_buffer_bytes: self.live_buffer_bytes.load(Relaxed),
            pooled_buffers: self.pooled_buffers.load(Relaxed),
            pooled_bytes: self.pooled_bytes.load(Relaxed),
            host_weight_bytes: self.host_weight_bytes.load(Relaxed),
        }
    }

    /// Zeroes the byte, submit and dispatch counters; live buffers are left as they are.
    pub fn reset(&self) {
        self.wasm_bytes_in.store(0, Relaxed);
        self.host_to_gpu_bytes.store(0, Relaxed);
        self.gpu_to_host_bytes.store(0, Relaxed);
        self.submits.store(0, Relaxed);
        self.dispatches.store(0, Relaxed);
        self.bind_groups_created.store(0, Relaxed);
    }

    pub(crate) fn wasm_in(&self, bytes: u64) {
        self.wasm_bytes_in.fetch_add(bytes, Relaxed);
    }

    pub(crate) fn host_weights(&self, bytes: u64) {
        self.host_weight_bytes.fetch_add(bytes, Relaxed);
    }

    pub(crate) fn host_weights_freed(&self, bytes: u64) {
        self.host_weight_bytes.fetch_sub(bytes, Relaxed);
    }

    pub(crate) fn to_gpu(&self, bytes: u64) {
        self.host_to_gpu_bytes.fetch_add(bytes, Relaxed);
    }

    pub(crate) fn to_host(&self, bytes: u64) {
        self.gpu_to_host_bytes.fetch_add(bytes, Relaxed);
    }

    pub(crate) fn submit(&self) {
        self.submits.fetch_add(1, Relaxed);
    }

    pub(crate) fn dispatch(&self, bind_group_created: bool) {
        self.dispatches.fetch_add(1, Relaxed);
        if bind_group_created {
            self.bind_groups_created.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn buffer_created(&self, bytes: u64) {
        self.live_buffers.fetch_add(1, Relaxed);
        self.live_buffer_bytes.fetch_add(bytes, Relaxed);
    }

    pub(crate) fn pooled(&self, bytes: u64) {
        self.pooled_buffers.fetch_add(1, Relaxed);
        self.pooled_bytes.fetch_add(bytes, Relaxed);
    }

    pub(crate) fn unpooled(&self, bytes: u64) {
        self.pooled_buffers.fetch_sub(1, Relaxed);
        self.pooled_bytes.fetch_sub(bytes, Relaxed);
    }

    pub(crate) fn buffer_dropped(&self, bytes: u64) {
        self.live_buffers.fetch_sub(1, Relaxed);
        self.live_buffer_bytes.fetch_sub(bytes, Relaxed);
    }
}
