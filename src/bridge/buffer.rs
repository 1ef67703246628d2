//! [`GpuBuffer`]: a `wgpu::Buffer` counted in [`CopyStats`] and destroyed when dropped.
//!
//! wgpu's web backend leaves a dropped buffer to the JS garbage collector, which may hold gigabytes of
//! weights long after they are unused; destroying on drop frees them at once, on both targets. Work
//! already submitted still completes (WebGPU defers the free); work only *recorded* keeps its buffers
//! alive through the [`Recorder`](crate::Recorder), which holds them until it submits.

use std::sync::Arc;

use crate::bridge::stats::CopyStats;

pub struct GpuBuffer {
    buffer: wgpu::Buffer,
    stats: Arc<CopyStats>,
}

impl GpuBuffer {
    pub(crate) fn new(
        device: &wgpu::Device,
        stats: &Arc<CopyStats>,
        desc: &wgpu::BufferDescriptor<'_>,
    ) -> Self {
        let buffer = device.create_buffer(desc);
        stats.buffer_created(desc.size);
        GpuBuffer {
            buffer,
            stats: Arc::clone(stats),
        }
    }

    pub fn raw(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Allocated size in bytes (a multiple of 4).
    pub fn size(&self) -> u64 {
        self.buffer.size()
    }
}

impl std::ops::Deref for GpuBuffer {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        self.stats.buffer_dropped(self.buffer.size());
        self.buffer.destroy();
    }
}
