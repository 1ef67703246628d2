//! GGUF files in the browser: the header read from the stream's first chunks (only it, and less than
//! 64 KiB past it, enters WASM memory), checked, then the tensors streamed as safetensors' are.

use js_sys::Uint8Array;
use web_sys::AbortSignal;

use super::{Chunks, Layout, Source, Stream, open_source, stream_tensors, truncated};
use crate::bridge::fetch::Net;
use crate::bridge::load::{OnProgress, Weights, plan_all};
use crate::error::Result;
use crate::formats::gguf;
use crate::gpu::Gpu;

/// Loads a GGUF file (llama.cpp's format) from `source`, streaming: the header (metadata, the
/// tokenizer's vocabulary) is copied into WASM memory and parsed there; each tensor streams into its
/// own mapped GPU buffer, quantized ones kept in their blocks.
/// `net` as in [`load`].
pub async fn load_gguf<'a>(
    gpu: &Gpu,
    source: Source,
    net: impl Into<Net<'a>>,
    on_progress: OnProgress<'_>,
) -> Result<(gguf::Header, Weights)> {
    load_gguf_checked(gpu, source, net, on_progress, &|_| Ok(())).await
}

/// [`load_gguf`], with `check` run on the header before any weight is fetched or allocated (a model
/// that will not fit fails before its gigabytes are downloaded).
pub async fn load_gguf_checked<'a>(
    gpu: &Gpu,
    source: Source,
    net: impl Into<Net<'a>>,
    on_progress: OnProgress<'_>,
    check: &dyn Fn(&gguf::Header) -> Result<()>,
) -> Result<(gguf::Header, Weights)> {
    let net = net.into();
    let signal = net.signal;
    let (name, mut chunks, known_len) = open_source(source, net).await?;
    let (header, chunk, chunk_pos) = read_gguf_header(gpu, &name, &mut chunks, signal).await?;
    check(&header)?;
    let plans = plan_all(gpu, &name, &header.entries)?;
    if let Some(len) = known_len {
        header.check_file_len(&name, len)?;
    }
    let layout = Layout {
        data_start: header.data_start,
        entries: &header.entries,
        plans: &plans,
        total: header.file_len(),
        padding: header.alignment - 1,
    };
    let stream = Stream {
        chunks: &mut chunks,
        chunk,
        pos: chunk_pos,
        signal,
    };
    let weights = stream_tensors(gpu, &name, &layout, stream, 0, on_progress).await?;
    Ok((header, weights))
}

/// Reads chunks until the GGUF header is complete (its length is found by a cheap skim, retried as
/// the prefix grows), parses it, and returns the rest of the last chunk, which starts the data
/// section. Into WASM memory go the header and less than 64 KiB past it (counted in the stats).
async fn read_gguf_header(
    gpu: &Gpu,
    name: &str,
    chunks: &mut Chunks,
    signal: Option<&AbortSignal>,
) -> Result<(gguf::Header, Uint8Array, u64)> {
    // The header's length is not stored: it is found by walking it, over a prefix that grows by
    // HEADER_STEP bytes at a time, copied from the JS chunks into WASM memory. So at most one step
    // past the header ever enters WASM memory, whatever the chunks' sizes (an ArrayBuffer or a Blob
    // read in one piece is one chunk of the whole file); the rest stays in JS for the tensor stream.
    const HEADER_STEP: u32 = 64 << 10;
    let mut head: Vec<u8> = Vec::new();
    let mut chunk = Uint8Array::new_with_length(0);
    let mut used = 0u32; // bytes of `chunk` copied into `head`
    loop {
        if used == chunk.length() {
            chunk = match chunks.next(name, signal).await? {
                Some(c) => c,
                None => return Err(truncated(name, head.len() as u64 + 1, head.len() as u64)),
            };
            used = 0;
            continue;
        }
        let take = HEADER_STEP.min(chunk.length() - used);
        let start = head.len();
        head.resize(start + take as usize, 0);
        chunk
            .subarray(used, used + take)
            .copy_to(&mut head[start..]);
        gpu.copy_stats().wasm_in(u64::from(take));
        used += take;
        let Some(data_start) = gguf::Header::data_start(name, &head)? else {
            continue;
        };
        let keep = (data_start as usize).min(head.len());
        let header = gguf::Header::parse(name, &head[..keep])?
            .ok_or_else(|| truncated(name, data_start, keep as u64))?;
        // The header ended inside the last piece (it was incomplete before it): the chunk's bytes
        // past it go on to the tensor stream.
        let overshoot = (head.len() - keep) as u32;
        let rest = chunk.subarray(used - overshoot, chunk.length());
        // The alignment padding may continue into later chunks: the tensor stream skips it.
        return Ok((header, rest, keep as u64));
    }
}
