//! Weight file formats: headers parsed and validated in memory, tensor byte ranges left where they are
//! (a memory map, a network stream) for the bridge to move straight into GPU buffers.

pub mod safetensors;
