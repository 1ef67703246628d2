//! [`HostWeights`]: a model's tensors where the CPU reads them. The file's bytes are written once
//! into one f32-aligned region (from a memory read natively, from the network stream in a page:
//! the one copy); f32 tensors are views of it, f16/bf16 ones are widened to f32 (a second copy of
//! those tensors only, counted).

use std::collections::HashMap;
use std::sync::Arc;

use safetensors::Dtype;

use crate::cpu::tensor::{Data, Resident};
use crate::cpu::{HostQTensor, HostTensor};
use crate::error::{Error, FormatProblem, Result};
use crate::formats::safetensors::{Header, PREFIX_LEN};
use crate::formats::{Entry, Stored, gguf};
use crate::runtime::dtype::QuantType;
use crate::runtime::stats::CopyStats;
use crate::tensor::{DType, f32s_from_bytes};

/// A region of `len` bytes, f32-aligned, zeroed, for a file to be written into
/// ([`region_bytes`] gives it as bytes).
pub fn region_for(len: usize) -> Vec<f32> {
    vec![0.0; len.div_ceil(4)]
}

/// The region as bytes.
pub fn region_bytes(region: &mut [f32]) -> &mut [u8] {
    bytemuck::cast_slice_mut(region)
}

/// A weight matrix as stored: f32 values, or GGML blocks.
#[derive(Clone)]
pub enum HostWeight {
    Dense(HostTensor),
    Quant(HostQTensor),
}

impl HostWeight {
    pub fn shape(&self) -> &[usize] {
        match self {
            HostWeight::Dense(t) => t.shape(),
            HostWeight::Quant(q) => q.shape(),
        }
    }
}

/// Named tensors in host memory.
#[derive(Default)]
pub struct HostWeights {
    tensors: HashMap<String, HostTensor>,
    /// Block-quantized tensors (GGUF), kept in their file's layout.
    quantized: HashMap<String, HostQTensor>,
    /// Bytes these tensors keep resident (the file's region, widened copies).
    resident_bytes: u64,
}

impl HostWeights {
    /// The tensors of a safetensors file whose `len` bytes fill the start of `region`.
    /// `stats` counts the widened copies (the region's own bytes are counted where it is filled) and,
    /// while the tensors live, the bytes they hold (`host_weight_bytes`).
    pub fn from_safetensors(
        source: &str,
        region: Vec<f32>,
        len: usize,
        stats: &Arc<CopyStats>,
    ) -> Result<HostWeights> {
        let bytes: &[u8] = bytemuck::cast_slice(&region);
        let bytes = bytes
            .get(..len)
            .ok_or_else(|| Error::shape("HostWeights", "len past the region"))?;
        let json_len = Header::json_len(source, bytes, Some(len as u64))? as usize;
        let header = Header::parse(source, &bytes[PREFIX_LEN..PREFIX_LEN + json_len])?;
        header.check_file_len(source, len as u64)?;
        let data_start = header.data_start as usize;
        HostWeights::from_entries(source, region, data_start, &header.entries, stats)
    }

    /// The tensors of a GGUF file whose `len` bytes fill the start of `region`, with its header;
    /// quantized tensors stay in their blocks (views of the region).
    pub fn from_gguf(
        source: &str,
        region: Vec<f32>,
        len: usize,
        stats: &Arc<CopyStats>,
    ) -> Result<(gguf::Header, HostWeights)> {
        let bytes: &[u8] = bytemuck::cast_slice(&region);
        let bytes = bytes
            .get(..len)
            .ok_or_else(|| Error::shape("HostWeights", "len past the region"))?;
        let header = gguf::Header::parse(source, bytes)?.ok_or_else(|| Error::Format {
            source_name: source.to_string(),
            problem: FormatProblem::Truncated {
                expected: len as u64 + 1,
                got: len as u64,
            },
        })?;
        header.check_file_len(source, len as u64)?;
        let data_start = header.data_start as usize;
        let entries = header.entries.clone();
        let weights = HostWeights::from_entries(source, region, data_start, &entries, stats)?;
        Ok((header, weights))
    }

    /// The tensors `entries` describe, their bytes at `data_start` in `region`.
    fn from_entries(
        source: &str,
        region: Vec<f32>,
        data_start: usize,
        entries: &[Entry],
        stats: &Arc<CopyStats>,
    ) -> Result<HostWeights> {
        let bytes: &[u8] = bytemuck::cast_slice(&region);
        let mut quant: Vec<(String, Vec<usize>, usize, QuantType)> = Vec::new();
        let mut widened: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        let mut views: Vec<(String, Vec<usize>, usize)> = Vec::new();
        for e in entries {
            let (start, end) = (data_start + e.start as usize, data_start + e.end as usize);
            let raw = bytes.get(start..end).ok_or_else(|| {
                Error::shape("HostWeights", format!("`{}` is past the file", e.name))
            })?;
            match e.dtype {
                Stored::Quant(q) => quant.push((e.name.clone(), e.shape.clone(), start, q)),
                Stored::Dense(Dtype::F32) if start.is_multiple_of(4) => {
                    views.push((e.name.clone(), e.shape.clone(), start / 4));
                }
                // An f32 tensor at an offset that is not a multiple of 4, or an f16 one.
                Stored::Dense(d @ (Dtype::F32 | Dtype::F16)) => {
                    let dtype = if d == Dtype::F16 {
                        DType::F16
                    } else {
                        DType::F32
                    };
                    let v = f32s_from_bytes(dtype, raw)?;
                    widened.push((e.name.clone(), e.shape.clone(), v));
                }
                Stored::Dense(Dtype::BF16) => {
                    let v = raw
                        .chunks_exact(2)
                        .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                        .collect();
                    widened.push((e.name.clone(), e.shape.clone(), v));
                }
                // Integer tensors (position ids and the like) are not weights a model reads here.
                Stored::Dense(Dtype::I64 | Dtype::I32 | Dtype::U8 | Dtype::BOOL) => {}
                other => {
                    return Err(Error::Format {
                        source_name: source.to_string(),
                        problem: FormatProblem::UnsupportedDtype {
                            tensor: e.name.clone(),
                            dtype: format!("{other:?}"),
                        },
                    });
                }
            }
        }
        let region_bytes = (region.len() * 4) as u64;
        let resident = Resident::new(stats, region_bytes);
        let data = Arc::new(Data::Weights(region, resident));
        let mut tensors = HashMap::new();
        for (name, shape, offset) in views {
            tensors.insert(name, HostTensor::view(&data, offset, &shape)?);
        }
        let mut quantized = HashMap::new();
        for (name, shape, offset, qtype) in quant {
            quantized.insert(name, HostQTensor::view(&data, offset, &shape, qtype)?);
        }
        let mut resident_bytes = region_bytes;
        for (name, shape, values) in widened {
            let bytes = (values.len() * 4) as u64;
            stats.wasm_in(bytes);
            resident_bytes += bytes;
            let data = Arc::new(Data::Weights(values, Resident::new(stats, bytes)));
            tensors.insert(name, HostTensor::view(&data, 0, &shape)?);
        }
        Ok(HostWeights {
            tensors,
            quantized,
            resident_bytes,
        })
    }

