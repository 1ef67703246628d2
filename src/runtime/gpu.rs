//! Adapter and device acquisition on both targets, the capabilities kernels choose variants by, error
//! capture (so that a WebGPU error or a lost device becomes an [`Error`], never a panic or a hang) and
//! the pipeline cache.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::bind_groups::{BindGroupCache, BoundBuffer};
use crate::error::{Error, Result};
use crate::runtime::buffer::{BufferPool, GpuBuffer};
use crate::runtime::stats::{CopyStats, Stats};
use crate::tensor::DType;

mod adapter;
mod pipelines;
use adapter::{
    capabilities, has_f16_coop_16x16, install_fault_handlers, instance_descriptor, no_adapter_hint,
    wanted_features,
};

/// How to pick the adapter and what to ask of it.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Passed to `requestAdapter`; high performance picks the discrete GPU on dual-GPU laptops.
    pub power_preference: wgpu::PowerPreference,
    /// Ask for the software fallback adapter (SwiftShader, WARP, llvmpipe) instead of a real GPU.
    pub force_fallback_adapter: bool,
    /// Request `shader-f16` where the adapter has it (default). Turn it off to exercise f32-only paths.
    pub allow_f16: bool,
    /// Natively on unified memory, request `MAPPABLE_PRIMARY_BUFFERS` so weights are written straight
    /// into storage buffers (default). Turn it off to exercise the staging path discrete GPUs take.
    pub allow_mappable_storage: bool,
    /// Natively, compile kernels without wgpu's own shader bounds checks (on by default natively).
    /// Every kernel validates its shapes on the CPU and guards its edges in WGSL, and wgpu's Vulkan
    /// backend still enables the driver's robust buffer access; wgpu's extra per-access clamps cost
    /// up to 37× on the H100's matmul (bench-results/). Ignored in browsers, which always check.
    pub unchecked_shaders: bool,
    /// Natively, use tensor cores for f16 matrix products where the adapter offers wgpu's
    /// `EXPERIMENTAL_COOPERATIVE_MATRIX` with 16×16×16 f16 → f32 products and 32-wide subgroups (NVIDIA
    /// through Vulkan; default on). wgpu marks the feature experimental: turn this off to keep every
    /// kernel on portable WGSL. Ignored in browsers, which have no such feature.
    pub allow_cooperative_matrix: bool,
    /// Pick kernels written for CPU adapters (one thread an output, no workgroup barriers) rather than
    /// for GPUs. `None` (the default) decides by the adapter: CPU kernels on software adapters.
    pub cpu_kernels: Option<bool>,
    /// Request subgroup operations where the adapter has them (default). Browsers offer none today
    /// (wgpu's web backend, Chrome without the `subgroups` feature): turn this off, with
    /// `unchecked_shaders` off, to run natively the kernels a page runs.
    pub allow_subgroups: bool,
    /// Decoding: the attention's out-projection merges the split decode's ranges of keys itself
    /// (`kernels::quant::gemv_merged`), one dispatch fewer a layer past 128 cached keys. `None` (the
    /// default) decides by the adapter: on where subgroups are 32 lanes wide (NVIDIA natively: an
    /// H100 decoded 2 % faster at 512 and 1 024 new tokens), off elsewhere (the same H100 through
    /// Dawn, Chrome's WebGPU, decoded slower with it; `bench-results/h100-decode-merged-2026-12-07.jsonl`).
    pub decode_merge: Option<bool>,
    /// Request `timestamp-query` where the adapter has it: natively by default (benchmarks time
    /// passes on the GPU, [`Gpu::set_profiling`] times kernels); in browsers only when asked
    /// (`Device.create({ profile: true })`), where timestamps may be quantized.
    pub allow_timestamps: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        Self {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            allow_f16: true,
            allow_mappable_storage: true,
            unchecked_shaders: true,
            allow_cooperative_matrix: true,
            cpu_kernels: None,
            allow_subgroups: true,
            decode_merge: None,
            allow_timestamps: !cfg!(target_arch = "wasm32"),
        }
    }
}

/// What the device can do, as kernels need to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// WGSL `enable f16;` works: f16 storage and arithmetic.
    pub shader_f16: bool,
    /// Subgroup operations (natively only in wgpu 30).
    pub subgroups: bool,
    /// f16 matrix products run on tensor cores (see [`GpuOptions::allow_cooperative_matrix`]).
    pub cooperative_matrix: bool,
    /// Smallest and largest subgroup size the adapter reports (0 when unknown).
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
    /// A CPU implementation (SwiftShader, llvmpipe, WARP): correct but 10-100x slower than a GPU.
    pub software: bool,
    /// Kernels pick their CPU-adapter variants (see [`GpuOptions::cpu_kernels`]).
    pub cpu_kernels: bool,
    /// Decoding merges the split attention into its out-projection (see
    /// [`GpuOptions::decode_merge`]).
    pub decode_merge: bool,
    /// CPU and GPU share memory (integrated GPUs, Apple Silicon, software adapters).
    pub unified_memory: bool,
    /// Storage buffers can be mapped by the CPU (native `MAPPABLE_PRIMARY_BUFFERS`, requested only on
    /// unified memory): weights are then written straight into the buffers kernels read.
    pub mappable_storage: bool,
}

