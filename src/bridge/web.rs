//! Browser loading: a `fetch()` body (or a Blob's, or an ArrayBuffer) streams chunk by chunk into the
//! final GPU buffers. Each tensor's buffer is created `mappedAtCreation`; its mapped range is an
//! ArrayBuffer on the JS side, and network chunks are copied into it with `Uint8Array.set`, in JS.
//! Only the safetensors header (and a shard index) is copied into WASM memory and parsed there; tensor
//! bytes never are, and at most one tensor's buffer is mapped at a time. GGUF files ([`load_gguf`])
//! take the same path; their header also holds the tokenizer's vocabulary and chat template.

use js_sys::{ArrayBuffer, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob, ReadableStreamDefaultReader, Response};

pub use crate::bridge::fetch::{Net, fetch_bytes};

mod gguf_stream;
mod host;
use crate::bridge::fetch::{
    abort_or_io, absolute_url, check_status, content_length, fetch, js_io, reader_of, response_name,
};
use crate::bridge::load::{
    OnProgress, Plan, Progress, Weights, finish_tensor, landing_buffer, plan_all,
};
use crate::error::{Error, Result};
use crate::formats::safetensors::{Entry, Header, PREFIX_LEN, ShardIndex};
use crate::gpu::Gpu;
pub use gguf_stream::{load_gguf, load_gguf_checked};
pub use host::{load_host, load_host_gguf};

/// Where weights come from.
pub enum Source {
    /// Fetched with `fetch()`: any URL the page may read (same origin, or CORS), e.g. the Hugging
    /// Face Hub's `resolve/main/model.safetensors`; a URL ending in `.index.json` loads every shard.
    Url(String),
    /// A `fetch()` response the caller already has; its body is consumed.
    Response(Response),
    /// A `Blob` or `File` (from `<input type=file>`, drag and drop, or the Cache API).
    Blob(Blob),
    /// Bytes the caller holds in JS (an `ArrayBuffer` or a `Uint8Array` on one).
    Bytes(Uint8Array),
}

impl Source {
    /// Interprets a JS value: a string or `URL`, a `Response`, a `Blob`/`File`, an `ArrayBuffer` or a
    /// typed array.
    pub fn from_js(value: JsValue) -> Result<Source> {
        if let Some(url) = value.as_string() {
            return Ok(Source::Url(url));
        }
        if let Some(url) = value.dyn_ref::<web_sys::Url>() {
            return Ok(Source::Url(url.href()));
        }
        if value.is_instance_of::<Response>() {
            return Ok(Source::Response(value.unchecked_into()));
        }
        if value.is_instance_of::<Blob>() {
            return Ok(Source::Blob(value.unchecked_into()));
        }
        if value.is_instance_of::<ArrayBuffer>() {
            return Ok(Source::Bytes(Uint8Array::new(&value)));
        }
        if ArrayBuffer::is_view(&value) {
            let view: &Object = value.unchecked_ref();
            let buffer = Reflect::get(view, &"buffer".into()).map_err(js_io("source"))?;
            let offset = Reflect::get(view, &"byteOffset".into()).map_err(js_io("source"))?;
            let len = Reflect::get(view, &"byteLength".into()).map_err(js_io("source"))?;
            return Ok(Source::Bytes(Uint8Array::new_with_byte_offset_and_length(
                &buffer,
                offset.as_f64().unwrap_or(0.0) as u32,
                len.as_f64().unwrap_or(0.0) as u32,
            )));
        }
        Err(Error::Io {
            source_name: "source".into(),
            message: "expected a URL string, a URL, a Response, a Blob or File, an ArrayBuffer or \
                      a typed array"
                .into(),
        })
    }
}

/// A tensor filled from a JS typed array (a `Float32Array` or an `Int32Array`, 4-byte elements) with
/// `queue.writeBuffer` straight from JS: the values never enter WASM memory.
pub fn tensor_from_js(
    gpu: &Gpu,
    data: &js_sys::Object,
    shape: &[usize],
    dtype: crate::tensor::DType,
) -> Result<crate::tensor::Tensor> {
    let byte_len = Reflect::get(data, &"byteLength".into())
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(-1.0);
    let want = (shape.iter().product::<usize>() * dtype.size_in_bytes()) as f64;
    if byte_len != want || dtype.size_in_bytes() != 4 {
        return Err(Error::shape(
            "tensor_from_js",
            format!(
                "{byte_len} bytes given, but shape {shape:?} of {dtype:?} needs {want} (4-byte elements only)"
            ),
        ));
    }
    let tensor = crate::tensor::Tensor::empty(gpu, shape, dtype)?;
    if want > 0.0 {
        let queue = gpu
            .queue()
            .as_webgpu()
            .ok_or_else(|| Error::Gpu("the queue is not a WebGPU queue".into()))?;
        let buffer = tensor
            .buffer()
            .as_webgpu()
            .ok_or_else(|| Error::Gpu("the buffer is not a WebGPU buffer".into()))?;
        queue
            .write_buffer_with_u32_and_buffer_source(buffer, 0, data)
            .map_err(|e| Error::Gpu(format!("writeBuffer: {e:?}")))?;
        gpu.copy_stats().to_gpu(want as u64);
    }
    Ok(tensor)
}

