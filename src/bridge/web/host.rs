//! Weights for the CPU backend in a page: the file streams into one region of WASM memory (sized
//! from the response's length, grown by doubling when it has none); each network chunk is copied
//! once, from the JS chunk into that region. Tensors are then views of it ([`HostWeights`]).

use crate::bridge::fetch::Net;
use crate::bridge::load::{OnProgress, Progress};
use crate::bridge::web::{Source, open_source};
use crate::cpu::weights::{region_bytes, region_for};
use crate::cpu::{Cpu, HostWeights};
use crate::error::{Error, Result};

/// Streams the safetensors file `source` into host memory for `cpu`. Progress is reported a chunk.
pub async fn load_host<'a>(
    cpu: &Cpu,
    source: Source,
    net: impl Into<Net<'a>>,
    on_progress: OnProgress<'_>,
) -> Result<HostWeights> {
    let net = net.into();
    let signal = net.signal;
    let (name, mut chunks, known_len) = open_source(source, net).await?;
    let stats = cpu.copy_stats_arc();
    let mut region = region_for(known_len.unwrap_or(1 << 20) as usize);
    let mut filled = 0usize;
    while let Some(chunk) = chunks.next(&name, signal).await? {
        let n = chunk.length() as usize;
        if filled + n > region.len() * 4 {
            if known_len.is_some() {
                chunks.cancel();
                return Err(Error::Io {
                    source_name: name,
                    message: format!("the body is longer than its Content-Length ({known_len:?})"),
                });
            }
            // No length given: grow (the move of what is there is a copy too, counted).
            stats.wasm_in(filled as u64);
            region.resize(((filled + n) * 2).div_ceil(4), 0.0);
        }
        chunk.copy_to(&mut region_bytes(&mut region)[filled..filled + n]);
        stats.wasm_in(n as u64);
        filled += n;
        on_progress(Progress {
            bytes_done: filled as u64,
            bytes_total: known_len.unwrap_or(0),
            tensor: "",
        });
    }
    HostWeights::from_safetensors(&name, region, filled, stats)
}
