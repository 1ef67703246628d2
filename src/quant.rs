//! Quantized tensors: GGML's block formats kept as they are on the GPU (the file's own bytes), read by
//! dequantizing kernels ([`crate::kernels::quant`]).

use std::sync::Arc;

use crate::bridge::buffer::GpuBuffer;
use crate::gpu::Gpu;

/// A GGML block format: 32 elements a block, one f16 scale (and for Q4_1 an f16 minimum).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantType {
    /// `w = d · (q − 8)`, q 4-bit: 18 bytes a block (d, then 16 bytes of nibbles).
    Q4_0,
    /// `w = d · q + m`, q 4-bit: 20 bytes a block (d, m, then 16 bytes of nibbles).
    Q4_1,
    /// `w = d · q`, q signed 8-bit: 34 bytes a block (d, then 32 bytes).
    Q8_0,
}

impl QuantType {
    /// From GGML's type id (`ggml_type`), for the block formats this library reads.
    pub fn from_ggml(id: u32) -> Option<QuantType> {
        match id {
            2 => Some(QuantType::Q4_0),
            3 => Some(QuantType::Q4_1),
            8 => Some(QuantType::Q8_0),
            _ => None,
        }
    }

    pub fn block_elems(self) -> u64 {
        32
    }

    pub fn block_bytes(self) -> u64 {
        match self {
            QuantType::Q4_0 => 18,
            QuantType::Q4_1 => 20,
            QuantType::Q8_0 => 34,
        }
    }

    /// "q4_0", "q4_1", "q8_0".
    pub fn name(self) -> &'static str {
        match self {
            QuantType::Q4_0 => "q4_0",
            QuantType::Q4_1 => "q4_1",
            QuantType::Q8_0 => "q8_0",
        }
    }
}

/// A quantized matrix on the GPU: `shape` is row-major (`[rows, cols]` for a weight `[out, in]`),
/// each row a whole number of blocks. Cloning shares the buffer.
#[derive(Clone)]
pub struct QTensor {
    gpu: Gpu,
    buffer: Arc<GpuBuffer>,
    shape: Vec<usize>,
    qtype: QuantType,
}

impl QTensor {
    pub(crate) fn from_buffer(
        gpu: &Gpu,
        buffer: Arc<GpuBuffer>,
        shape: &[usize],
        qtype: QuantType,
    ) -> QTensor {
        QTensor {
            gpu: gpu.clone(),
            buffer,
            shape: shape.to_vec(),
            qtype,
        }
    }

    /// Uploads blocks already in GGML's layout (tests, and weights quantized on the CPU).
    pub fn from_blocks(
        gpu: &Gpu,
        bytes: &[u8],
        shape: &[usize],
        qtype: QuantType,
    ) -> crate::Result<QTensor> {
        let cols = shape.last().copied().unwrap_or(0);
        let numel: usize = shape.iter().product();
        let want = numel / 32 * qtype.block_bytes() as usize;
        if cols % 32 != 0 || bytes.len() != want {
            return Err(crate::Error::shape(
                "QTensor::from_blocks",
                format!(
                    "{} bytes of {qtype:?} for shape {shape:?}: rows must be whole 32-element \
                     blocks and the bytes {want}",
                    bytes.len()
                ),
            ));
        }
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let buffer = gpu.create_buffer(&wgpu::BufferDescriptor {
            label: Some("quantized"),
            size: crate::tensor::padded_size(bytes.len() as u64),
            usage,
            mapped_at_creation: false,
        });
        let mut padded = bytes.to_vec();
        padded.resize(buffer.size() as usize, 0);
        gpu.write_buffer(&buffer, 0, &padded);
        Ok(QTensor::from_buffer(gpu, buffer, shape, qtype))
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn qtype(&self) -> QuantType {
        self.qtype
    }

    pub fn buffer(&self) -> &Arc<GpuBuffer> {
        &self.buffer
    }

    /// Elements of one row (the last axis).
    pub fn cols(&self) -> usize {
        self.shape.last().copied().unwrap_or(0)
    }

    /// Rows: the product of all but the last axis.
    pub fn rows(&self) -> usize {
        self.shape[..self.shape.len().saturating_sub(1)]
            .iter()
            .product()
    }

    pub fn size_in_bytes(&self) -> u64 {
        (self.rows() * self.cols() / 32) as u64 * self.qtype.block_bytes()
    }
}
