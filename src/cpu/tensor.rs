//! [`HostTensor`]: a typed view of memory the CPU reads (WASM linear memory in a page, the heap
//! natively): a weight inside the file's loaded bytes, or an activation a kernel wrote.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::runtime::stats::CopyStats;
use crate::tensor::DType;

/// What a [`HostTensor`] views: f32 values (activations), i32 ones (token ids, masks), or a model's
/// weights, counted in `host_weight_bytes` while they live.
pub(crate) enum Data {
    F32(Vec<f32>),
    I32(Vec<i32>),
    // The `Resident` is held for its `Drop`.
    Weights(Vec<f32>, #[allow(dead_code)] Resident),
}

/// Counts `bytes` of weights in host memory from its creation to its drop.
pub(crate) struct Resident {
    stats: Arc<CopyStats>,
    bytes: u64,
}

impl Resident {
    pub(crate) fn new(stats: &Arc<CopyStats>, bytes: u64) -> Resident {
        stats.host_weights(bytes);
        Resident {
            stats: stats.clone(),
            bytes,
        }
    }
}

impl Drop for Resident {
    fn drop(&mut self) {
        self.stats.host_weights_freed(self.bytes);
    }
}

impl Data {
    /// The memory as bytes (quantized blocks live in a loaded file's f32-aligned region).
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Data::F32(v) | Data::Weights(v, _) => bytemuck::cast_slice(v),
            Data::I32(v) => bytemuck::cast_slice(v),
        }
    }

    fn len(&self) -> usize {
        match self {
            Data::F32(v) | Data::Weights(v, _) => v.len(),
            Data::I32(v) => v.len(),
        }
    }
}

/// A shape and a window of shared host memory. Cloning shares the memory; kernels write new tensors.
#[derive(Clone)]
pub struct HostTensor {
    data: Arc<Data>,
    /// Where the tensor starts, in elements of `data`.
    offset: usize,
    shape: Vec<usize>,
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl HostTensor {
    /// Takes `values` as a tensor of `shape` (their count must match).
    pub fn from_f32(values: Vec<f32>, shape: &[usize]) -> Result<HostTensor> {
        HostTensor::whole(Data::F32(values), shape)
    }

    /// Takes `values` (ids, masks) as a tensor of `shape`.
    pub fn from_i32(values: Vec<i32>, shape: &[usize]) -> Result<HostTensor> {
        HostTensor::whole(Data::I32(values), shape)
    }

    fn whole(data: Data, shape: &[usize]) -> Result<HostTensor> {
        let len = data.len();
        if len != numel(shape) {
            return Err(Error::shape(
                "HostTensor",
                format!("{len} values for shape {shape:?}"),
            ));
        }
        Ok(HostTensor {
            data: Arc::new(data),
            offset: 0,
            shape: shape.to_vec(),
        })
    }

    /// `shape`'s elements of `data` from element `offset` (a weight inside a loaded file).
    pub(crate) fn view(data: &Arc<Data>, offset: usize, shape: &[usize]) -> Result<HostTensor> {
        let len = data.len();
        if offset + numel(shape) > len {
            return Err(Error::shape(
                "HostTensor::view",
                format!("{shape:?} from element {offset} is past {len} elements"),
            ));
        }
        Ok(HostTensor {
            data: data.clone(),
            offset,
            shape: shape.to_vec(),
        })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    pub fn dtype(&self) -> DType {
        match &*self.data {
            Data::F32(_) | Data::Weights(..) => DType::F32,
            Data::I32(_) => DType::I32,
        }
    }

    /// The values, or [`Error::DType`] when the tensor holds i32s.
    pub fn f32s(&self, op: &'static str) -> Result<&[f32]> {
        match &*self.data {
            Data::F32(v) | Data::Weights(v, _) => Ok(&v[self.offset..self.offset + self.numel()]),
            Data::I32(_) => Err(Error::DType {
                op,
                message: "this operand must be f32".into(),
                got: DType::I32,
            }),
        }
    }

    /// The values, or [`Error::DType`] when the tensor holds f32s.
    pub fn i32s(&self, op: &'static str) -> Result<&[i32]> {
        match &*self.data {
            Data::I32(v) => Ok(&v[self.offset..self.offset + self.numel()]),
            Data::F32(_) | Data::Weights(..) => Err(Error::DType {
                op,
                message: "this operand must be i32 (ids, masks)".into(),
                got: DType::F32,
            }),
        }
    }

    /// The same values as `shape` (same element count).
    pub fn reshape(&self, shape: &[usize]) -> Result<HostTensor> {
        if numel(shape) != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!(
                    "{:?} has {} elements, not {shape:?}'s",
                    self.shape,
                    self.numel()
                ),
            ));
        }
        Ok(HostTensor {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// Rows `start..start + len` of the first axis (a view).
    pub fn narrow(&self, start: usize, len: usize) -> Result<HostTensor> {
        let rows = self.shape.first().copied().unwrap_or(0);
        if start + len > rows {
            return Err(Error::shape(
                "narrow",
                format!("rows {start}..{} of {:?}", start + len, self.shape),
            ));
        }
        let row: usize = self.shape[1..].iter().product();
        let mut shape = self.shape.clone();
        shape[0] = len;
        HostTensor::view(&self.data, self.offset + start * row, &shape)
    }

    /// A matrix `[rows, cols]` as consecutive row ranges of `parts` rows (views; Phi-3's fused
    /// projections).
    pub fn split_rows(&self, name: &str, parts: &[usize]) -> Result<Vec<HostTensor>> {
        split_check(name, &self.shape, parts)?;
        let mut start = 0;
        parts
            .iter()
            .map(|&n| {
                let t = self.narrow(start, n);
                start += n;
                t
            })
            .collect()
    }

    /// The values as a new `Vec` (f32 tensors).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        Ok(self.f32s("to_vec")?.to_vec())
    }
}

impl std::fmt::Debug for HostTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostTensor({:?}, {:?})", self.shape, self.dtype())
    }
}

/// `parts` must split a matrix's rows exactly.
pub(crate) fn split_check(name: &str, shape: &[usize], parts: &[usize]) -> Result<()> {
    match shape {
        &[rows, _] if parts.iter().sum::<usize>() == rows => Ok(()),
        _ => Err(Error::shape(
            "split_rows",
            format!("`{name}` {shape:?} does not split into rows {parts:?}"),
        )),
    }
}
