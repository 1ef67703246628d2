//! SafeTensors headers: `u64` little-endian JSON length, the JSON, then the tensors' bytes. Only the
//! first `8 + n` bytes are ever parsed on the CPU; the `safetensors` crate validates them.

use std::collections::BTreeMap;

use safetensors::Dtype;
use safetensors::tensor::TensorInfo;

use crate::error::{Error, FormatProblem, Result};

/// Length of the little-endian `u64` that starts the file.
pub const PREFIX_LEN: usize = 8;
/// The `safetensors` crate refuses headers past this (100 MB); so do we, before allocating.
pub const MAX_HEADER_LEN: u64 = 100_000_000;

pub use crate::formats::Entry;
use crate::formats::Stored;

/// A parsed, validated header.
#[derive(Clone, Debug)]
pub struct Header {
    /// File offset of the data section: `8 + n`.
    pub data_start: u64,
    /// Length of the data section: the end of the last tensor.
    pub data_len: u64,
    /// Tensors in file order (by offset), contiguous, sizes matching dtype × shape.
    pub entries: Vec<Entry>,
    /// The optional `__metadata__` string map.
    pub metadata: BTreeMap<String, String>,
}

impl Header {
    /// Total file length the header implies.
    pub fn file_len(&self) -> u64 {
        self.data_start + self.data_len
    }

    /// The JSON length from the file's first 8 bytes, checked against the limit and (when known) the
    /// file's length.
    pub fn json_len(source: &str, prefix: &[u8], file_len: Option<u64>) -> Result<u64> {
        let Some(first) = prefix.get(..PREFIX_LEN) else {
            return Err(problem(
                source,
                FormatProblem::Truncated {
                    expected: PREFIX_LEN as u64,
                    got: prefix.len() as u64,
                },
            ));
        };
        let mut le = [0u8; PREFIX_LEN];
        le.copy_from_slice(first);
        let n = u64::from_le_bytes(le);
        if n > MAX_HEADER_LEN || file_len.is_some_and(|len| n + PREFIX_LEN as u64 > len) {
            return Err(problem(
                source,
                FormatProblem::HeaderLength {
                    declared: n,
                    file_len,
                },
            ));
        }
        Ok(n)
    }

    /// Parses and validates the JSON header (`json` is exactly the `n` bytes after the prefix).
    pub fn parse(source: &str, json: &[u8]) -> Result<Header> {
        let fail = |p| Err(problem(source, p));
        let raw: BTreeMap<String, serde_json::Value> = match serde_json::from_slice(json) {
            Ok(raw) => raw,
            Err(e) => return fail(FormatProblem::HeaderNotJson(e.to_string())),
        };
        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::with_capacity(raw.len());
        for (name, value) in raw {
            if name == "__metadata__" {
                metadata = serde_json::from_value(value).map_err(|e| {
                    problem(
                        source,
                        FormatProblem::HeaderNotJson(format!("__metadata__: {e}")),
                    )
                })?;
                continue;
            }
            let info = parse_info(source, &name, value)?;
            check_size(source, &name, &info)?;
            tensors.push((name, info));
        }
        tensors.sort_by_key(|(_, info)| info.data_offsets);
        let entries: Vec<Entry> = tensors
            .iter()
            .map(|(name, info)| Entry {
                name: name.clone(),
                dtype: Stored::Dense(info.dtype),
                shape: info.shape.clone(),
                start: info.data_offsets.0 as u64,
                end: info.data_offsets.1 as u64,
            })
            .collect();
        check_contiguous(source, &entries)?;
        Ok(Header {
            data_start: PREFIX_LEN as u64 + json.len() as u64,
            data_len: entries.last().map_or(0, |e| e.end),
            entries,
            metadata,
        })
    }

    /// Checks the header's implied length against the file's.
    pub fn check_file_len(&self, source: &str, file_len: u64) -> Result<()> {
        let expected = self.file_len();
        if file_len < expected {
            return Err(problem(
                source,
                FormatProblem::Truncated {
                    expected,
                    got: file_len,
                },
            ));
        }
        if file_len > expected {
            return Err(problem(
                source,
                FormatProblem::TrailingBytes {
                    expected,
                    got: file_len,
                },
            ));
        }
        Ok(())
    }
}

/// `model.safetensors.index.json` of a sharded checkpoint: which file holds which tensor.
#[derive(Clone, Debug)]
pub struct ShardIndex {
    /// Shard file names (relative to the index), each once, in first-mention order.
    pub files: Vec<String>,
    /// Tensor name → shard file name.
    pub weight_map: BTreeMap<String, String>,
}

impl ShardIndex {
    pub fn parse(source: &str, json: &[u8]) -> Result<ShardIndex> {
        let bad = |m: String| problem(source, FormatProblem::BadIndex(m));
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
        let map = value
            .get("weight_map")
            .ok_or_else(|| bad("no \"weight_map\" object".into()))?;
        let weight_map: BTreeMap<String, String> =
            serde_json::from_value(map.clone()).map_err(|e| bad(format!("weight_map: {e}")))?;
        let mut files: Vec<String> = Vec::new();
        for file in weight_map.values() {
            if file.contains("..") || file.starts_with('/') {
                return Err(bad(format!(
                    "shard name {file:?} leaves the checkpoint's folder"
                )));
            }
            if !files.contains(file) {
                files.push(file.clone());
            }
        }
        if files.is_empty() {
            return Err(bad("weight_map is empty".into()));
        }
        Ok(ShardIndex { files, weight_map })
    }