    /// Reads a safetensors file into host memory (one copy, counted in `stats`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(path: &std::path::Path, stats: &Arc<CopyStats>) -> Result<HostWeights> {
        let (source, region, len) = read_region(path, stats)?;
        HostWeights::from_safetensors(&source, region, len, stats)
    }

    /// Reads a GGUF file into host memory (one copy, counted in `stats`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_gguf(
        path: &std::path::Path,
        stats: &Arc<CopyStats>,
    ) -> Result<(gguf::Header, HostWeights)> {
        let (source, region, len) = read_region(path, stats)?;
        HostWeights::from_gguf(&source, region, len, stats)
    }

    /// The tensor called `name`, or [`Error::MissingTensor`].
    pub fn get(&self, name: &str) -> Result<&HostTensor> {
        if self.quantized.contains_key(name) {
            return Err(Error::Model {
                source_name: "weights".into(),
                message: format!("tensor `{name}` is quantized: read it with get_any"),
            });
        }
        self.tensors.get(name).ok_or_else(|| Error::MissingTensor {
            name: name.to_string(),
            hint: format!(" (it has {} tensors)", self.tensors.len()),
        })
    }

    /// The tensor called `name`, dense or quantized.
    pub fn get_any(&self, name: &str) -> Result<HostWeight> {
        if let Some(q) = self.quantized.get(name) {
            return Ok(HostWeight::Quant(q.clone()));
        }
        self.get(name).map(|t| HostWeight::Dense(t.clone()))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name) || self.quantized.contains_key(name)
    }

    /// Bytes of host (WASM) memory the weights occupy.
    pub fn resident_bytes(&self) -> u64 {
        self.resident_bytes
    }
}

/// A file read into a fresh region: its name, the region, its length.
#[cfg(not(target_arch = "wasm32"))]
fn read_region(
    path: &std::path::Path,
    stats: &Arc<CopyStats>,
) -> Result<(String, Vec<f32>, usize)> {
    use std::io::Read;
    let source = path.display().to_string();
    let io = |e: std::io::Error| Error::Io {
        source_name: source.clone(),
        message: e.to_string(),
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len() as usize;
    let mut region = region_for(len);
    file.read_exact(&mut region_bytes(&mut region)[..len])
        .map_err(io)?;
    stats.wasm_in(len as u64);
    Ok((source, region, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f16 and bf16 tensors are widened to f32 (a copy each, counted and held); f32 ones are views.
    #[test]
    fn half_tensors_are_widened_and_counted() {
        use safetensors::tensor::TensorView;
        let f32s: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let f16s: Vec<u8> = [0.5f32, 3.0, -1.0]
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        let bf16s: Vec<u8> = [0.25f32, 8.0]
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect();
        let tensors = [
            ("a", TensorView::new(Dtype::F32, vec![2], &f32s).unwrap()),
            ("b", TensorView::new(Dtype::F16, vec![3], &f16s).unwrap()),
            (
                "c",
                TensorView::new(Dtype::BF16, vec![1, 2], &bf16s).unwrap(),
            ),
        ];
        let file = safetensors::serialize(tensors, None).unwrap();
        let mut region = region_for(file.len());
        region_bytes(&mut region)[..file.len()].copy_from_slice(&file);
        let stats = Arc::new(CopyStats::default());
        let w = HostWeights::from_safetensors("t", region, file.len(), &stats).unwrap();
        let get = |n: &str| w.get(n).unwrap().f32s("t").unwrap().to_vec();
        assert_eq!(get("a"), [1.5, -2.0]);
        assert_eq!(get("b"), [0.5, 3.0, -1.0]);
        assert_eq!(get("c"), [0.25, 8.0]);
        assert_eq!(w.get("c").unwrap().shape(), [1, 2]);
        let widened = (3 + 2) * 4;
        assert_eq!(stats.snapshot().wasm_bytes_in, widened);
        let held = (file.len().div_ceil(4) * 4) as u64 + widened;
        assert_eq!(
            (w.resident_bytes(), stats.snapshot().host_weight_bytes),
            (held, held)
        );
        drop(w);
        assert_eq!(stats.snapshot().host_weight_bytes, 0);
    }
}
