//! [`GpuBuffer`]: a `wgpu::Buffer` counted in [`CopyStats`], and destroyed (or recycled) when dropped.
//!
//! wgpu's web backend leaves a dropped buffer to the JS garbage collector, which may hold gigabytes of
//! weights long after they are unused; destroying on drop frees them at once, on both targets. Work
//! already submitted still completes (WebGPU defers the free); work only *recorded* keeps its buffers
//! alive through the [`Recorder`](crate::Recorder), which holds them until it submits.
//!
//! Intermediate tensors come from a [`BufferPool`]: a dropped one goes back to the pool and the next
//! tensor of the same size reuses it, so a forward pass run again allocates nothing. Reuse is safe
//! because one queue executes in submission order.
//!
//! The pool hands out the free buffer of lowest identity first (not the last one returned): a forward
//! pass that starts from the same free buffers then gets the same buffer for each tensor every time,
//! so the bind groups it made the first time are found again (`bind_groups.rs`) instead of made anew.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use crate::runtime::stats::CopyStats;

pub struct GpuBuffer {
    buffer: wgpu::Buffer,
    stats: Arc<CopyStats>,
    /// Where the buffer goes when dropped; `None`: destroyed.
    pool: Option<Arc<BufferPool>>,
    /// Destroy on drop even if pooled: a read-back buffer dropped while (perhaps) still mapping.
    discard: std::sync::atomic::AtomicBool,
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
            pool: None,
            discard: false.into(),
        }
    }

    pub fn raw(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Destroys the buffer when dropped instead of returning it to the pool (its map state is not
    /// known to be unmapped).
    pub(crate) fn discard_on_drop(&self) {
        self.discard
            .store(true, std::sync::atomic::Ordering::Relaxed);
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
        match &self.pool {
            Some(pool) if !self.discard.load(std::sync::atomic::Ordering::Relaxed) => {
                pool.put(self.buffer.clone())
            }
            _ => self.buffer.destroy(),
        }
    }
}

/// Unused buffers by (size, usage), up to a byte budget, each set ordered by identity.
pub struct BufferPool {
    free: Mutex<HashMap<(u64, u32), BTreeSet<wgpu::Buffer>>>,
    max_bytes: u64,
    stats: Arc<CopyStats>,
}

impl BufferPool {
    pub(crate) fn new(max_bytes: u64, stats: &Arc<CopyStats>) -> Arc<Self> {
        Arc::new(BufferPool {
            free: Mutex::new(HashMap::new()),
            max_bytes,
            stats: Arc::clone(stats),
        })
    }

    /// A buffer of exactly `size` bytes and `usage`, reused when one is free. Its contents are
    /// whatever its last user left.
    pub(crate) fn take(
        self: &Arc<Self>,
        device: &wgpu::Device,
        size: u64,
        usage: wgpu::BufferUsages,
    ) -> GpuBuffer {
        let reused = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&(size, usage.bits()))
            .and_then(BTreeSet::pop_first);
        let buffer = match reused {
            Some(b) => {
                self.stats.unpooled(size);
                self.stats.buffer_created(size);
                b
            }
            None => {
                self.stats.buffer_created(size);
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: None,
                    size,
                    usage,
                    mapped_at_creation: false,
                })
            }
        };
        GpuBuffer {
            buffer,
            stats: Arc::clone(&self.stats),
            pool: Some(Arc::clone(self)),
            discard: false.into(),
        }
    }

    fn put(&self, buffer: wgpu::Buffer) {
        let size = buffer.size();
        if self.stats.snapshot().pooled_bytes + size > self.max_bytes {
            buffer.destroy();
            return;
        }
        self.stats.pooled(size);
        let key = (size, buffer.usage().bits());
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .insert(buffer);
    }

    /// Destroys every free buffer.
    pub(crate) fn clear(&self) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        for buffer in free.drain().flat_map(|(_, v)| v) {
            self.stats.unpooled(buffer.size());
            buffer.destroy();
        }
    }
}
