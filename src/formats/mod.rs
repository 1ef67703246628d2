//! Weight file formats: headers parsed and validated in memory, tensor byte ranges left where they are
//! (a memory map, a network stream) for the bridge to move straight into GPU buffers.

pub mod gguf;
pub mod safetensors;

use crate::dtype::QuantType;

/// How a tensor's elements are stored in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// One value an element (f32, f16, bf16, integers), in safetensors' terms.
    Dense(::safetensors::Dtype),
    /// Blocks of 32 elements quantized the GGML way; stays quantized on the GPU.
    Quant(QuantType),
}

/// One tensor as a header describes it, whatever the format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub dtype: Stored,
    /// Row-major: the last axis is contiguous (GGUF's own dimension order is reversed to this).
    pub shape: Vec<usize>,
    /// Byte range within the data section.
    pub start: u64,
    pub end: u64,
}

impl Entry {
    pub fn bytes(&self) -> u64 {
        self.end - self.start
    }
}
