//! Weights for the CPU backend in a page: the file (safetensors or GGUF) streams into one region of
//! WASM memory, each network chunk copied once, from the JS chunk into that region. The region is
//! sized from the response's `Content-Length`; without one, from the file's header as soon as it has
//! arrived (only the bytes before it are moved once more). Tensors are then views of it
//! ([`HostWeights`]; GGUF's quantized ones stay in their blocks).

use crate::bridge::fetch::Net;
use crate::bridge::load::{OnProgress, Progress};
use crate::bridge::web::{Source, open_source};
use crate::cpu::weights::{region_bytes, region_for};
use crate::cpu::{Cpu, HostWeights};
use crate::error::{Error, Result};
use crate::formats::gguf;
use crate::formats::safetensors::{Header, PREFIX_LEN};
use crate::runtime::stats::CopyStats;

/// The file's length from its first `filled` bytes, once they hold the whole header (safetensors,
/// or GGUF by its magic).
fn length_from_header(name: &str, bytes: &[u8]) -> Result<Option<u64>> {
    if bytes.starts_with(b"GGUF") {
        return Ok(gguf::Header::parse(name, bytes)?.map(|h| h.file_len()));
    }
    if bytes.len() < PREFIX_LEN {
        return Ok(None);
    }
    let json_len = Header::json_len(name, bytes, None)? as usize;
    match bytes.get(PREFIX_LEN..PREFIX_LEN + json_len) {
        Some(json) => Ok(Some(Header::parse(name, json)?.file_len())),
        None => Ok(None),
    }
}

/// Makes room for `bytes` bytes, moving the `filled` ones already there (counted).
fn grow(region: &mut Vec<f32>, bytes: usize, filled: usize, stats: &CopyStats) {
    if bytes > region.len() * 4 {
        stats.wasm_in(filled as u64);
        region.resize(bytes.div_ceil(4), 0.0);
    }
}

/// Streams the safetensors file `source` into host memory for `cpu`. Progress is reported a chunk.
pub async fn load_host<'a>(
    cpu: &Cpu,
    source: Source,
    net: impl Into<Net<'a>>,
    on_progress: OnProgress<'_>,
) -> Result<HostWeights> {
    let (name, region, filled) = stream_region(cpu, source, net.into(), on_progress).await?;
    HostWeights::from_safetensors(&name, region, filled, cpu.copy_stats_arc())
}

/// Streams the GGUF file `source` into host memory for `cpu`: its header and its tensors.
pub async fn load_host_gguf<'a>(
    cpu: &Cpu,
    source: Source,
    net: impl Into<Net<'a>>,
    on_progress: OnProgress<'_>,
) -> Result<(gguf::Header, HostWeights)> {
    let (name, region, filled) = stream_region(cpu, source, net.into(), on_progress).await?;
    HostWeights::from_gguf(&name, region, filled, cpu.copy_stats_arc())
}

/// The file's bytes in one region: its name, the region, the bytes filled.
async fn stream_region(
    cpu: &Cpu,
    source: Source,
    net: Net<'_>,
    on_progress: OnProgress<'_>,
) -> Result<(String, Vec<f32>, usize)> {
    let signal = net.signal;
    let (name, mut chunks, known_len) = open_source(source, net).await?;
    let stats = cpu.copy_stats_arc();
    let mut expected = known_len;
    let mut region = region_for(expected.unwrap_or(1 << 20) as usize);
    let mut filled = 0usize;
    while let Some(chunk) = chunks.next(&name, signal).await? {
        let n = chunk.length() as usize;
        if filled + n > region.len() * 4 {
            if let Some(len) = expected {
                chunks.cancel();
                return Err(Error::Io {
                    source_name: name,
                    message: format!("the body is longer than the {len} bytes expected"),
                });
            }
            // Still in the header (no length known yet): double.
            grow(&mut region, (filled + n) * 2, filled, stats);
        }
        chunk.copy_to(&mut region_bytes(&mut region)[filled..filled + n]);
        stats.wasm_in(n as u64);
        filled += n;
        if expected.is_none() {
            let header_bytes = &region_bytes(&mut region)[..filled];
            if let Some(len) = length_from_header(&name, header_bytes)? {
                expected = Some(len);
                grow(&mut region, len as usize, filled, stats);
            }
        }
        on_progress(Progress {
            bytes_done: filled as u64,
            bytes_total: expected.unwrap_or(0),
            tensor: "",
        });
    }
    if known_len.is_none() && region.len() > filled.div_ceil(4) {
        // Sized for the header's length but the body ended early: HostWeights names the problem.
        region.truncate(filled.div_ceil(4));
    }
    Ok((name, region, filled))
}
