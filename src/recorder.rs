//! [`Recorder`]: kernels record their dispatches here, into one command encoder and one compute pass,
//! so that a whole computation (a forward pass) reaches the GPU in a single submit and its
//! intermediate tensors never leave the GPU.

use wgpu::util::DeviceExt;

use crate::gpu::Gpu;

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
}

impl Recorder {
    pub(crate) fn new(gpu: &Gpu) -> Self {
        Recorder {
            gpu: gpu.clone(),
            encoder: None,
            pass: None,
            dispatches: 0,
        }
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Number of dispatches recorded so far.
    pub fn dispatches(&self) -> u32 {
        self.dispatches
    }

    /// A uniform buffer holding `params` (a kernel's shape and offsets).
    pub(crate) fn uniform<P: bytemuck::Pod>(&self, params: &P) -> wgpu::Buffer {
        self.gpu
            .device()
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::bytes_of(params),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    /// Records one dispatch of `pipeline` with `buffers` bound, in order, to `@group(0) @binding(i)`.
    pub(crate) fn dispatch(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[wgpu::BindingResource<'_>],
        workgroups: [u32; 3],
    ) {
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, resource)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: resource.clone(),
            })
            .collect();
        let bind_group = self
            .gpu
            .device()
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            });
        let pass = self.pass();
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        self.dispatches += 1;
    }

    fn pass(&mut self) -> &mut wgpu::ComputePass<'static> {
        if self.pass.is_none() {
            let encoder = self.encoder.get_or_insert_with(|| {
                self.gpu
                    .device()
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
            });
            let pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor::default())
                .forget_lifetime();
            self.pass = Some(pass);
        }
        self.pass.as_mut().expect("pass was just opened")
    }

    /// Ends the compute pass and submits everything recorded, once.
    pub fn submit(mut self) -> Option<wgpu::SubmissionIndex> {
        // The pass must end before the encoder can finish.
        drop(self.pass.take());
        let encoder = self.encoder.take()?;
        Some(self.gpu.queue().submit([encoder.finish()]))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // A recorder dropped without submit (an error part-way) discards its work: end the pass first
        // so wgpu does not report an encoder dropped mid-pass.
        drop(self.pass.take());
    }
}
