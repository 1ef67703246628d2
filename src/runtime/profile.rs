//! GPU time per kernel: with [`Gpu::set_profiling`] on, every dispatch a [`crate::Recorder`] records
//! runs in a compute pass of its own that writes GPU timestamps at its start and end, labelled with
//! its pipeline (shader, entry point, storage type, override constants). [`Gpu::take_profile`] reads
//! them back and sums them by kernel.
//!
//! Native only in practice: it needs `TIMESTAMP_QUERY`, which the library requests only natively
//! (browsers quantize timestamps). A pass per dispatch adds the gaps between passes to the wall time
//! but not to the times measured here, which cover each dispatch alone: the sum is what the kernels
//! cost, not what the forward pass costs end to end.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Timestamp queries in one query set: 2 a dispatch.
pub(crate) const QUERIES: u32 = 4096;

/// GPU time spent in one kernel, summed over its dispatches.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct KernelTime {
    /// The pipeline: `shader/entry dtype` and its override constants.
    pub kernel: String,
    pub dispatches: u32,
    /// Sum of the dispatches' GPU time, in ms.
    pub ms: f64,
}

/// One query set being filled by a recorder: a label a dispatch.
pub(crate) struct QueryBatch {
    pub(crate) set: wgpu::QuerySet,
    pub(crate) labels: Vec<Arc<str>>,
}

impl QueryBatch {
    pub(crate) fn new(gpu: &Gpu) -> Self {
        Self::with_queries(gpu, QUERIES)
    }

    /// A batch of `count` queries (2 a label).
    pub(crate) fn with_queries(gpu: &Gpu, count: u32) -> Self {
        QueryBatch {
            set: gpu.device().create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            }),
            labels: Vec::new(),
        }
    }

    pub(crate) fn full(&self) -> bool {
        self.labels.len() as u32 * 2 >= QUERIES
    }

    /// Resolves the timestamps into a mappable buffer at the end of `encoder`; the result waits in
    /// the GPU's profile until [`Gpu::take_profile`].
    pub(crate) fn resolve(self, gpu: &Gpu, encoder: &mut wgpu::CommandEncoder) -> Pending {
        let n = self.labels.len() as u32 * 2;
        let bytes = u64::from(n.max(2)) * 8;
        let buffer = |usage| {
            gpu.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile timestamps"),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        let resolved = buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC);
        let read = buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
        if n > 0 {
            encoder.resolve_query_set(&self.set, 0..n, &resolved, 0);
            encoder.copy_buffer_to_buffer(&resolved, 0, &read, 0, bytes);
        }
        Pending {
            read,
            labels: self.labels,
        }
    }
}

/// Timestamps resolved by a submitted recorder, not yet read.
pub(crate) struct Pending {
    read: wgpu::Buffer,
    labels: Vec<Arc<str>>,
}

/// The first `count` timestamps (GPU ticks) resolved into `read` (`MAP_READ`) by submitted work: maps
/// it once that work is done, copies them out, unmaps.
pub(crate) async fn read_ticks(gpu: &Gpu, read: &wgpu::Buffer, count: usize) -> Result<Vec<u64>> {
    let (sender, receiver) = futures_channel::oneshot::channel();
    read.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = sender.send(r);
    });
    gpu.sync().await?;
    receiver
        .await
        .map_err(|_| Error::Readback("timestamp read-back dropped".into()))?
        .map_err(|e| Error::Readback(e.to_string()))?;
    let view = read
        .slice(..)
        .get_mapped_range()
        .map_err(|e| Error::Readback(e.to_string()))?;
    let ticks = bytemuck::pod_collect_to_vec(&view[..count * 8]);
    drop(view);
    read.unmap();
    Ok(ticks)
}

/// One submitted compute pass timed whole ([`Gpu::set_pass_timing`]): its GPU start and end, in ms
/// of the GPU's clock (comparable between passes: the gap from one pass's end to the next one's start
/// is time the GPU spent outside the passes, between submits).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PassTime {
    pub start_ms: f64,
    pub end_ms: f64,
}

/// Reads `pending` (one label each, after its work was submitted): each pass's start and end, in
/// submission order.
pub(crate) async fn collect_passes(gpu: &Gpu, pending: Vec<Pending>) -> Result<Vec<PassTime>> {
    let period = f64::from(gpu.queue().get_timestamp_period());
    let mut out = Vec::with_capacity(pending.len());
    for p in pending {
        if p.labels.is_empty() {
            continue;
        }
        let ticks = read_ticks(gpu, &p.read, 2).await?;
        out.push(PassTime {
            start_ms: ticks[0] as f64 * period / 1e6,
            end_ms: ticks[1] as f64 * period / 1e6,
        });
    }
    Ok(out)
}

/// Reads `pending` (after its work was submitted) and sums the time by label, most first.
pub(crate) async fn collect(gpu: &Gpu, pending: Vec<Pending>) -> Result<Vec<KernelTime>> {
    let mut totals: Vec<KernelTime> = Vec::new();
    let period = f64::from(gpu.queue().get_timestamp_period());
    for p in pending {
        if p.labels.is_empty() {
            continue;
        }
        let ticks = read_ticks(gpu, &p.read, p.labels.len() * 2).await?;
        for (label, pair) in p.labels.iter().zip(ticks.chunks_exact(2)) {
            let ms = pair[1].saturating_sub(pair[0]) as f64 * period / 1e6;
            match totals.iter_mut().find(|t| *t.kernel == **label) {
                Some(t) => {
                    t.dispatches += 1;
                    t.ms += ms;
                }
                None => totals.push(KernelTime {
                    kernel: label.to_string(),
                    dispatches: 1,
                    ms,
                }),
            }
        }
    }
    totals.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    Ok(totals)
}
