//! Flash attention on tensor cores ([`Kernel::PrefillCoop`](super::Kernel::PrefillCoop),
//! `attention_coop.wgsl`): K and V staged in workgroup memory, f16 or f32 inputs (rounded to f16 as
//! they are staged). A second kernel that read K and V straight from global memory (no staging,
//! several subgroups on the same rows) passed the same tests on an H100 and ran slower at every size
//! measured (seq 2048 f16: 18.1 against 28.8 TFLOP/s, `bench-results/h100-kernels-ab-2026-12-07.jsonl`,
//! lines with `"build": "head+direct4"`); it was removed (in the history before 2026-12-07's
//! "direct tensor-core attention removed" commit).

use crate::error::{Error, Result};
use crate::tensor::DType;

/// The kernel (its own bindings, eight halves a read; f32 inputs rounded as staged).
const KERNEL: &str = concat!(
    include_str!("../../../shaders/attention_common.wgsl"),
    include_str!("../../../shaders/attention_coop_lanes.wgsl"),
    include_str!("../../../shaders/attention_coop.wgsl")
);
/// Query rows a workgroup takes (BR in attention_coop.wgsl).
const ROWS: usize = 64;
/// Workgroup memory: the four subgroups' f32 scratch and f16 P tiles, plus the staged K and V tiles.
const BYTES: u32 = 4352 * 4 + 4608 * 2 + 2 * 4608 * 2;

/// What one tensor-core attention call dispatches.
pub(super) struct Plan {
    pub name: &'static str,
    pub body: &'static str,
    pub entry: &'static str,
    pub groups_x: usize,
    pub constants: Vec<(&'static str, f64)>,
}

/// The kernel's dispatch for these sizes (head_dim 32 or 64: the `HD` override).
pub(super) fn plan(dtype: DType, q_len: usize, head_dim: usize) -> Plan {
    Plan {
        name: "attention_coop",
        body: KERNEL,
        entry: "prefill_coop",
        groups_x: q_len.div_ceil(ROWS),
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
    let needed = BYTES;
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