/// Loads safetensors weights from `source` into GPU buffers, streaming.
/// `net` is an `Option<&AbortSignal>` or a [`Net`] (signal and `fetch` function).
pub async fn load<'a>(
    gpu: &Gpu,
    source: Source,
    net: impl Into<Net<'a>>,
    on_progress: OnProgress<'_>,
) -> Result<Weights> {
    let net = net.into();
    let signal = net.signal;
    if let Source::Url(url) = &source
        && url
            .split(['?', '#'])
            .next()
            .is_some_and(|p| p.ends_with(".index.json"))
    {
        return load_sharded(gpu, url, net, on_progress).await;
    }
    let (name, stream, len) = open_source(source, net).await?;
    let (weights, _) = stream_safetensors(gpu, &name, stream, len, signal, 0, on_progress).await?;
    Ok(weights)
}

/// A source's name (for messages), its byte chunks and its length when known (a response's
/// `Content-Length`, a Blob's size): a URL is fetched, a response's status checked.
pub(crate) async fn open_source(
    source: Source,
    net: Net<'_>,
) -> Result<(String, Chunks, Option<u64>)> {
    Ok(match source {
        Source::Url(url) => {
            let response = fetch(&url, net).await?;
            let len = content_length(&response);
            let chunks = Chunks::of_response(&url, &response)?;
            (url, chunks, len)
        }
        Source::Response(response) => {
            let name = response_name(&response);
            check_status(&name, &response)?;
            let len = content_length(&response);
            let chunks = Chunks::of_response(&name, &response)?;
            (name, chunks, len)
        }
        Source::Blob(blob) => {
            let name = Reflect::get(&blob, &"name".into())
                .ok()
                .and_then(|n| n.as_string())
                .unwrap_or_else(|| "Blob".into());
            let len = Some(blob.size() as u64);
            let chunks = Chunks::Reader(reader_of(&name, &blob.stream())?);
            (name, chunks, len)
        }
        Source::Bytes(bytes) => {
            let len = Some(u64::from(bytes.length()));
            ("ArrayBuffer".to_string(), Chunks::Once(Some(bytes)), len)
        }
    })
}

/// Fetches an index, then each shard it names (relative to the index's URL), one after another.
async fn load_sharded(
    gpu: &Gpu,
    index_url: &str,
    net: Net<'_>,
    on_progress: OnProgress<'_>,
) -> Result<Weights> {
    let signal = net.signal;
    let index_url = &absolute_url(index_url)?;
    let response = fetch(index_url, net).await?;
    let text = JsFuture::from(response.text().map_err(js_io(index_url))?)
        .await
        .map_err(|e| abort_or_io(index_url, signal, e))?
        .as_string()
        .unwrap_or_default();
    gpu.copy_stats().wasm_in(text.len() as u64);
    let index = ShardIndex::parse(index_url, text.as_bytes())?;
    let mut weights = Weights::default();
    let mut done_before = 0;
    for file in &index.files {
        let url = web_sys::Url::new_with_base(file, index_url)
            .map_err(js_io(index_url))?
            .href();
        let response = fetch(&url, net).await?;
        let stream = Chunks::of_response(&url, &response)?;
        let known = content_length(&response);
        let (shard, len) = stream_safetensors(
            gpu,
            &url,
            stream,
            known,
            signal,
            done_before,
            &mut *on_progress,
        )
        .await?;
        done_before += len;
        weights.extend(shard);
    }
    index.check_complete(index_url, &|name| weights.get(name).is_ok())?;
    Ok(weights)
}

/// The stream of chunks of one file.
pub(crate) enum Chunks {
    Reader(ReadableStreamDefaultReader),
    Once(Option<Uint8Array>),
}