    /// Every tensor the index names must have come from its shard.
    pub fn check_complete(&self, source: &str, loaded: &dyn Fn(&str) -> bool) -> Result<()> {
        match self.weight_map.keys().find(|name| !loaded(name)) {
            None => Ok(()),
            Some(name) => Err(problem(
                source,
                FormatProblem::BadIndex(format!(
                    "tensor `{name}` is listed in shard {} but the shard does not have it",
                    self.weight_map[name]
                )),
            )),
        }
    }
}

fn parse_info(source: &str, name: &str, value: serde_json::Value) -> Result<TensorInfo> {
    let dtype = value.get("dtype").cloned();
    serde_json::from_value(value).map_err(|e| {
        // An unknown dtype is the common case worth its own message.
        let unknown = dtype
            .as_ref()
            .and_then(|d| d.as_str())
            .filter(|d| serde_json::from_value::<Dtype>(serde_json::Value::from(*d)).is_err());
        let p = match unknown {
            Some(d) => FormatProblem::UnknownDtype {
                tensor: name.to_string(),
                dtype: d.to_string(),
            },
            None => FormatProblem::HeaderNotJson(format!("tensor {name}: {e}")),
        };
        problem(source, p)
    })
}

/// `end - start` must equal the element count × the dtype's size: checked here, in u128, to name the
/// tensor. (The `safetensors` crate's own validation multiplies bit counts in `usize`, which overflows on
/// wasm32 for tensors of 512 MiB and more, so this module validates offsets itself, in 64 bits.)
fn check_size(source: &str, name: &str, info: &TensorInfo) -> Result<()> {
    let (start, end) = info.data_offsets;
    let bits = info
        .shape
        .iter()
        .try_fold(info.dtype.bitsize() as u128, |acc, &d| {
            acc.checked_mul(d as u128)
        });
    let expected = bits.map(|b| b.div_ceil(8));
    if end < start || expected != Some((end - start) as u128) {
        return Err(problem(
            source,
            FormatProblem::BadOffsets {
                tensor: name.to_string(),
                detail: format!(
                    "data_offsets [{start}, {end}] hold {} bytes, but {:?} {:?} needs {}",
                    end.saturating_sub(start),
                    info.dtype,
                    info.shape,
                    expected.map_or("more than 2^128".into(), |e| e.to_string())
                ),
            },
        ));
    }
    Ok(())
}

/// Tensors, sorted by offset, must tile the data section from 0 with no gap or overlap.
fn check_contiguous(source: &str, entries: &[Entry]) -> Result<()> {
    let mut expected_start = 0;
    for e in entries {
        if e.start != expected_start {
            let what = if e.start < expected_start {
                "overlap the previous tensor"
            } else {
                "leave a gap after the previous tensor"
            };
            return Err(problem(
                source,
                FormatProblem::BadOffsets {
                    tensor: e.name.clone(),
                    detail: format!(
                        "its data_offsets start at {} and {what} (tensors must be contiguous from \
                         offset 0; the previous one ends at {expected_start})",
                        e.start
                    ),
                },
            ));
        }
        expected_start = e.end;
    }
    Ok(())
}

fn problem(source: &str, problem: FormatProblem) -> Error {
    Error::Format {
        source_name: source.to_string(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> Result<Header> {
        Header::parse("test", json.as_bytes())
    }

    #[test]
    fn parses_and_sorts_by_offset() {
        let h = header(
            r#"{"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},
                "a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},
                "__metadata__":{"format":"pt"}}"#,
        )
        .unwrap();
        let names: Vec<_> = h.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(h.data_len, 12);
        assert_eq!(h.metadata["format"], "pt");
    }

    #[test]
    fn refuses_each_kind_of_bad_header() {
        let cases = [
            ("not json", "HeaderNotJson"),
            (
                r#"{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}}"#,
                "UnknownDtype",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
                "BadOffsets",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},
                    "b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#,
                "BadOffsets",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                "BadOffsets",
            ),
        ];
        for (json, kind) in cases {
            let err = header(json).unwrap_err();
            assert!(format!("{err:?}").contains(kind), "{json}: {err:?}");
        }
    }

    #[test]
    fn shard_index() {
        let idx = ShardIndex::parse(
            "i",
            br#"{"metadata":{},"weight_map":{"a":"s1.safetensors","b":"s2.safetensors","c":"s1.safetensors"}}"#,
        )
        .unwrap();
        assert_eq!(idx.files, ["s1.safetensors", "s2.safetensors"]);
        assert!(ShardIndex::parse("i", br#"{"weight_map":{"a":"../x"}}"#).is_err());
        assert!(ShardIndex::parse("i", br#"{"nothing":1}"#).is_err());
        assert!(idx.check_complete("i", &|n| n != "b").is_err());
    }

    #[test]
    fn header_length_checks() {
        let ok = 10u64.to_le_bytes();
        assert_eq!(Header::json_len("t", &ok, Some(100)).unwrap(), 10);
        assert!(Header::json_len("t", &ok, Some(12)).is_err());
        assert!(Header::json_len("t", &ok[..5], None).is_err());
        assert!(Header::json_len("t", &u64::MAX.to_le_bytes(), None).is_err());
    }
}
