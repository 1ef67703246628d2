//! Choosing what to ask of an adapter (features, capabilities), recognising software adapters and
//! unified memory, the hint when there is none, and turning device errors into faults.

use std::sync::{Arc, Mutex, PoisonError};

use super::{Capabilities, Fault, GpuOptions};

pub(super) fn instance_descriptor() -> wgpu::InstanceDescriptor {
    // Natively, WGPU_BACKEND=vulkan|metal|dx12|gl narrows the choice; in a browser only WebGPU exists.
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if cfg!(target_arch = "wasm32") {
        desc.backends = wgpu::Backends::BROWSER_WEBGPU;
    }
    desc
}

pub(super) fn wanted_features(options: &GpuOptions, info: &wgpu::AdapterInfo) -> wgpu::Features {
    let mut wanted = wgpu::Features::empty();
    if options.allow_subgroups {
        wanted |= wgpu::Features::SUBGROUP;
    }
    // Natively, benchmarks time compute passes on the GPU (src/bench.rs); browsers quantize
    // timestamps, so there only for profiling.
    if options.allow_timestamps {
        wanted |= wgpu::Features::TIMESTAMP_QUERY;
    }
    if options.allow_f16 {
        wanted |= wgpu::Features::SHADER_F16;
    }
    // Storage buffers the CPU can map: on unified memory that is the GPU's own memory, so weights are
    // written in place. On a discrete GPU such buffers would live in slow host memory: not requested.
    if options.allow_mappable_storage && is_unified_memory(info) {
        wanted |= wgpu::Features::MAPPABLE_PRIMARY_BUFFERS;
    }
    wanted
}

/// The adapter multiplies 16×16×16 f16 tiles into f32 accumulators on 32-wide subgroups: what
/// shaders/matmul_coop.wgsl assumes (it maps subgroups to tiles by invocation index / 32).
pub(super) fn has_f16_coop_16x16(adapter: &wgpu::Adapter, info: &wgpu::AdapterInfo) -> bool {
    if cfg!(target_arch = "wasm32") || info.subgroup_min_size != 32 || info.subgroup_max_size != 32
    {
        return false;
    }
    adapter.cooperative_matrix_properties().iter().any(|p| {
        (p.m_size, p.n_size, p.k_size) == (16, 16, 16)
            && p.ab_type == wgpu::CooperativeScalarType::F16
            && p.cr_type == wgpu::CooperativeScalarType::F32
    })
}

fn is_unified_memory(info: &wgpu::AdapterInfo) -> bool {
    matches!(
        info.device_type,
        wgpu::DeviceType::Cpu | wgpu::DeviceType::IntegratedGpu
    ) || is_software_name(&info.name)
}

pub(super) fn capabilities(
    info: &wgpu::AdapterInfo,
    features: wgpu::Features,
    options: &GpuOptions,
) -> Capabilities {
    let software = info.device_type == wgpu::DeviceType::Cpu || is_software_name(&info.name);
    let subgroups = features.contains(wgpu::Features::SUBGROUP);
    let warps = subgroups && info.subgroup_min_size == 32 && info.subgroup_max_size == 32;
    Capabilities {
        mappable_storage: features.contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
        shader_f16: features.contains(wgpu::Features::SHADER_F16),
        subgroups,
        cooperative_matrix: features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
            && features.contains(wgpu::Features::SHADER_F16),
        subgroup_min_size: info.subgroup_min_size,
        subgroup_max_size: info.subgroup_max_size,
        software,
        cpu_kernels: options.cpu_kernels.unwrap_or(software),
        decode_merge: options.decode_merge.unwrap_or(warps),
        unified_memory: is_unified_memory(info),
    }
}

fn is_software_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["swiftshader", "llvmpipe", "lavapipe", "warp", "software"]
        .iter()
        .any(|s| name.contains(s))
}

pub(super) fn no_adapter_hint(err: &str) -> String {
    if cfg!(target_arch = "wasm32") {
        // wgpu's own text lists native backends, which mean nothing in a browser.
        "the browser exposes WebGPU but requestAdapter() found no adapter: the GPU or its driver may be \
         blocklisted, or WebGPU is off for this platform (Chrome on Linux: enable \
         chrome://flags/#enable-unsafe-webgpu or start it with --enable-unsafe-webgpu)"
            .to_string()
    } else {
        format!(
            "{err}; install a Vulkan driver (on Linux without a GPU: Mesa's lavapipe, which \
             scripts/setup.sh installs) or run on a machine with Metal, Vulkan or D3D12"
        )
    }
}

/// Routes WebGPU's asynchronous errors into `fault` so that [`Gpu::check`] turns them into typed
/// errors. Without this, wgpu's default handler panics natively and the browser only logs.
pub(super) fn install_fault_handlers(device: &wgpu::Device, fault: &Arc<Mutex<Option<Fault>>>) {
    let on_error = Arc::clone(fault);
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        let mut slot = on_error.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(Fault::Error(e.to_string()));
        }
    }));
    let on_lost = Arc::clone(fault);
    device.set_device_lost_callback(move |reason, message| {
        let mut slot = on_lost.lock().unwrap_or_else(PoisonError::into_inner);
        *slot = Some(Fault::Lost {
            reason: format!("{reason:?}"),
            message,
        });
    });
}