impl Chunks {
    fn of_response(name: &str, response: &Response) -> Result<Chunks> {
        match response.body() {
            Some(body) => Ok(Chunks::Reader(reader_of(name, &body)?)),
            None => Ok(Chunks::Once(Some(Uint8Array::new_with_length(0)))),
        }
    }

    /// The next chunk, `None` at the end. An abort (through `signal` or a rejected read) cancels the
    /// stream and becomes [`Error::Aborted`].
    pub(crate) async fn next(
        &mut self,
        name: &str,
        signal: Option<&AbortSignal>,
    ) -> Result<Option<Uint8Array>> {
        if signal.is_some_and(|s| s.aborted()) {
            self.cancel();
            return Err(Error::Aborted {
                source_name: name.into(),
            });
        }
        match self {
            Chunks::Once(chunk) => Ok(chunk.take()),
            Chunks::Reader(reader) => {
                let result = JsFuture::from(reader.read())
                    .await
                    .map_err(|e| abort_or_io(name, signal, e))?;
                let done = Reflect::get(&result, &"done".into()).map_err(js_io(name))?;
                if done.as_bool() == Some(true) {
                    return Ok(None);
                }
                let value = Reflect::get(&result, &"value".into()).map_err(js_io(name))?;
                value
                    .dyn_into::<Uint8Array>()
                    .map(Some)
                    .map_err(|_| Error::Io {
                        source_name: name.into(),
                        message: "the stream yielded something other than bytes".into(),
                    })
            }
        }
    }

    pub(crate) fn cancel(&mut self) {
        if let Chunks::Reader(reader) = self {
            // The promise settles on its own; nothing waits on it.
            let _ = reader.cancel();
        }
    }
}

/// The tensor being filled: its buffer and the JS view of its mapped range.
struct Filling {
    index: usize,
    buffer: std::sync::Arc<crate::runtime::buffer::GpuBuffer>,
    mapped: Uint8Array,
    filled: u64,
}

/// The streaming state machine: header bytes into WASM, then tensor bytes into mapped GPU buffers.
/// Returns the weights and the file's length.
async fn stream_safetensors(
    gpu: &Gpu,
    name: &str,
    mut chunks: Chunks,
    known_len: Option<u64>,
    signal: Option<&AbortSignal>,
    progress_base: u64,
    on_progress: OnProgress<'_>,
) -> Result<(Weights, u64)> {
    let (header, chunk) = read_header(gpu, name, &mut chunks, known_len, signal).await?;
    let plans = plan_all(gpu, name, &header.entries)?;
    // Where the length is known up front, a truncated or overlong file fails before any allocation.
    if let Some(len) = known_len {
        header.check_file_len(name, len)?;
    }
    let layout = Layout {
        data_start: header.data_start,
        entries: &header.entries,
        plans: &plans,
        total: header.file_len(),
        padding: 0,
    };
    let stream = Stream {
        chunks: &mut chunks,
        chunk,
        pos: header.data_start,
        signal,
    };
    let mut weights =
        stream_tensors(gpu, name, &layout, stream, progress_base, on_progress).await?;
    weights.set_metadata(header.metadata.clone());
    Ok((weights, header.file_len()))
}

/// Where each tensor lies in the file, and how it becomes a GPU tensor.
struct Layout<'a> {
    data_start: u64,
    /// Sorted by offset; gaps between them (alignment padding) are skipped.
    entries: &'a [Entry],
    plans: &'a [Plan],
    /// The file length the header implies.
    total: u64,
    /// Bytes of padding allowed after the last tensor (GGUF writers align the end).
    padding: u64,
}

/// The byte stream past the header: the current chunk starts at file offset `pos`.
struct Stream<'a> {
    chunks: &'a mut Chunks,
    chunk: Uint8Array,
    pos: u64,
    signal: Option<&'a AbortSignal>,
}

