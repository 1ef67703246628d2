//! Native loading: the file is memory-mapped and each tensor's bytes are copied once, from the page
//! cache into its buffer's mapping. On unified memory with `MAPPABLE_PRIMARY_BUFFERS` that mapping is
//! the storage buffer itself; elsewhere wgpu stages it and copies on the GPU timeline.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::bridge::load::{
    OnProgress, Plan, Progress, Weights, finish_tensor, landing_buffer, plan_all,
};
use crate::error::{Error, FormatProblem, Result};
use crate::formats::Entry;
use crate::formats::gguf;
use crate::formats::safetensors::{Header, PREFIX_LEN, ShardIndex};
use crate::gpu::Gpu;

/// Loads a checkpoint: a `.safetensors` file, a sharded checkpoint's `model.safetensors.index.json`, or
/// a folder holding either (`model.safetensors.index.json` first, then `model.safetensors`).
///
/// ```no_run
/// # fn demo(gpu: &webgpu_infer::Gpu) -> webgpu_infer::Result<()> {
/// use webgpu_infer::bridge::native::load;
/// let weights = load(gpu, "models/all-MiniLM-L6-v2".as_ref(), &mut |p| {
///     eprintln!("{}/{} bytes ({})", p.bytes_done, p.bytes_total, p.tensor)
/// })?;
/// let embeddings = weights.get("embeddings.word_embeddings.weight")?;
/// # Ok(()) }
/// ```
pub fn load(gpu: &Gpu, path: &Path, on_progress: OnProgress<'_>) -> Result<Weights> {
    let path = if path.is_dir() {
        let index = path.join("model.safetensors.index.json");
        if index.exists() {
            index
        } else {
            path.join("model.safetensors")
        }
    } else {
        path.to_path_buf()
    };
    if path.to_string_lossy().ends_with(".index.json") {
        load_sharded(gpu, &path, on_progress)
    } else {
        load_safetensors(gpu, &path, on_progress)
    }
}

/// Loads every shard an index names, reporting progress over all of them.
fn load_sharded(gpu: &Gpu, index_path: &Path, on_progress: OnProgress<'_>) -> Result<Weights> {
    let source = index_path.display().to_string();
    let json = std::fs::read(index_path).map_err(|e| Error::Io {
        source_name: source.clone(),
        message: e.to_string(),
    })?;
    let index = ShardIndex::parse(&source, &json)?;
    let dir = index_path.parent().unwrap_or(Path::new("."));
    let paths: Vec<_> = index.files.iter().map(|f| dir.join(f)).collect();
    let total: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let mut weights = Weights::default();
    let mut done_before = 0;
    for path in &paths {
        let shard = load_safetensors(gpu, path, &mut |p| {
            on_progress(Progress {
                bytes_done: done_before + p.bytes_done,
                bytes_total: total,
                tensor: p.tensor,
            })
        })?;
        done_before += std::fs::metadata(path).map_or(0, |m| m.len());
        weights.extend(shard);
    }
    index.check_complete(&source, &|name| weights.get(name).is_ok())?;
    Ok(weights)
}

/// Loads one `.safetensors` file.
pub fn load_safetensors(gpu: &Gpu, path: &Path, on_progress: OnProgress<'_>) -> Result<Weights> {
    let (source, map) = map_file(path)?;
    load_bytes(gpu, &source, &map, on_progress)
}

/// The file memory-mapped, and its name for error messages.
fn map_file(path: &Path) -> Result<(String, Mmap)> {
    let source = path.display().to_string();
    let io = |e: std::io::Error| Error::Io {
        source_name: source.clone(),
        message: e.to_string(),
    };
    let file = File::open(path).map_err(io)?;
    // SAFETY: the map is read-only and lives only for the load; a file truncated by another process
    // meanwhile would fault, the usual caveat of memory maps, which every loader of large weights takes.
    let map = unsafe { Mmap::map(&file) }.map_err(io)?;
    Ok((source, map))
}

