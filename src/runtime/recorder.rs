//! [`Recorder`]: kernels record their dispatches here, into one command encoder and one compute pass,
//! so that a whole computation (a forward pass) reaches the GPU in a single submit and its
//! intermediate tensors never leave the GPU.

use std::sync::Arc;

use crate::bind_groups::BoundBuffer;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::runtime::buffer::GpuBuffer;
use crate::tensor::{Tensor, padded_size};

/// Collects dispatches until [`Recorder::submit`].
///
/// ```no_run
/// # async fn demo(gpu: &webgpu_infer::Gpu, a: &webgpu_infer::Tensor, b: &webgpu_infer::Tensor)
/// # -> webgpu_infer::Result<()> {
/// use webgpu_infer::kernels::elementwise;
/// let mut rec = gpu.recorder();
/// let sum = elementwise::add(&mut rec, a, b)?;
/// let prod = elementwise::mul(&mut rec, &sum, b)?; // runs after `add`, on the GPU
/// rec.submit();
/// let values = prod.to_f32_vec().await?;
/// # Ok(()) }
/// ```
pub struct Recorder {
    gpu: Gpu,
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    dispatches: u32,
    /// Every buffer a recorded dispatch binds, kept alive until the work is submitted (dropped buffers
    /// are destroyed, which would invalidate the recorded commands).
    retained: Vec<Arc<GpuBuffer>>,
    /// Textures a dispatch samples (image inputs), kept alive likewise.
    retained_textures: Vec<wgpu::Texture>,
    /// Kernel parameters: slots of one uniform buffer (a new chunk when one fills), written once at
    /// submit rather than one buffer and one write per dispatch.
    params: Vec<(Arc<GpuBuffer>, Vec<u8>)>,
    /// Benchmarks: the compute pass writes GPU timestamps at its start and end into queries 0 and 1.
    timestamps: Option<wgpu::QuerySet>,
    /// [`Gpu::set_profiling`]: the query sets timing each dispatch, the last one being filled.
    profile: Option<Vec<crate::profile::QueryBatch>>,
    /// [`Gpu::set_pass_timing`]: the two queries timing the whole pass (the `timestamps` set).
    pass_timing: Option<crate::profile::QueryBatch>,
    /// [`Recorder::read_at_submit`]: tensors copied to their staging buffers at submit.
    reads: Vec<(Tensor, Arc<GpuBuffer>)>,
}

/// Bytes of one uniform chunk: 256 parameter slots at the usual 256-byte offset alignment.
const PARAMS_CHUNK: u64 = 64 << 10;

impl Recorder {
    pub(crate) fn new(gpu: &Gpu) -> Self {
        Recorder {
            gpu: gpu.clone(),
            encoder: None,
            pass: None,
            dispatches: 0,
            retained: Vec::new(),
            retained_textures: Vec::new(),
            params: Vec::new(),
            timestamps: None,
            profile: gpu.profiling().then(Vec::new),
            pass_timing: None,
            reads: Vec::new(),
        }
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Number of dispatches recorded so far.
    pub fn dispatches(&self) -> u32 {
        self.dispatches
    }

    /// Records one dispatch of `pipeline`: `buffers` bound whole, in order, to `@group(0) @binding(i)`,
    /// and `params` (the kernel's sizes and offsets) in a uniform buffer at the next binding.
    pub(crate) fn dispatch<P: bytemuck::Pod>(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&Arc<GpuBuffer>],
        params: &P,
        workgroups: [u32; 3],
    ) {
        let bindings: Vec<(u32, &Arc<GpuBuffer>)> = (0u32..).zip(buffers.iter().copied()).collect();
        self.dispatch_at(
            pipeline,
            &bindings,
            buffers.len() as u32,
            params,
            workgroups,
        );
    }

    /// Records one dispatch with explicit binding numbers: for shaders whose entry points use
    /// different subsets of the module's bindings.
    pub(crate) fn dispatch_at<P: bytemuck::Pod>(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        bindings: &[(u32, &Arc<GpuBuffer>)],
        params_binding: u32,
        params: &P,
        workgroups: [u32; 3],
    ) {
        let whole: Vec<_> = bindings.iter().map(|&(at, b)| (at, b, 0)).collect();
        self.dispatch_inner(pipeline, None, &whole, params_binding, params, workgroups);
    }