/// Streams every tensor of `layout` into its own mapped GPU buffer, recording the conversions into
/// one submit.
async fn stream_tensors(
    gpu: &Gpu,
    name: &str,
    layout: &Layout<'_>,
    s: Stream<'_>,
    progress_base: u64,
    on_progress: OnProgress<'_>,
) -> Result<Weights> {
    let entries = layout.entries;
    let mut rec = gpu.recorder();
    let mut weights = Weights::default();
    let mut next = 0; // next entry to open
    let mut filling: Option<Filling> = None;
    let mut pos = s.pos; // file offset of the current chunk's first byte
    let mut chunk = s.chunk;
    loop {
        let mut used = 0u32;
        let len = chunk.length();
        loop {
            if filling.is_none() && next < entries.len() {
                // Skip the padding before the next tensor.
                let begin = layout.data_start + entries[next].start;
                let here = pos + u64::from(used);
                if here < begin {
                    let skip = (begin - here).min(u64::from(len - used)) as u32;
                    used += skip;
                    if pos + u64::from(used) < begin {
                        break; // this chunk is all padding
                    }
                }
                filling = Some(open(gpu, name, &entries[next], next)?);
                next += 1;
            }
            let Some(f) = filling.as_mut() else {
                let end = pos + u64::from(len);
                if end > layout.total + layout.padding {
                    return Err(trailing(name, layout.total, end));
                }
                break;
            };
            let entry = &entries[f.index];
            let take = (entry.bytes() - f.filled).min(u64::from(len - used)) as u32;
            if take > 0 {
                f.mapped
                    .set(&chunk.subarray(used, used + take), f.filled as u32);
                f.filled += u64::from(take);
                used += take;
            }
            if f.filled < entry.bytes() {
                break; // this chunk is used up
            }
            let Some(f) = filling.take() else { break };
            gpu.copy_stats().to_gpu(entry.bytes());
            let tensor = finish_tensor(&mut rec, entry, layout.plans[f.index], f.buffer)?;
            weights.insert(entry.name.clone(), tensor);
        }
        pos += u64::from(len);
        on_progress(Progress {
            bytes_done: progress_base + pos.min(layout.total),
            bytes_total: progress_base + layout.total,
            tensor: filling.as_ref().map_or("", |f| &entries[f.index].name),
        });
        if filling.is_none() && next == entries.len() {
            // Everything is in; anything more than the allowed padding is an error.
            while let Some(extra) = s.chunks.next(name, s.signal).await? {
                pos += u64::from(extra.length());
                if pos > layout.total + layout.padding {
                    return Err(trailing(name, layout.total, pos));
                }
            }
            break;
        }
        chunk = match s.chunks.next(name, s.signal).await? {
            Some(c) => c,
            None => return Err(truncated(name, layout.total, pos)),
        };
    }
    rec.submit();
    gpu.check()?;
    Ok(weights)
}

/// Creates the buffer of `entry`, mapped, and takes the JS view of its whole mapped range.
fn open(gpu: &Gpu, name: &str, entry: &Entry, index: usize) -> Result<Filling> {
    let buffer = landing_buffer(gpu, entry, false)?;
    let raw = buffer
        .as_webgpu()
        .ok_or_else(|| Error::Gpu("the buffer is not a WebGPU buffer".into()))?;
    let range = raw.get_mapped_range().map_err(js_io(name))?;
    Ok(Filling {
        index,
        mapped: Uint8Array::new(&range),
        buffer,
        filled: 0,
    })
}

/// Reads chunks until the header is complete; copies exactly the header's bytes into WASM memory and
/// returns the rest of the last chunk, which starts the tensor data.
async fn read_header(
    gpu: &Gpu,
    name: &str,
    chunks: &mut Chunks,
    known_len: Option<u64>,
    signal: Option<&AbortSignal>,
) -> Result<(Header, Uint8Array)> {
    let mut head: Vec<u8> = Vec::with_capacity(PREFIX_LEN);
    let mut need = PREFIX_LEN;
    let mut know_len = false;
    let mut pending: Option<Uint8Array> = None;
    loop {
        let chunk = match pending.take() {
            Some(c) => c,
            None => match chunks.next(name, signal).await? {
                Some(c) => c,
                None => return Err(truncated(name, need as u64, head.len() as u64)),
            },
        };
        let take = (need - head.len()).min(chunk.length() as usize) as u32;
        let start = head.len();
        head.resize(start + take as usize, 0);
        chunk.subarray(0, take).copy_to(&mut head[start..]);
        gpu.copy_stats().wasm_in(u64::from(take));
        let rest = chunk.subarray(take, chunk.length());
        if head.len() < need {
            continue;
        }
        if !know_len {
            need += Header::json_len(name, &head, known_len)? as usize;
            know_len = true;
            if head.len() < need {
                pending = Some(rest);
                continue;
            }
        }
        return Ok((Header::parse(name, &head[PREFIX_LEN..])?, rest));
    }
}

fn truncated(name: &str, expected: u64, got: u64) -> Error {
    Error::Format {
        source_name: name.into(),
        problem: crate::error::FormatProblem::Truncated { expected, got },
    }
}

fn trailing(name: &str, expected: u64, got: u64) -> Error {
    Error::Format {
        source_name: name.into(),
        problem: crate::error::FormatProblem::TrailingBytes { expected, got },
    }
}
