//! `backend: "auto" | "gpu" | "cpu"` of `Device.create` and every load call: where models that have a
//! CPU path (embedders, generators, classifiers) run. `auto` (the default) takes the GPU when the browser offers a
//! hardware adapter, and the CPU backend when it offers none or only a software one (SwiftShader
//! runs WGSL on the CPU far slower than the CPU backend's own kernels).

use js_sys::Object;

use crate::cpu::Cpu;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuOptions};

/// What a caller asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Choice {
    Auto,
    Gpu,
    Cpu,
}

impl Choice {
    /// `options.backend`, `Auto` when absent; anything else is refused by name.
    pub(crate) fn from_js(options: Option<&Object>) -> Result<Option<Choice>> {
        let value = options
            .and_then(|o| js_sys::Reflect::get(o, &"backend".into()).ok())
            .filter(|v| !v.is_undefined() && !v.is_null());
        let Some(value) = value else {
            return Ok(None);
        };
        match value.as_string().as_deref() {
            Some("auto") => Ok(Some(Choice::Auto)),
            Some("gpu") => Ok(Some(Choice::Gpu)),
            Some("cpu") => Ok(Some(Choice::Cpu)),
            _ => Err(Error::Input(format!(
                "backend must be \"auto\", \"gpu\" or \"cpu\", not {value:?}"
            ))),
        }
    }
}

/// Where embedders run on a device, and why (shown by the demo pages).
#[derive(Clone)]
pub(crate) struct Placement {
    /// The adapter's device, when there is one (generators and image models need it).
    pub gpu: Option<Gpu>,
    pub cpu: Cpu,
    /// `"gpu"` or `"cpu"`.
    pub backend: &'static str,
    pub reason: String,
}

impl Placement {
    /// Acquires what `choice` needs: `Gpu` fails without an adapter; `Cpu` requests none; `Auto`
    /// requests one and keeps it (for models without a CPU path) but places models on the CPU when
    /// it is missing or software.
    pub(crate) async fn acquire(choice: Choice, options: &GpuOptions) -> Result<Placement> {
        let cpu = Cpu::new();
        crate::web::stats::register_stats(cpu.copy_stats_arc());
        let place = |gpu, backend, reason: String| Placement {
            gpu,
            cpu: cpu.clone(),
            backend,
            reason,
        };
        Ok(match choice {
            Choice::Cpu => place(None, "cpu", "requested (backend: \"cpu\")".into()),
            Choice::Gpu => {
                let gpu = new_gpu(options).await?;
                place(Some(gpu), "gpu", "requested (backend: \"gpu\")".into())
            }
            Choice::Auto => match new_gpu(options).await {
                Ok(gpu) if gpu.capabilities().software => {
                    let reason = format!(
                        "software adapter ({}): the CPU backend is faster",
                        gpu.adapter_name()
                    );
                    place(Some(gpu), "cpu", reason)
                }
                Ok(gpu) => {
                    let reason = format!("hardware adapter ({})", gpu.adapter_name());
                    place(Some(gpu), "gpu", reason)
                }
                Err(e) => place(None, "cpu", format!("no WebGPU ({e})")),
            },
        })
    }

    /// The placement for one load: the device's own, or the load's `backend` when it gives one
    /// (`gpu` on a device without an adapter is refused).
    pub(crate) fn for_load(&self, choice: Option<Choice>) -> Result<Placement> {
        let mut p = self.clone();
        match choice {
            None | Some(Choice::Auto) => {}
            Some(Choice::Cpu) => {
                p.backend = "cpu";
                p.reason = "requested (backend: \"cpu\")".into();
            }
            Some(Choice::Gpu) => {
                self.gpu_for("backend: \"gpu\"")?;
                p.backend = "gpu";
                p.reason = "requested (backend: \"gpu\")".into();
            }
        }
        Ok(p)
    }

    /// The GPU, or an error saying why there is none and what `what` needs.
    pub(crate) fn gpu_for(&self, what: &str) -> Result<&Gpu> {
        self.gpu.as_ref().ok_or_else(|| {
            Error::Input(format!(
                "{what} needs WebGPU, and this device has no adapter (it runs on the CPU backend: {}); \
                 every model (embedders, generators, classifiers, upscalers) runs there, but \
                 {what} needs a browser with WebGPU",
                self.reason
            ))
        })
    }
}

async fn new_gpu(options: &GpuOptions) -> Result<Gpu> {
    let gpu = Gpu::with_options(options).await?;
    crate::web::stats::register(&gpu);
    Ok(gpu)
}
