//! The zero-copy boundary: buffers counted in [`stats::CopyStats`], and (next) weights streamed into
//! mapped GPU buffers.

pub mod buffer;
pub mod stats;
