//! What both loaders share: where each tensor lands on the GPU, the weight map, progress.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use safetensors::Dtype;

use crate::dtype::QuantType;
use crate::error::{Error, FormatProblem, Result};
use crate::formats::{Entry, Stored};
use crate::gpu::Gpu;
use crate::kernels::cast::{Cast, cast};
use crate::qtensor::QTensor;
use crate::recorder::Recorder;
use crate::runtime::buffer::GpuBuffer;
use crate::tensor::{DType, Tensor, check_buffer_size, padded_size};

/// Where a load stands, passed to the progress callback after each tensor (and, in the browser, each
/// network chunk).
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    pub bytes_done: u64,
    /// The file's length once its header is known (the sum of all shards' for a sharded checkpoint,
    /// once each shard's header is known); 0 before.
    pub bytes_total: u64,
    /// The tensor being filled, or "" between tensors.
    pub tensor: &'a str,
}

/// The progress callback both loaders take.
pub type OnProgress<'a> = &'a mut dyn FnMut(Progress<'_>);

/// Named tensors on the GPU, as loaded from one or more weight files.
#[derive(Default)]
pub struct Weights {
    tensors: HashMap<String, Tensor>,
    /// Block-quantized tensors (GGUF), kept in their file's layout.
    quantized: HashMap<String, QTensor>,
    metadata: BTreeMap<String, String>,
}

impl Weights {
    /// The tensor called `name`, or [`Error::MissingTensor`].
    pub fn get(&self, name: &str) -> Result<&Tensor> {
        if self.quantized.contains_key(name) {
            return Err(Error::Model {
                source_name: "weights".into(),
                message: format!("tensor `{name}` is quantized: read it with Weights::get_any"),
            });
        }
        self.tensors.get(name).ok_or_else(|| self.missing(name))
    }

    /// The tensor called `name`, dense or quantized.
    pub fn get_any(&self, name: &str) -> Result<AnyTensor> {
        if let Some(q) = self.quantized.get(name) {
            return Ok(AnyTensor::Quant(q.clone()));
        }
        self.tensors
            .get(name)
            .map(|t| AnyTensor::Dense(t.clone()))
            .ok_or_else(|| self.missing(name))
    }

    /// The GPU the tensors live on (`None` when there are none).
    pub fn gpu(&self) -> Option<&crate::Gpu> {
        let dense = self.tensors.values().next().map(|t| t.gpu());
        dense.or_else(|| self.quantized.values().next().map(|q| q.gpu()))
    }

    /// Whether a tensor of that name was loaded (dense or quantized).
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name) || self.quantized.contains_key(name)
    }

    fn missing(&self, name: &str) -> Error {
        {
            let similar: Vec<&str> = self
                .names()
                .into_iter()
                .filter(|n| n.ends_with(name.rsplit('.').next().unwrap_or(name)))
                .take(3)
                .collect();
            Error::MissingTensor {
                name: name.to_string(),
                hint: if similar.is_empty() {
                    format!(" (it has {} tensors)", self.len())
                } else {
                    format!("; similar names: {}", similar.join(", "))
                },
            }
        }
    }

    /// All names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .tensors
            .keys()
            .chain(self.quantized.keys())
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names
    }

    pub fn len(&self) -> usize {
        self.tensors.len() + self.quantized.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The files' `__metadata__` maps, merged.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    pub(crate) fn insert(&mut self, name: String, tensor: AnyTensor) {
        match tensor {
            AnyTensor::Dense(t) => self.tensors.insert(name, t).map(drop),
            AnyTensor::Quant(q) => self.quantized.insert(name, q).map(drop),
        };
    }

    pub(crate) fn extend(&mut self, other: Weights) {
        self.tensors.extend(other.tensors);
        self.quantized.extend(other.quantized);
        self.metadata.extend(other.metadata);
    }

    pub(crate) fn set_metadata(&mut self, metadata: BTreeMap<String, String>) {
        self.metadata.extend(metadata);
    }
}

/// A loaded tensor: dense, or block-quantized.
#[derive(Clone)]
pub enum AnyTensor {
    Dense(Tensor),
    Quant(QTensor),
}

impl AnyTensor {
    pub fn shape(&self) -> &[usize] {
        match self {
            AnyTensor::Dense(t) => t.shape(),
            AnyTensor::Quant(q) => q.shape(),
        }
    }