/// Bytes of free intermediate buffers kept for reuse.
const POOL_BYTES: u64 = 1 << 30;

/// Bind groups kept for reuse: a decoding step of a 30-layer model makes ~330, a step's buffers
/// alternate between two sets as the pool hands them back; room for several models' steps.
const BIND_GROUP_CACHE: usize = 8192;

/// Identifies one compiled pipeline: a shader module, its storage type, its entry point and the
/// pipeline-override constants of this variant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PipelineKey {
    shader: &'static str,
    dtype: DType,
    entry: &'static str,
    /// The override constants, values as f64 bits (no formatting on the per-dispatch path).
    variant: Vec<(&'static str, u64)>,
}

/// Everything needed to build one compute pipeline.
pub struct KernelSource<'a> {
    /// Name of the shader (its .wgsl file): with `dtype`, the cache key for shader modules.
    pub name: &'static str,
    /// WGSL source; it names its storage element type `T`, which the prelude of `dtype` defines.
    pub body: &'static str,
    pub dtype: DType,
    pub entry: &'static str,
    /// Values for the shader's `override` declarations.
    pub constants: &'a [(&'static str, f64)],
}

/// A GPU device, its queue and what it can do. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Gpu {
    inner: Arc<Inner>,
}

struct Inner {
    /// Kept for surfaces (drawing into a canvas on the web).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    instance: wgpu::Instance,
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    caps: Capabilities,
    pipelines: Mutex<FxHashMap<PipelineKey, wgpu::ComputePipeline>>,
    /// Each pipeline's label for profiles (`shader/entry dtype constants`).
    pipeline_labels: Mutex<FxHashMap<wgpu::ComputePipeline, Arc<str>>>,
    /// [`Gpu::set_profiling`]: recorders time every dispatch.
    profiling: AtomicBool,
    /// Timestamps of submitted, profiled work not yet read ([`Gpu::take_profile`]).
    profile: Mutex<Vec<crate::profile::Pending>>,
    /// [`Gpu::set_pass_timing`]: recorders time their compute pass whole.
    pass_timing: AtomicBool,
    /// Those passes' timestamps, submitted and not yet read ([`Gpu::take_pass_times`]).
    pass_times: Mutex<Vec<crate::profile::Pending>>,
    unchecked_shaders: bool,
    modules: Mutex<HashMap<(&'static str, DType), wgpu::ShaderModule>>,
    /// First error WebGPU reported outside an error scope, or the device-lost reason.
    fault: Arc<Mutex<Option<Fault>>>,
    stats: Arc<CopyStats>,
    pool: Arc<BufferPool>,
    bind_groups: Mutex<BindGroupCache>,
}

#[derive(Clone, Debug)]
enum Fault {
    Lost { reason: String, message: String },
    Error(String),
}

impl Gpu {
    /// The default adapter with the default options.
    pub async fn new() -> Result<Gpu> {
        Self::with_options(&GpuOptions::default()).await
    }