    /// Records one dispatch that binds tensors from their first element: a view's byte offset is its
    /// binding's offset, so a kernel indexing from 0 reads the view. Callers check the offsets with
    /// [`crate::kernels::check_view_offsets`] (a multiple of `minStorageBufferOffsetAlignment`).
    pub(crate) fn dispatch_views<P: bytemuck::Pod>(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        views: &[(u32, &Tensor)],
        params_binding: u32,
        params: &P,
        workgroups: [u32; 3],
    ) {
        let bound: Vec<_> = views
            .iter()
            .map(|&(at, t)| (at, t.buffer(), t.offset()))
            .collect();
        self.dispatch_inner(pipeline, None, &bound, params_binding, params, workgroups);
    }

    /// Records one dispatch that reads `texture` (whole, mip 0) at binding 0, then the buffers.
    pub(crate) fn dispatch_texture<P: bytemuck::Pod>(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        texture: &wgpu::Texture,
        bindings: &[(u32, &Arc<GpuBuffer>)],
        params_binding: u32,
        params: &P,
        workgroups: [u32; 3],
    ) {
        let whole: Vec<_> = bindings.iter().map(|&(at, b)| (at, b, 0)).collect();
        self.dispatch_inner(
            pipeline,
            Some(texture),
            &whole,
            params_binding,
            params,
            workgroups,
        );
        self.retained_textures.push(texture.clone());
    }

    fn dispatch_inner<P: bytemuck::Pod>(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        texture: Option<&wgpu::Texture>,
        bindings: &[(u32, &Arc<GpuBuffer>, u64)],
        params_binding: u32,
        params: &P,
        workgroups: [u32; 3],
    ) {
        let (uniform, offset) = self.param_slot(bytemuck::bytes_of(params));
        let size = bytemuck::bytes_of(params).len() as u64;
        let entries: Vec<BoundBuffer> = bindings
            .iter()
            .map(|&(binding, buffer, offset)| BoundBuffer {
                binding,
                buffer: buffer.raw().clone(),
                offset,
                size: 0,
            })
            .chain([BoundBuffer {
                binding: params_binding,
                buffer: uniform.raw().clone(),
                offset,
                size,
            }])
            .collect();
        let (bind_group, created) = match texture {
            // Texture views are made per dispatch: no cache for them (image inputs, one dispatch).
            Some(t) => (self.texture_bind_group(pipeline, t, &entries), true),
            None => self.gpu.bind_group(pipeline, entries),
        };
        self.gpu.copy_stats().dispatch(created);
        if self.profile.is_some() {
            self.profiled_pass(pipeline);
        }
        let pass = self.pass();
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        self.dispatches += 1;
        self.retained
            .extend(bindings.iter().map(|&(_, b, _)| Arc::clone(b)));
    }

    /// A bind group with `texture` (whole, mip 0) at binding 0 and `entries`.
    fn texture_bind_group(
        &self,
        pipeline: &wgpu::ComputePipeline,
        texture: &wgpu::Texture,
        entries: &[BoundBuffer],
    ) -> wgpu::BindGroup {
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        crate::bind_groups::create(self.gpu.device(), pipeline, entries, Some(&view))
    }

    /// Reserves an aligned slot for `bytes` in the current parameter chunk (a new chunk when full).
    fn param_slot(&mut self, bytes: &[u8]) -> (Arc<GpuBuffer>, u64) {
        let align = u64::from(self.gpu.limits().min_uniform_buffer_offset_alignment).max(16);
        let fits = |used: &Vec<u8>| {
            (used.len() as u64).next_multiple_of(align) + bytes.len() as u64 <= PARAMS_CHUNK
        };
        let (chunk, used) = match self.params.last_mut() {
            Some(last) if fits(&last.1) => last,
            _ => {
                let usage = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
                let chunk = self.gpu.pooled_buffer(PARAMS_CHUNK, usage);
                self.params
                    .push((chunk, Vec::with_capacity(PARAMS_CHUNK as usize)));
                let n = self.params.len();
                &mut self.params[n - 1]
            }
        };
        let offset = (used.len() as u64).next_multiple_of(align);
        used.resize(offset as usize, 0);
        used.extend_from_slice(bytes);
        (Arc::clone(chunk), offset)
    }

