//! The runtime layer: the GPU device and its options ([`gpu`]), buffers and their pool ([`buffer`]),
//! the copy counters ([`stats`]), element types ([`dtype`]), tensors ([`tensor`]) and quantized ones ([`qtensor`]), the command
//! recorder ([`recorder`]) with its bind-group cache, per-kernel profiling ([`profile`]), the clock and
//! the error type. It imports nothing from the layers above it (kernels, models, formats, bridge, web);
//! `tests/layering.rs` checks that.

pub(crate) mod bind_groups;
#[cfg(target_arch = "wasm32")]
pub(crate) mod browser;
pub mod buffer;
pub mod clock;
pub mod dtype;
pub mod error;
pub mod gpu;
pub mod profile;
pub mod qtensor;
pub mod recorder;
pub mod stats;
pub mod tensor;