    /// Acquires an adapter and a device with every feature and limit later kernels can use.
    pub async fn with_options(options: &GpuOptions) -> Result<Gpu> {
        #[cfg(target_arch = "wasm32")]
        if !crate::runtime::browser::navigator_has_gpu() {
            return Err(Error::NoWebGpu);
        }
        let instance = wgpu::Instance::new(instance_descriptor());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: options.power_preference,
                force_fallback_adapter: options.force_fallback_adapter,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| Error::NoAdapter(no_adapter_hint(&e.to_string())))?;
        #[allow(unused_mut)]
        let mut info = adapter.get_info();
        #[cfg(target_arch = "wasm32")]
        crate::runtime::browser::complete_adapter_info(&mut info).await;
        let mut wanted = wanted_features(options, &info);
        if options.allow_cooperative_matrix && has_f16_coop_16x16(&adapter, &info) {
            wanted |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        }
        let features = adapter.features() & wanted;
        // Every limit raised to what the adapter offers: big weights need max_buffer_size and
        // max_storage_buffer_binding_size, tiled kernels need workgroup storage.
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("webgpu-infer"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: if features
                    .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
                {
                    // SAFETY: only the cooperative-matrix feature is experimental here, opted into by
                    // GpuOptions::allow_cooperative_matrix; one kernel (shaders/matmul_coop.wgsl)
                    // uses it, tested against a CPU reference where the adapter has it.
                    unsafe { wgpu::ExperimentalFeatures::enabled() }
                } else {
                    wgpu::ExperimentalFeatures::disabled()
                },
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::RequestDevice(e.to_string()))?;
        let caps = capabilities(&info, device.features(), options);
        let fault = Arc::new(Mutex::new(None));
        install_fault_handlers(&device, &fault);
        let stats = Arc::new(CopyStats::default());
        Ok(Gpu {
            inner: Arc::new(Inner {
                instance,
                device,
                queue,
                info,
                limits,
                caps,
                pipelines: Mutex::new(FxHashMap::default()),
                pipeline_labels: Mutex::new(FxHashMap::default()),
                profiling: AtomicBool::new(false),
                profile: Mutex::new(Vec::new()),
                pass_timing: AtomicBool::new(false),
                pass_times: Mutex::new(Vec::new()),
                unchecked_shaders: options.unchecked_shaders && !cfg!(target_arch = "wasm32"),
                modules: Mutex::new(HashMap::new()),
                fault,
                pool: BufferPool::new(POOL_BYTES, &stats),
                bind_groups: Mutex::new(BindGroupCache::new(BIND_GROUP_CACHE)),
                stats,
            }),
        })
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    #[cfg(target_arch = "wasm32")]
    pub(crate) fn instance(&self) -> &wgpu::Instance {
        &self.inner.instance
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// Adapter name, backend and driver (on the web, only what the browser discloses).
    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    /// The device's limits (equal to the adapter's: they are all requested).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    /// A one-line description for logs and benchmark JSON, e.g. `llvmpipe (LLVM 19.1.7, 256 bits) (Vulkan)`.
    pub fn adapter_name(&self) -> String {
        let info = &self.inner.info;
        let name = if info.name.is_empty() {
            "unnamed adapter"
        } else {
            &info.name
        };
        format!("{name} ({:?})", info.backend)
    }

    /// Returns the error WebGPU reported since the device was created, if any: a lost device or an
    /// uncaptured validation / out-of-memory error. Operations call this before handing back results.
    pub fn check(&self) -> Result<()> {
        let fault = self
            .inner
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match fault {
            None => Ok(()),
            Some(Fault::Lost { reason, message }) => Err(Error::DeviceLost { reason, message }),
            Some(Fault::Error(message)) => Err(Error::Gpu(message)),
        }
    }

    /// Turns per-kernel GPU timing on or off for recorders made from now on (see [`crate::profile`]):
    /// each dispatch then runs in a compute pass of its own, which slows the whole down a little.
    /// Needs `TIMESTAMP_QUERY` (natively on most GPUs; in browsers requested only with
    /// [`GpuOptions::allow_timestamps`]).
    pub fn set_profiling(&self, on: bool) -> Result<()> {
        self.timestamps_for("profiling", on)?;
        self.inner.profiling.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Refuses turning `op` on where the device has no `TIMESTAMP_QUERY`.
    fn timestamps_for(&self, op: &'static str, on: bool) -> Result<()> {
        if on
            && !self
                .inner
                .device
                .features()
                .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return Err(Error::MissingFeature {
                op,
                feature: "timestamp-query",
            });
        }
        Ok(())
    }

    pub(crate) fn profiling(&self) -> bool {
        self.inner.profiling.load(Ordering::Relaxed)
    }

    /// Turns whole-pass GPU timing on or off for recorders made from now on: each submitted
    /// recorder's compute pass (a forward pass, a decoding step) writes a GPU timestamp at its start
    /// and its end, read by [`Gpu::take_pass_times`]. Unlike [`Gpu::set_profiling`] the dispatches
    /// stay in one pass, so the times are the work as it runs, and the gaps between passes are the
    /// GPU's idle time between submits. Ignored while per-kernel profiling is on. Needs
    /// `TIMESTAMP_QUERY`.
    pub fn set_pass_timing(&self, on: bool) -> Result<()> {
        self.timestamps_for("pass timing", on)?;
        self.inner.pass_timing.store(on, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn pass_timing(&self) -> bool {
        self.inner.pass_timing.load(Ordering::Relaxed) && !self.profiling()
    }

    pub(crate) fn push_pass_time(&self, pending: crate::profile::Pending) {
        self.inner
            .pass_times
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pending);
    }

    /// The start and end of every pass timed ([`Gpu::set_pass_timing`]) and submitted since the
    /// last call, in submission order.
    pub async fn take_pass_times(&self) -> Result<Vec<crate::profile::PassTime>> {
        let pending = std::mem::take(
            &mut *self
                .inner
                .pass_times
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        crate::profile::collect_passes(self, pending).await
    }

    pub(crate) fn push_profile(&self, pending: crate::profile::Pending) {
        self.inner
            .profile
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pending);
    }

    /// GPU time by kernel of everything profiled and submitted since the last call, most first.
    pub async fn take_profile(&self) -> Result<Vec<crate::profile::KernelTime>> {
        let pending = std::mem::take(
            &mut *self
                .inner
                .profile
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        crate::profile::collect(self, pending).await
    }

    /// Whether shaders run without WebGPU's runtime checks (native only, `GpuOptions::unchecked_shaders`).
    pub fn unchecked_shaders(&self) -> bool {
        self.inner.unchecked_shaders
    }

    /// What has been copied where so far (see [`Stats`]).
    pub fn stats(&self) -> Stats {
        self.inner.stats.snapshot()
    }

    /// Zeroes the byte and submit counters of [`Gpu::stats`].
    pub fn reset_stats(&self) {
        self.inner.stats.reset();
    }

    pub(crate) fn copy_stats(&self) -> &CopyStats {
        &self.inner.stats
    }

    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn copy_stats_arc(&self) -> &Arc<CopyStats> {
        &self.inner.stats
    }

    /// Creates a buffer counted in [`Gpu::stats`] and destroyed when its last handle drops.
    pub fn create_buffer(&self, desc: &wgpu::BufferDescriptor<'_>) -> Arc<GpuBuffer> {
        Arc::new(GpuBuffer::new(&self.inner.device, &self.inner.stats, desc))
    }

    /// A buffer from the pool (reused when one of this size and usage is free): for tensors that
    /// kernels write before anything reads them.
    pub(crate) fn pooled_buffer(&self, size: u64, usage: wgpu::BufferUsages) -> Arc<GpuBuffer> {
        let buffer = self.inner.pool.take(&self.inner.device, size, usage);
        // Debug builds (the tests) fill new tensors with 0xFF bytes, a NaN in f32 and f16, so that an
        // output a kernel forgets to write shows up instead of passing with a reused buffer's old
        // (possibly right) values.
        if cfg!(debug_assertions) && usage.contains(wgpu::BufferUsages::COPY_DST) {
            self.inner
                .queue
                .write_buffer(&buffer, 0, &vec![0xFF; size as usize]);
        }
        Arc::new(buffer)
    }

    /// Frees the GPU memory of every buffer the pool keeps for reuse, and forgets the cached bind
    /// groups (which hold buffer handles).
    pub fn trim_pool(&self) {
        self.inner.pool.clear();
        self.bind_groups().clear();
    }

    fn bind_groups(&self) -> std::sync::MutexGuard<'_, BindGroupCache> {
        self.inner
            .bind_groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The bind group of `pipeline` over `entries` (cached: see `bind_groups.rs`), and whether it was
    /// made now.
    pub(crate) fn bind_group(
        &self,
        pipeline: &wgpu::ComputePipeline,
        entries: Vec<BoundBuffer>,
    ) -> (wgpu::BindGroup, bool) {
        self.bind_groups()
            .get_or_create(&self.inner.device, pipeline, entries)
    }

    /// Bind groups kept for reuse now.
    pub fn cached_bind_groups(&self) -> usize {
        self.bind_groups().len()
    }

    /// `queue.write_buffer`, counted.
    pub(crate) fn write_buffer(&self, buffer: &wgpu::Buffer, offset: u64, bytes: &[u8]) {
        self.inner.queue.write_buffer(buffer, offset, bytes);
        self.inner.stats.to_gpu(bytes.len() as u64);
    }

    /// `queue.submit`, counted.
    pub(crate) fn submit(&self, commands: wgpu::CommandBuffer) -> wgpu::SubmissionIndex {
        self.inner.stats.submit();
        self.inner.queue.submit([commands])
    }

    /// Resolves when all work submitted so far has finished on the GPU (for timing and for tests).
    pub async fn sync(&self) -> Result<()> {
        let (sender, receiver) = futures_channel::oneshot::channel();
        self.inner.queue.on_submitted_work_done(move || {
            let _ = sender.send(());
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(e.to_string()))?;
        let done = receiver.await;
        self.check()?;
        done.map_err(|_| Error::Gpu("the GPU queue went away (device lost?)".into()))
    }

    /// A recorder for a batch of kernels that will be submitted together.
    pub fn recorder(&self) -> crate::Recorder {
        crate::Recorder::new(self)
    }

    /// Checks a workgroup count against `max_compute_workgroups_per_dimension`.
    pub(crate) fn check_workgroups(&self, what: &str, count: u32) -> Result<()> {
        let limit = self.inner.limits.max_compute_workgroups_per_dimension;
        if count > limit {
            return Err(Error::LimitExceeded {
                what: format!("{what} (workgroups in one dispatch dimension)"),
                value: count.into(),
                limit_name: "maxComputeWorkgroupsPerDimension",
                limit: limit.into(),
            });
        }
        Ok(())
    }
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.adapter_name())
            .field("capabilities", &self.inner.caps)
            .finish()
    }
}