    /// Splits a matrix `[rows, cols]` into consecutive row ranges of `parts` rows each (summing to
    /// `rows`), each copied on the GPU into a buffer of its own (a GPU-side copy: nothing crosses to
    /// the CPU), so that a fused projection (Phi-3's `attn_qkv`, `ffn_up` holding gate and up) runs
    /// through the kernels that take one matrix each. Quantized rows are whole blocks, so they split
    /// as bytes. The source is left as it was (dropping it frees its memory).
    pub fn split_rows(&self, name: &str, parts: &[usize]) -> Result<Vec<AnyTensor>> {
        let &[rows, cols] = self.shape() else {
            return Err(Error::shape(
                "split_rows",
                format!("`{name}` is {:?}, not a matrix", self.shape()),
            ));
        };
        let (gpu, buffer, offset, row_bytes) = match self {
            AnyTensor::Dense(t) => (
                t.gpu(),
                t.buffer(),
                t.offset(),
                (cols * t.dtype().size_in_bytes()) as u64,
            ),
            AnyTensor::Quant(q) => (q.gpu(), q.buffer(), 0, q.qtype().bytes_for(cols as u64)),
        };
        if parts.iter().sum::<usize>() != rows {
            return Err(Error::shape(
                "split_rows",
                format!("`{name}` has {rows} rows, not the {parts:?} asked for"),
            ));
        }
        if !row_bytes.is_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT) {
            return Err(Error::shape(
                "split_rows",
                format!(
                    "splitting `{name}` ({rows} × {cols}): a row is {row_bytes} bytes, not a \
                     multiple of 4, which GPU buffer copies need"
                ),
            ));
        }
        let mut encoder = gpu
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("split_rows"),
            });
        let mut start = 0u64;
        let mut out = Vec::with_capacity(parts.len());
        for &n in parts {
            let bytes = n as u64 * row_bytes;
            let part = gpu.create_buffer(&wgpu::BufferDescriptor {
                label: Some(name),
                size: padded_size(bytes),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            if bytes > 0 {
                encoder.copy_buffer_to_buffer(buffer, offset + start * row_bytes, &part, 0, bytes);
            }
            start += n as u64;
            out.push(match self {
                AnyTensor::Dense(t) => {
                    AnyTensor::Dense(Tensor::from_buffer(gpu, part, &[n, cols], t.dtype()))
                }
                AnyTensor::Quant(q) => {
                    AnyTensor::Quant(QTensor::from_buffer(gpu, part, &[n, cols], q.qtype()))
                }
            });
        }
        gpu.submit(encoder.finish());
        Ok(out)
    }
}

/// How one stored tensor becomes a GPU tensor: its bytes land as they are, then an optional
/// conversion runs on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    Direct(DType),
    Convert(Cast),
    /// Blocks stay as they are.
    Quant(QuantType),
}

/// Decides every entry's plan before any buffer exists, so that an unsupported type or a tensor past
/// the adapter's buffer limits fails the load without allocating anything.
pub(crate) fn plan_all(gpu: &Gpu, source: &str, entries: &[Entry]) -> Result<Vec<Plan>> {
    let f16 = gpu.capabilities().shader_f16;
    entries
        .iter()
        .map(|e| {
            let plan = match e.dtype {
                Stored::Quant(q) => Plan::Quant(q),
                Stored::Dense(Dtype::F32) => Plan::Direct(DType::F32),
                Stored::Dense(Dtype::F16) if f16 => Plan::Direct(DType::F16),
                Stored::Dense(Dtype::F16) => Plan::Convert(Cast::F16ToF32),
                Stored::Dense(Dtype::BF16) => Plan::Convert(Cast::Bf16ToF32),
                Stored::Dense(Dtype::I32) => Plan::Direct(DType::I32),
                Stored::Dense(Dtype::I64) => Plan::Convert(Cast::I64ToI32),
                Stored::Dense(other) => {
                    return Err(Error::Format {
                        source_name: source.to_string(),
                        problem: FormatProblem::UnsupportedDtype {
                            tensor: e.name.clone(),
                            dtype: format!("{other:?}"),
                        },
                    });
                }
            };
            // No consumer splits a tensor across buffers yet, so one past the limit is refused.
            let what = format!("tensor `{}` in bytes", e.name);
            check_buffer_size(gpu, e.bytes(), &what)?;
            if let Plan::Convert(c) = plan {
                let elements: usize = e.shape.iter().product::<usize>();
                let converted = (elements * c.output().size_in_bytes()) as u64;
                check_buffer_size(gpu, converted, &format!("{what} after {c:?}"))?;
            }
            Ok(plan)
        })
        .collect()
}

/// The buffer one tensor's stored bytes land in: created mapped, to be filled by the caller.
/// `mappable` adds MAP_WRITE (native unified memory: the mapping is the buffer's own memory). Sizes
/// were checked by [`plan_all`].
pub(crate) fn landing_buffer(gpu: &Gpu, entry: &Entry, mappable: bool) -> Result<Arc<GpuBuffer>> {
    let mut usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    if mappable {
        usage |= wgpu::BufferUsages::MAP_WRITE;
    }
    Ok(gpu.create_buffer(&wgpu::BufferDescriptor {
        label: Some(&entry.name),
        size: padded_size(entry.bytes()),
        usage,
        mapped_at_creation: true,
    }))
}

/// Unmaps a filled landing buffer and makes it a tensor, recording its conversion if it needs one.
pub(crate) fn finish_tensor(
    rec: &mut Recorder,
    entry: &Entry,
    plan: Plan,
    buffer: Arc<GpuBuffer>,
) -> Result<AnyTensor> {
    buffer.unmap();
    let gpu = rec.gpu().clone();
    Ok(match plan {
        Plan::Direct(dtype) => {
            AnyTensor::Dense(Tensor::from_buffer(&gpu, buffer, &entry.shape, dtype))
        }
        Plan::Convert(c) => AnyTensor::Dense(cast(rec, &buffer, &entry.shape, c)?),
        Plan::Quant(q) => AnyTensor::Quant(QTensor::from_buffer(&gpu, buffer, &entry.shape, q)),
    })
}
