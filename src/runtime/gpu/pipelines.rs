//! The pipeline cache: one compute pipeline per (shader, dtype, entry point, constants), compiled
//! once, with a label per pipeline for profiles.

use std::sync::{Arc, PoisonError};

use super::{Gpu, KernelSource, PipelineKey};

impl Gpu {
    /// Compute pipelines compiled so far (each kept for reuse): a count that stays put once every
    /// shape a model runs has been seen.
    pub fn pipeline_count(&self) -> usize {
        self.inner
            .pipelines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The compute pipeline for `src`, compiled once per (shader, entry point, constants) and cached.
    pub fn pipeline(&self, src: &KernelSource<'_>) -> wgpu::ComputePipeline {
        let key = PipelineKey {
            shader: src.name,
            dtype: src.dtype,
            entry: src.entry,
            variant: src
                .constants
                .iter()
                .map(|&(k, v)| (k, v.to_bits()))
                .collect(),
        };
        let mut pipelines = self
            .inner
            .pipelines
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = pipelines.get(&key) {
            return p.clone();
        }
        let module = self.module(src);
        let pipeline =
            self.inner
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(src.name),
                    layout: None,
                    module: &module,
                    entry_point: Some(src.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: src.constants,
                        // Kernels initialise the workgroup memory they read; skip the implicit zeroing.
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                });
        let mut label = format!("{}/{} {:?}", src.name, src.entry, src.dtype);
        for (k, v) in src.constants {
            label.push_str(&format!(" {k}={v}"));
        }
        self.inner
            .pipeline_labels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(pipeline.clone(), label.into());
        pipelines.insert(key, pipeline.clone());
        pipeline
    }

    /// The label of a pipeline made by [`Gpu::pipeline`] (for profiles).
    pub(crate) fn pipeline_label(&self, pipeline: &wgpu::ComputePipeline) -> Arc<str> {
        self.inner
            .pipeline_labels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(pipeline)
            .cloned()
            .unwrap_or_else(|| "unnamed pipeline".into())
    }

    fn module(&self, src: &KernelSource<'_>) -> wgpu::ShaderModule {
        let mut modules = self
            .inner
            .modules
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        modules
            .entry((src.name, src.dtype))
            .or_insert_with(|| {
                // `enable` directives must precede every declaration, the prelude's alias included;
                // each once (a body may enable f16 that an f16 prelude enables too).
                let (prelude_enables, prelude): (Vec<&str>, Vec<&str>) = src
                    .dtype
                    .wgsl_prelude()
                    .lines()
                    .partition(|line| line.starts_with("enable "));
                let (body_enables, rest): (Vec<&str>, Vec<&str>) = src
                    .body
                    .lines()
                    .partition(|line| line.starts_with("enable "));
                let mut enables: Vec<&str> = Vec::new();
                for e in body_enables.into_iter().chain(prelude_enables) {
                    if !enables.contains(&e.trim()) {
                        enables.push(e.trim());
                    }
                }
                let source = format!(
                    "{}{}\n{}",
                    enables.iter().map(|l| format!("{l}\n")).collect::<String>(),
                    prelude.join("\n"),
                    rest.join("\n")
                );
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(src.name),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                };
                if self.inner.unchecked_shaders {
                    // SAFETY: opted into by the caller (GpuOptions::unchecked_shaders); every kernel
                    // validates its shapes before dispatch and bounds-checks its own edges.
                    unsafe {
                        self.inner.device.create_shader_module_trusted(
                            desc,
                            wgpu::ShaderRuntimeChecks::unchecked(),
                        )
                    }
                } else {
                    self.inner.device.create_shader_module(desc)
                }
            })
            .clone()
    }
}
