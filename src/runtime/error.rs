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
    /// A weight file that is not what it claims to be.
    #[error("{source_name}: {problem}")]
    Format {
        /// File name or URL.
        source_name: String,
        problem: FormatProblem,
    },
    /// A model configuration (config.json, a tokenizer, sentence-transformers' modules) this library
    /// cannot use.
    #[error("{source_name}: {message}")]
    Model {
        source_name: String,
        message: String,
    },
    /// Input this operation cannot take (documented per operation).
    #[error("{0}")]
    Input(String),
    /// A model asked for a tensor its weights do not have.
    #[error("the weights have no tensor named `{name}`{hint}")]
    MissingTensor { name: String, hint: String },
    /// An HTTP response that is not a success.
    #[error("fetching {url} failed with HTTP status {status}")]
    Http { url: String, status: u16 },
    /// Reading a file or a stream failed.
    #[error("reading {source_name} failed: {message}")]
    Io {
        source_name: String,
        message: String,
    },
    /// The caller's AbortSignal fired; everything loaded so far was released.
    #[error("loading {source_name} was aborted")]
    Aborted { source_name: String },
    /// Reading a buffer back from the GPU failed.
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),
}

/// What is wrong with a weight file.
#[derive(Debug, thiserror::Error)]
pub enum FormatProblem {
    #[error(
        "the file ends at byte {got}, but its header says it is {expected} bytes long (truncated)"
    )]
    Truncated { expected: u64, got: u64 },
    #[error("the file is {got} bytes, longer than the {expected} its header accounts for")]
    TrailingBytes { expected: u64, got: u64 },
    #[error(
        "the header length {declared} is past the file ({}) or the 100 MB limit: not a safetensors file?",
        file_len.map_or("length unknown".to_string(), |l| format!("{l} bytes"))
    )]
    HeaderLength {
        declared: u64,
        file_len: Option<u64>,
    },
    #[error("the header is not valid safetensors JSON: {0}")]
    HeaderNotJson(String),
    #[error("tensor `{tensor}` has dtype {dtype}, which safetensors does not define")]
    UnknownDtype { tensor: String, dtype: String },
    #[error(
        "tensor `{tensor}` has dtype {dtype}, which this library cannot load (F32, F16, BF16, I32, I64; \
         in GGUF also Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL)"
    )]
    UnsupportedDtype { tensor: String, dtype: String },
    #[error("tensor `{tensor}`: {detail}")]
    BadOffsets { tensor: String, detail: String },
    #[error("the shard index is not valid: {0}")]
    BadIndex(String),
    #[error("not a valid GGUF file: {0}")]
    BadGguf(String),
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
