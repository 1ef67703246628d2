//! Flash attention on tensor cores ([`Kernel::PrefillCoop`](super::Kernel::PrefillCoop)): the kernel
//! that reads K and V straight from global memory (`attention_coop_direct.wgsl`: f16, a cache of at
//! least 64 keys) and the one that stages them in workgroup memory (`attention_coop.wgsl`: f32
//! inputs, short caches).

use crate::error::{Error, Result};
use crate::tensor::DType;

/// The staging kernel (its own bindings, eight halves a read; f32 inputs rounded as staged).
const STAGED: &str = concat!(
    include_str!("../../../shaders/attention_common.wgsl"),
    include_str!("../../../shaders/attention_coop_lanes.wgsl"),
    include_str!("../../../shaders/attention_coop.wgsl")
);
/// The direct kernel.
const DIRECT: &str = concat!(
    include_str!("../../../shaders/attention_common.wgsl"),
    include_str!("../../../shaders/attention_coop_lanes.wgsl"),
    include_str!("../../../shaders/attention_coop_direct.wgsl")
);
/// Query rows a staging workgroup takes (BR in attention_coop.wgsl).
const STAGED_ROWS: usize = 64;
/// Keys a tile (BC): the direct kernel needs at least one whole tile of valid keys.
const TILE: usize = 64;
/// Workgroup memory: the four subgroups' f32 scratch and f16 P tiles, plus the staged K and V
/// tiles, or the direct kernel's row maxima and sums.
const LANES_BYTES: u32 = 4352 * 4 + 4608 * 2;
const STAGED_BYTES: u32 = LANES_BYTES + 2 * 4608 * 2;
const DIRECT_BYTES: u32 = LANES_BYTES + 128 * 4;

/// Natively, `WEBGPU_INFER_COOP_ATTENTION=1` runs the direct kernel where it can run (it is off by
/// default until it has passed the attention tests and been timed on a GPU with cooperative
/// matrices), and `WEBGPU_INFER_COOP_SPLIT=N` (1, 2 or 4) sets its subgroups a row block: for A/B
/// runs on GPUs.
static DIRECT_ON: crate::kernels::Tuned = crate::kernels::Tuned::new("WEBGPU_INFER_COOP_ATTENTION");
static SPLIT: crate::kernels::Tuned = crate::kernels::Tuned::new("WEBGPU_INFER_COOP_SPLIT");

/// What one tensor-core attention call dispatches.
pub(super) struct Plan {
    pub name: &'static str,
    pub body: &'static str,
    pub entry: &'static str,
    pub groups_x: usize,
    pub constants: Vec<(&'static str, f64)>,
}

/// The kernel for these sizes: direct for f16, head_dim 64 with at least one whole tile of keys,
/// else staging (head_dim 32 or 64, the `HD` override).
pub(super) fn plan(dtype: DType, q_len: usize, kv_len: usize, head_dim: usize) -> Plan {
    if dtype == DType::F16 && head_dim == 64 && kv_len >= TILE && DIRECT_ON.get() == Some(1) {
        // Subgroups a row block: as many as it has key tiles, up to 4 (the workgroup's).
        let tiles = kv_len.div_ceil(TILE);
        let split = match SPLIT.get() {
            Some(s @ (1 | 2 | 4)) => s,
            _ if tiles >= 4 => 4,
            _ if tiles >= 2 => 2,
            _ => 1,
        };
        return Plan {
            name: "attention_coop_direct",
            body: DIRECT,
            entry: "prefill_coop_direct",
            groups_x: q_len.div_ceil(16 * 4 / split),
            constants: vec![("SPLIT", split as f64)],
        };
    }
    Plan {
        name: "attention_coop",
        body: STAGED,
        entry: "prefill_coop",
        groups_x: q_len.div_ceil(STAGED_ROWS),
        constants: vec![
            ("IN_F32", f64::from(u8::from(dtype == DType::F32))),
            ("HD", head_dim as f64),
        ],
    }
}

/// Whether [`Kernel::PrefillCoop`](super::Kernel::PrefillCoop) can run this head_dim on this
/// device, or why not.
pub(super) fn fits(gpu: &crate::Gpu, head_dim: usize) -> Result<()> {
    const OP: &str = "attention (tensor cores)";
    let caps = gpu.capabilities();
    if !(caps.cooperative_matrix && caps.subgroups) {
        return Err(Error::MissingFeature {
            op: OP,
            feature: "wgpu-cooperative-matrix (16x16x16 f16, 32-wide subgroups; native only)",
        });
    }
    if head_dim != 64 && head_dim != 32 {
        return Err(Error::shape(
            OP,
            format!(
                "the tensor-core kernel takes head_dim 32 or 64, got {head_dim}; use \
                 Kernel::PrefillTiled"
            ),
        ));
    }
    let limit = gpu.limits().max_compute_workgroup_storage_size;
    let needed = STAGED_BYTES.max(DIRECT_BYTES);
    if limit < needed {
        return Err(Error::LimitExceeded {
            what: "the tensor-core attention's workgroup memory".into(),
            value: u64::from(needed),
            limit_name: "maxComputeWorkgroupStorageSize",
            limit: u64::from(limit),
        });
    }
    Ok(())
}