    /// Profiling: ends the current pass and begins one for the next dispatch alone, timed into the
    /// next two queries under `pipeline`'s label.
    fn profiled_pass(&mut self, pipeline: &wgpu::ComputePipeline) {
        drop(self.pass.take());
        let label = self.gpu.pipeline_label(pipeline);
        let batches = self.profile.get_or_insert_with(Vec::new);
        if batches.last().is_none_or(crate::profile::QueryBatch::full) {
            batches.push(crate::profile::QueryBatch::new(&self.gpu));
        }
        let Some(batch) = batches.last_mut() else {
            return;
        };
        let index = batch.labels.len() as u32 * 2;
        batch.labels.push(label);
        let encoder = self.encoder.get_or_insert_with(|| {
            self.gpu
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        });
        self.pass = Some(
            encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &batch.set,
                        beginning_of_pass_write_index: Some(index),
                        end_of_pass_write_index: Some(index + 1),
                    }),
                })
                .forget_lifetime(),
        );
    }

    fn pass(&mut self) -> &mut wgpu::ComputePass<'static> {
        if self.pass.is_none() && self.timestamps.is_none() && self.gpu.pass_timing() {
            let mut batch = crate::profile::QueryBatch::with_queries(&self.gpu, 2);
            batch.labels.push("pass".into());
            self.timestamps = Some(batch.set.clone());
            self.pass_timing = Some(batch);
        }
        let (gpu, encoder, timestamps) = (&self.gpu, &mut self.encoder, &self.timestamps);
        self.pass.get_or_insert_with(|| {
            encoder
                .get_or_insert_with(|| {
                    gpu.device()
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
                })
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: timestamps.as_ref().map(|query_set| {
                        wgpu::ComputePassTimestampWrites {
                            query_set,
                            beginning_of_pass_write_index: Some(0),
                            end_of_pass_write_index: Some(1),
                        }
                    }),
                })
                .forget_lifetime()
        })
    }

    /// Benchmarks (devices with `TIMESTAMP_QUERY`): the compute pass, which must not have started yet,
    /// writes GPU timestamps into queries 0 (start) and 1 (end) of `query_set`.
    pub(crate) fn time_pass(&mut self, query_set: &wgpu::QuerySet) {
        debug_assert!(self.pass.is_none(), "time_pass after the pass began");
        self.timestamps = Some(query_set.clone());
    }

    /// Ends the pass and resolves the two timestamps of [`Recorder::time_pass`] into `dst`
    /// (`QUERY_RESOLVE | COPY_SRC`, 16 bytes), then copies them to `read` (`MAP_READ`).
    pub(crate) fn resolve_timestamps(&mut self, dst: &wgpu::Buffer, read: &wgpu::Buffer) {
        drop(self.pass.take());
        if let (Some(query_set), Some(encoder)) = (&self.timestamps, self.encoder.as_mut()) {
            encoder.resolve_query_set(query_set, 0..2, dst, 0);
            encoder.copy_buffer_to_buffer(dst, 0, read, 0, 16);
        }
    }

    /// Ends the compute pass and submits everything recorded, once.
    pub fn submit(mut self) -> Option<wgpu::SubmissionIndex> {
        self.submit_inner()
    }

    /// Submits, with `tensor`'s bytes copied to a mappable buffer at the end of the same submit:
    /// await [`Readback::bytes`] for them. Work submitted after this call does not delay the read
    /// (decoding submits further steps before reading this one's id).
    ///
    /// The buffer is mapped only when asked ([`Readback::start`], or `bytes`): in some WebGPU
    /// runtimes (Deno) `mapAsync` waits, on the calling thread, until the GPU has finished everything
    /// submitted, and resolves no sooner than ~11 ms later; starting many maps at once pays that
    /// once, and starting none per step lets the GPU run while the CPU records the next steps.
    pub fn submit_and_read(mut self, tensor: &Tensor) -> Readback {
        let mut read = self.read_at_submit(tensor);
        read.submission = self.submit_inner();
        read
    }

    /// `tensor`'s bytes as they are at the end of this recorder's work: copied to a mappable buffer
    /// when the recorder is submitted (so later dispatches may still be recorded: decoding records
    /// several steps, each with its token's read-back, into one submit). Before the read-back is
    /// started or awaited, the recorder must be submitted and [`Readback::submitted`] told its index.
    pub(crate) fn read_at_submit(&mut self, tensor: &Tensor) -> Readback {
        let gpu = self.gpu.clone();
        let len = tensor.size_in_bytes();
        // From the pool (creating a buffer is dear on the web path); `bytes` unmaps it before it
        // goes back, and one dropped while mapped or mapping is destroyed instead (BufferPool::put).
        let staging = gpu.pooled_buffer(
            padded_size(len),
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        self.reads.push((tensor.clone(), Arc::clone(&staging)));
        Readback {
            gpu,
            staging,
            len,
            submission: None,
            receiver: None,
            started: false,
            unmapped: false,
        }
    }

    /// Ends the pass and finishes the encoder without submitting it: measures the CPU cost of
    /// recording (`Generator::recording_cost`).
    pub fn finish_unsubmitted(mut self) -> Option<wgpu::CommandBuffer> {
        drop(self.pass.take());
        self.encoder.take().map(wgpu::CommandEncoder::finish)
    }

    fn submit_inner(&mut self) -> Option<wgpu::SubmissionIndex> {
        // The pass must end before the encoder can finish.
        drop(self.pass.take());
        for (tensor, staging) in std::mem::take(&mut self.reads) {
            let encoder = self.encoder.get_or_insert_with(|| {
                self.gpu
                    .device()
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
            });
            let bytes = staging.size();
            encoder.copy_buffer_to_buffer(tensor.buffer(), tensor.offset(), &staging, 0, bytes);
            self.retained.push(Arc::clone(tensor.buffer()));
        }
        let mut encoder = self.encoder.take()?;
        for batch in self.profile.take().unwrap_or_default() {
            let pending = batch.resolve(&self.gpu, &mut encoder);
            self.gpu.push_profile(pending);
        }
        if let Some(batch) = self.pass_timing.take() {
            let pending = batch.resolve(&self.gpu, &mut encoder);
            self.gpu.push_pass_time(pending);
        }
        for (chunk, bytes) in self.params.drain(..) {
            let len = (bytes.len() as u64).next_multiple_of(4) as usize;
            let mut padded = bytes;
            padded.resize(len, 0);
            self.gpu.write_buffer(&chunk, 0, &padded);
            self.retained.push(chunk);
        }
        let index = self.gpu.submit(encoder.finish());
        // Submitted: destroying these buffers now (if no tensor holds them) is safe, WebGPU frees them
        // after the work completes.
        self.retained.clear();
        self.retained_textures.clear();
        Some(index)
    }
}

