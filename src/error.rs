//! The one error type of the library. Every fallible public function returns [`Result`].

use crate::tensor::DType;

/// Everything that can go wrong, typed so that callers can react and worded so that a person reading the
/// message knows what was wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `navigator.gpu` is missing: the browser has no WebGPU, or the page is not a secure context.
    #[error(
        "this browser does not expose WebGPU (navigator.gpu is undefined); use a browser with WebGPU \
         enabled (Chrome or Edge 113+, Safari 26+, Firefox 141+) and serve the page over https or from \
         localhost"
    )]
    NoWebGpu,
    /// WebGPU (or wgpu natively) is there but offered no adapter.
    #[error("no GPU adapter is available: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device with the requested features and limits.
    #[error("could not create a GPU device: {0}")]
    RequestDevice(String),
    /// The device was lost (driver reset, GPU removed, tab in background too long, or `destroy()`).
    #[error("the GPU device was lost ({reason}): {message}; create a new Gpu to continue")]
    DeviceLost { reason: String, message: String },
    /// A validation, out-of-memory or internal error reported by WebGPU.
    #[error("WebGPU reported an error: {0}")]
    Gpu(String),
    /// Operands whose shapes do not fit the operation.
    #[error("{op}: {message}")]
    Shape { op: &'static str, message: String },
    /// Operands whose element types do not fit the operation.
    #[error("{op}: {message} (got {got:?})")]
    DType {
        op: &'static str,
        message: String,
        got: DType,
    },
    /// The adapter lacks an optional feature the operation needs.
    #[error("{op} needs the adapter feature `{feature}`, which this adapter does not offer")]
    MissingFeature {
        op: &'static str,
        feature: &'static str,
    },
    /// A size is past one of the adapter's limits and this operation cannot split it.
    #[error("{what} is {value}, past the adapter limit {limit_name} = {limit}")]
    LimitExceeded {
        what: String,
        value: u64,
        limit_name: &'static str,
        limit: u64,
    },
    /// Reading a buffer back from the GPU failed.
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn shape(op: &'static str, message: impl Into<String>) -> Self {
        Error::Shape {
            op,
            message: message.into(),
        }
    }
}
