//! Quantized tensors: GGML's block formats kept as they are on the GPU (the file's own bytes), read by
//! dequantizing kernels ([`crate::kernels::quant`]).

use std::sync::Arc;

use crate::gpu::Gpu;
use crate::runtime::buffer::GpuBuffer;
pub use crate::runtime::dtype::QuantType;

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
        let want = qtype.bytes_for(numel as u64) as usize;
        if !(cols as u64).is_multiple_of(qtype.block_elems()) || bytes.len() != want {
            return Err(crate::Error::shape(
                "QTensor::from_blocks",
                format!(
                    "{} bytes of {qtype:?} for shape {shape:?}: rows must be whole {}-element \
                     blocks and the bytes {want}",
                    bytes.len(),
                    qtype.block_elems()
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
        self.qtype.bytes_for((self.rows() * self.cols()) as u64)
    }
}
