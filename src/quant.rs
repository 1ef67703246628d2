//! Quantized tensors: GGML's block formats kept as they are on the GPU (the file's own bytes), read by
//! dequantizing kernels ([`crate::kernels::quant`]).

use std::sync::Arc;

use crate::bridge::buffer::GpuBuffer;
use crate::gpu::Gpu;

/// A GGML block format, kept as the file stores it and dequantized inside the kernels: 32-element
/// blocks with an f16 scale (and minimum), or 256-element K-quant super-blocks of eight 32-element
/// blocks with 6- or 8-bit scales under an f16 scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum QuantType {
    /// `w = d · (q − 8)`, q 4-bit: 18 bytes a block (d, then 16 bytes of nibbles).
    Q4_0,
    /// `w = d · q + m`, q 4-bit: 20 bytes a block (d, m, then 16 bytes of nibbles).
    Q4_1,
    /// `w = d · q`, q signed 8-bit: 34 bytes a block (d, then 32 bytes).
    Q8_0,
    /// `w = d · (q − 16)`, q 5-bit: 22 bytes a block (d, the 32 fifth bits, 16 bytes of nibbles).
    Q5_0,
    /// `w = d · q + m`, q 5-bit: 24 bytes a block (d, m, the fifth bits, 16 bytes of nibbles).
    Q5_1,
    /// `w = d·sc · q − dmin·mn`, q 4-bit, 6-bit scale and min a 32-element block: 144 bytes / 256.
    Q4_K,
    /// As Q4_K with a fifth bit: 176 bytes / 256.
    Q5_K,
    /// `w = d·sc · (q − 32)`, q 6-bit, an 8-bit scale a 16 elements: 210 bytes / 256.
    Q6_K,
    /// `w = d · kvalues[q]`, q 4-bit into a fixed non-linear table: 18 bytes a block.
    IQ4_NL,
    /// `w = d·sc · q − dmin·mn`, q 2-bit, 4-bit scale and min a 16 elements: 84 bytes / 256.
    Q2_K,
    /// `w = d·sc · q`, q 3-bit signed (−4..3), a 6-bit signed scale a 16 elements: 110 bytes / 256.
    Q3_K,
}

impl QuantType {
    /// Every format, in GGML's type-id order.
    pub const ALL: [QuantType; 11] = [
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q8_0,
        QuantType::Q2_K,
        QuantType::Q3_K,
        QuantType::Q4_K,
        QuantType::Q5_K,
        QuantType::Q6_K,
        QuantType::IQ4_NL,
    ];

    /// From GGML's type id (`ggml_type`), for the block formats this library reads.
    pub fn from_ggml(id: u32) -> Option<QuantType> {
        QuantType::ALL.into_iter().find(|q| q.ggml_id() == id)
    }

    /// GGML's type id.
    pub fn ggml_id(self) -> u32 {
        match self {
            QuantType::Q4_0 => 2,
            QuantType::Q4_1 => 3,
            QuantType::Q5_0 => 6,
            QuantType::Q5_1 => 7,
            QuantType::Q8_0 => 8,
            QuantType::Q2_K => 10,
            QuantType::Q3_K => 11,
            QuantType::Q4_K => 12,
            QuantType::Q5_K => 13,
            QuantType::Q6_K => 14,
            QuantType::IQ4_NL => 20,
        }
    }

    /// Elements a block (a super-block for the K-quants): rows are whole blocks.
    pub fn block_elems(self) -> u64 {
        match self {
            QuantType::Q2_K
            | QuantType::Q3_K
            | QuantType::Q4_K
            | QuantType::Q5_K
            | QuantType::Q6_K => 256,
            _ => 32,
        }
    }

    pub fn block_bytes(self) -> u64 {
        match self {
            QuantType::Q4_0 | QuantType::IQ4_NL => 18,
            QuantType::Q4_1 => 20,
            QuantType::Q5_0 => 22,
            QuantType::Q5_1 => 24,
            QuantType::Q8_0 => 34,
            QuantType::Q2_K => 84,
            QuantType::Q3_K => 110,
            QuantType::Q4_K => 144,
            QuantType::Q5_K => 176,
            QuantType::Q6_K => 210,
        }
    }

    /// GGML's name: "q4_0", "q4_k", "iq4_nl" ...
    pub fn name(self) -> &'static str {
        match self {
            QuantType::Q4_0 => "q4_0",
            QuantType::Q4_1 => "q4_1",
            QuantType::Q5_0 => "q5_0",
            QuantType::Q5_1 => "q5_1",
            QuantType::Q8_0 => "q8_0",
            QuantType::Q2_K => "q2_k",
            QuantType::Q3_K => "q3_k",
            QuantType::Q4_K => "q4_k",
            QuantType::Q5_K => "q5_k",
            QuantType::Q6_K => "q6_k",
            QuantType::IQ4_NL => "iq4_nl",
        }
    }

    /// Bytes of a `[rows, cols]` matrix (cols a whole number of blocks).
    pub fn bytes_for(self, elements: u64) -> u64 {
        elements / self.block_elems() * self.block_bytes()
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