/// Loads a safetensors image already in memory (or mapped).
pub fn load_bytes(
    gpu: &Gpu,
    source: &str,
    bytes: &[u8],
    on_progress: OnProgress<'_>,
) -> Result<Weights> {
    let file_len = bytes.len() as u64;
    let n = Header::json_len(source, bytes, Some(file_len))? as usize;
    let header = Header::parse(source, &bytes[PREFIX_LEN..PREFIX_LEN + n])?;
    // Limits and types first: "this adapter cannot hold tensor X" says more than "truncated".
    let plans = plan_all(gpu, source, &header.entries)?;
    header.check_file_len(source, file_len)?;
    let mut weights = fill(
        gpu,
        bytes,
        header.data_start,
        &header.entries,
        &plans,
        on_progress,
    )?;
    weights.set_metadata(header.metadata.clone());
    Ok(weights)
}

/// Loads a GGUF file (llama.cpp's format): its header (metadata, including the tokenizer) and its
/// tensors, quantized ones kept in their blocks.
pub fn load_gguf(
    gpu: &Gpu,
    path: &Path,
    on_progress: OnProgress<'_>,
) -> Result<(gguf::Header, Weights)> {
    load_gguf_checked(gpu, path, on_progress, &|_| Ok(()))
}

/// [`load_gguf`], with `check` run on the header before any weight is read or allocated.
pub fn load_gguf_checked(
    gpu: &Gpu,
    path: &Path,
    on_progress: OnProgress<'_>,
    check: &dyn Fn(&gguf::Header) -> Result<()>,
) -> Result<(gguf::Header, Weights)> {
    let (source, map) = map_file(path)?;
    load_gguf_bytes_checked(gpu, &source, &map, on_progress, check)
}

/// Loads a GGUF image already in memory (or mapped).
pub fn load_gguf_bytes(
    gpu: &Gpu,
    source: &str,
    bytes: &[u8],
    on_progress: OnProgress<'_>,
) -> Result<(gguf::Header, Weights)> {
    load_gguf_bytes_checked(gpu, source, bytes, on_progress, &|_| Ok(()))
}

fn load_gguf_bytes_checked(
    gpu: &Gpu,
    source: &str,
    bytes: &[u8],
    on_progress: OnProgress<'_>,
    check: &dyn Fn(&gguf::Header) -> Result<()>,
) -> Result<(gguf::Header, Weights)> {
    let header = gguf::Header::parse(source, bytes)?.ok_or_else(|| Error::Format {
        source_name: source.to_string(),
        problem: FormatProblem::Truncated {
            expected: bytes.len() as u64 + 1,
            got: bytes.len() as u64,
        },
    })?;
    check(&header)?;
    let plans = plan_all(gpu, source, &header.entries)?;
    header.check_file_len(source, bytes.len() as u64)?;
    let weights = fill(
        gpu,
        bytes,
        header.data_start,
        &header.entries,
        &plans,
        on_progress,
    )?;
    Ok((header, weights))
}

/// Copies each entry's bytes into its landing buffer and records the conversions, in one submit.
fn fill(
    gpu: &Gpu,
    bytes: &[u8],
    data_start: u64,
    entries: &[Entry],
    plans: &[Plan],
    on_progress: OnProgress<'_>,
) -> Result<Weights> {
    let mappable = gpu.capabilities().mappable_storage;
    let mut weights = Weights::default();
    let mut rec = gpu.recorder();
    for (entry, &plan) in entries.iter().zip(plans) {
        let buffer = landing_buffer(gpu, entry, mappable)?;
        let start = (data_start + entry.start) as usize;
        let end = (data_start + entry.end) as usize;
        if end > start {
            let mut view = buffer
                .get_mapped_range_mut(..)
                .map_err(|e| Error::Gpu(e.to_string()))?;
            view.slice(..end - start)
                .copy_from_slice(&bytes[start..end]);
        }
        gpu.copy_stats().to_gpu(entry.bytes());
        let tensor = finish_tensor(&mut rec, entry, plan, buffer)?;
        weights.insert(entry.name.clone(), tensor);
        on_progress(Progress {
            bytes_done: data_start + entry.end,
            bytes_total: bytes.len() as u64,
            tensor: &entry.name,
        });
    }
    rec.submit();
    gpu.check()?;
    Ok(weights)
}