/// Bytes on their way back from the GPU (see [`Recorder::submit_and_read`]).
pub struct Readback {
    gpu: Gpu,
    staging: Arc<GpuBuffer>,
    len: u64,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    submission: Option<wgpu::SubmissionIndex>,
    /// Set once the map has started.
    receiver:
        Option<futures_channel::oneshot::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>>,
    /// The map was started, and the staging buffer was read and unmapped: only a buffer never
    /// mapped, or mapped and unmapped again, may go back to the pool.
    started: bool,
    unmapped: bool,
}

impl Drop for Readback {
    fn drop(&mut self) {
        if self.started && !self.unmapped {
            self.staging.discard_on_drop();
        }
    }
}

impl Readback {
    /// The index of the submit that carries this read-back's copy ([`Recorder::read_at_submit`]).
    pub(crate) fn submitted(&mut self, index: Option<wgpu::SubmissionIndex>) {
        self.submission = index;
    }

    /// Starts mapping the bytes (idempotent; `bytes` starts it too).
    pub fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        let (sender, receiver) = futures_channel::oneshot::channel();
        self.staging
            .map_async(wgpu::MapMode::Read, .., move |result| {
                let _ = sender.send(result);
            });
        self.receiver = Some(receiver);
    }

    /// Waits for the submit that produced the bytes (natively by polling the device for that
    /// submission only; in the browser by awaiting mapAsync) and copies them out.
    pub async fn bytes(mut self) -> Result<Vec<u8>> {
        self.start();
        #[cfg(not(target_arch = "wasm32"))]
        self.gpu
            .device()
            .poll(wgpu::PollType::Wait {
                submission_index: self.submission.clone(),
                timeout: None,
            })
            .map_err(|e| Error::Readback(e.to_string()))?;
        let Some(receiver) = self.receiver.take() else {
            return Err(Error::Readback("the read-back was never mapped".into()));
        };
        let mapped = receiver.await;
        self.gpu.check()?;
        match mapped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Readback(e.to_string())),
            Err(_) => {
                return Err(Error::Readback(
                    "the map callback was dropped (device lost?)".into(),
                ));
            }
        }
        let view = self
            .staging
            .get_mapped_range(..)
            .map_err(|e| Error::Readback(e.to_string()))?;
        let out = crate::tensor::copy_out(&view, self.len as usize);
        drop(view);
        self.staging.unmap();
        self.unmapped = true;
        self.gpu.copy_stats().to_host(self.len);
        self.gpu.copy_stats().wasm_in(self.len);
        Ok(out)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // A recorder dropped without submit (an error part-way) discards its work: end the pass first
        // so wgpu does not report an encoder dropped mid-pass.
        drop(self.pass.take());
    }
}
