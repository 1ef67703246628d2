//! GGUF (llama.cpp's format): a little-endian header of typed key/value metadata (architecture,
//! hyper-parameters, the tokenizer's vocabulary and merges, the chat template) and tensor descriptions,
//! then the tensor data, each tensor at an aligned offset. Only the header is parsed on the CPU; it is
//! validated in 64 bits (sizes, offsets, overlaps) before any buffer is allocated.
//!
//! The parser works on a prefix of the file: [`Header::parse`] answers `Ok(None)` when the bytes end
//! inside the header, so a network stream can hand it more (the header's length is not stored).
//!
//! A hand-written reader rather than a crate: the GGUF crates on crates.io read from a `Read + Seek`
//! file, which a `fetch()` stream is not, and none validates offsets against hostile input.

use std::collections::BTreeMap;

use safetensors::Dtype;

use crate::dtype::QuantType;
use crate::error::{Error, FormatProblem, Result};
use crate::formats::{Entry, Stored};

/// "GGUF" read as a little-endian u32.
const MAGIC: u32 = 0x4655_4747;
/// Headers longer than this are refused (a 256k-token vocabulary is about 6 MB).
pub const MAX_HEADER_LEN: usize = 64 << 20;
/// GGML tensors have at most four axes.
const MAX_DIMS: u32 = 4;
const DEFAULT_ALIGNMENT: u64 = 32;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    /// Integers of any width that fit `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// A parsed, validated GGUF header.
#[derive(Clone, Debug)]
pub struct Header {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    /// Tensors sorted by offset; ranges are relative to [`Header::data_start`].
    pub entries: Vec<Entry>,
    /// File offset of the data section (the header's end, aligned).
    pub data_start: u64,
    /// Length of the data section: the end of the last tensor.
    pub data_len: u64,
    pub alignment: u64,
}

impl Header {
    /// Parses the header at the start of `bytes`: `Ok(None)` if `bytes` ends inside it (give it more),
    /// an error if it is not a valid GGUF header.
    pub fn parse(source: &str, bytes: &[u8]) -> Result<Option<Header>> {
        conclude(source, bytes.len(), parse(&mut Reader { bytes, pos: 0 }))
    }

    /// Where the data section starts, from a prefix of the file, without building the header (no
    /// allocation: cheap to retry as a stream grows): `Ok(None)` while `bytes` ends inside the header.
    /// A stream copies exactly this many bytes into WASM memory, then calls [`Header::parse`].
    pub fn data_start(source: &str, bytes: &[u8]) -> Result<Option<u64>> {
        conclude(source, bytes.len(), skim(&mut Reader { bytes, pos: 0 }))
    }

    /// Total file length the header implies (the end of the last tensor).
    pub fn file_len(&self) -> u64 {
        self.data_start + self.data_len
    }

    /// A file shorter than the header implies is truncated; up to `alignment` bytes of padding after
    /// the last tensor are allowed (writers pad), more is refused.
    pub fn check_file_len(&self, source: &str, file_len: u64) -> Result<()> {
        let expected = self.file_len();
        let problem = if file_len < expected {
            FormatProblem::Truncated {
                expected,
                got: file_len,
            }
        } else if file_len > expected.next_multiple_of(self.alignment) {
            FormatProblem::TrailingBytes {
                expected,
                got: file_len,
            }
        } else {
            return Ok(());
        };
        Err(Error::Format {
            source_name: source.to_string(),
            problem,
        })
    }

    /// A metadata value, or a [`Error::Model`] naming the missing key.
    pub fn get(&self, source: &str, key: &str) -> Result<&Value> {
        self.metadata.get(key).ok_or_else(|| Error::Model {
            source_name: source.to_string(),
            message: format!("the GGUF metadata has no `{key}`"),
        })
    }

    /// `general.architecture` ("llama", ...).
    pub fn architecture(&self) -> Option<&str> {
        self.metadata
            .get("general.architecture")
            .and_then(Value::as_str)
    }
}

/// Why parsing stopped: the bytes ran out, or they are wrong.
enum Stop {
    NeedMore,
    Invalid(FormatProblem),
}

type Parse<T> = std::result::Result<T, Stop>;

/// A parse's outcome for callers: `None` while more bytes may complete the header.
fn conclude<T>(source: &str, len: usize, parsed: Parse<T>) -> Result<Option<T>> {
    match parsed {
        Ok(v) => Ok(Some(v)),
        Err(Stop::NeedMore) if len >= MAX_HEADER_LEN => Err(bad(
            source,
            format!("the header is longer than {MAX_HEADER_LEN} bytes"),
        )),
        Err(Stop::NeedMore) => Ok(None),
        Err(Stop::Invalid(p)) => Err(Error::Format {
            source_name: source.to_string(),
            problem: p,
        }),
    }
}

fn invalid<T>(detail: impl Into<String>) -> Parse<T> {
    Err(Stop::Invalid(FormatProblem::BadGguf(detail.into())))
}

fn bad(source: &str, detail: String) -> Error {
    Error::Format {
        source_name: source.to_string(),
        problem: FormatProblem::BadGguf(detail),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: u64) -> Parse<&[u8]> {
        let n = usize::try_from(n).map_err(|_| Stop::NeedMore)?;
        let end = self.pos.checked_add(n).ok_or(Stop::NeedMore)?;
        let slice = self.bytes.get(self.pos..end).ok_or(Stop::NeedMore)?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Parse<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    fn u32(&mut self) -> Parse<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Parse<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count that must be backed by at least `min_bytes` each in what remains of the header.
    fn count(&mut self, what: &str, min_bytes: u64) -> Parse<u64> {
        let n = self.u64()?;
        if n.saturating_mul(min_bytes) > MAX_HEADER_LEN as u64 {
            return invalid(format!(
                "{what} count {n} cannot fit a header of at most {MAX_HEADER_LEN} bytes"
            ));
        }
        Ok(n)
    }

    fn string(&mut self, what: &str) -> Parse<String> {
        let len = self.count(what, 1)?;
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(e) => invalid(format!("{what} is not UTF-8: {e}")),
        }
    }

    fn value(&mut self, key: &str, kind: u32, depth: u32) -> Parse<Value> {
        Ok(match kind {
            0 => Value::U8(self.array::<1>()?[0]),
            1 => Value::I8(i8::from_le_bytes(self.array()?)),
            2 => Value::U16(u16::from_le_bytes(self.array()?)),
            3 => Value::I16(i16::from_le_bytes(self.array()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.array()?)),
            6 => Value::F32(f32::from_le_bytes(self.array()?)),
            7 => match self.array::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return invalid(format!("`{key}`: a bool of value {b}")),
            },
            8 => Value::String(self.string(key)?),
            9 if depth == 0 => {
                let elem = self.u32()?;
                let n = self.count(key, 1)?;
                let mut items = Vec::with_capacity(n.min(1 << 16) as usize);
                for _ in 0..n {
                    items.push(self.value(key, elem, depth + 1)?);
                }
                Value::Array(items)
            }
            9 => {
                return invalid(format!(
                    "`{key}`: arrays nested in arrays are not supported"
                ));
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            t => return invalid(format!("`{key}`: unknown value type {t}")),
        })
    }
}

/// Walks the header as [`parse`] does, keeping nothing but `general.alignment`; returns the data
/// section's offset.
fn skim(r: &mut Reader<'_>) -> Parse<u64> {
    if r.u32()? != MAGIC {
        return invalid("the file does not start with \"GGUF\": not a GGUF file");
    }
    r.u32()?;
    let n_tensors = r.count("tensor", 24)?;
    let n_kv = r.count("metadata", 13)?;
    let mut alignment = DEFAULT_ALIGNMENT;
    for _ in 0..n_kv {
        let len = r.count("a metadata key", 1)?;
        let key = r.take(len)?;
        let is_alignment = key == b"general.alignment";
        let kind = r.u32()?;
        match kind {
            // Read and checked as `parse` does (any integer type): the two must agree on where the
            // data starts (the fuzz target `gguf_header` asserts it).
            _ if is_alignment => {
                alignment = alignment_of(Some(&r.value("general.alignment", kind, 0)?))?;
            }
            9 => {
                let elem = r.u32()?;
                let n = r.count("array", 1)?;
                for _ in 0..n {
                    skip_scalar(r, elem)?;
                }
            }
            _ => skip_scalar(r, kind)?,
        }
    }
    for _ in 0..n_tensors {
        let len = r.count("a tensor name", 1)?;
        r.take(len)?;
        let n_dims = r.u32()?.min(MAX_DIMS + 1);
        r.take(8 * u64::from(n_dims) + 12)?;
    }
    Ok((r.pos as u64).next_multiple_of(alignment))
}

/// `general.alignment` (any integer type), or the default when absent: a power of two up to 65 536.
fn alignment_of(value: Option<&Value>) -> Parse<u64> {
    match value {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(v) => match v.as_u64() {
            Some(a) if a.is_power_of_two() && a <= 1 << 16 => Ok(a),
            _ => invalid(format!("general.alignment {v:?} is not a power of two")),
        },
    }
}

fn skip_scalar(r: &mut Reader<'_>, kind: u32) -> Parse<()> {
    let n = match kind {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        8 => r.count("a string", 1)?,
        t => return invalid(format!("unknown value type {t}")),
    };
    r.take(n).map(drop)
}

/// Tensor description as stored: name, GGML dims (innermost first), type, offset.
struct RawTensor {
    name: String,
    dims: Vec<u64>,
    ggml_type: u32,
    offset: u64,
}

fn parse(r: &mut Reader<'_>) -> Parse<Header> {
    if r.u32()? != MAGIC {
        return invalid("the file does not start with \"GGUF\": not a GGUF file");
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return invalid(format!(
            "GGUF version {version} is not supported (2 and 3 are)"
        ));
    }
    // Each tensor description takes at least 24 bytes, each key/value at least 13.
    let n_tensors = r.count("tensor", 24)?;
    let n_kv = r.count("metadata", 13)?;
    let mut metadata = BTreeMap::new();
    for _ in 0..n_kv {
        let key = r.string("a metadata key")?;
        let kind = r.u32()?;
        let value = r.value(&key, kind, 0)?;
        if metadata.insert(key.clone(), value).is_some() {
            return invalid(format!("the metadata key `{key}` appears twice"));
        }
    }
    let mut raw = Vec::with_capacity(n_tensors.min(1 << 16) as usize);
    for _ in 0..n_tensors {
        let name = r.string("a tensor name")?;
        let n_dims = r.u32()?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return invalid(format!(
                "tensor `{name}` has {n_dims} dimensions (1 to {MAX_DIMS})"
            ));
        }
        let dims = (0..n_dims).map(|_| r.u64()).collect::<Parse<Vec<u64>>>()?;
        let ggml_type = r.u32()?;
        let offset = r.u64()?;
        raw.push(RawTensor {
            name,
            dims,
            ggml_type,
            offset,
        });
    }
    let alignment = alignment_of(metadata.get("general.alignment"))?;
    let data_start = (r.pos as u64).next_multiple_of(alignment);
    let entries = entries(raw, alignment)?;
    let data_len = entries.iter().map(|e| e.end).max().unwrap_or(0);
    // The file's length, and every tensor's place in it, must be a 64-bit number (found by fuzzing
    // with overflow checks: a tensor ending just short of 2^64 made `file_len` overflow).
    if data_start
        .checked_add(data_len)
        .and_then(|end| end.checked_next_multiple_of(alignment))
        .is_none()
    {
        return invalid(format!(
            "the tensors end {data_len} bytes past the header's {data_start}: past 2^64"
        ));
    }
    Ok(Header {
        version,
        metadata,
        data_len,
        entries,
        data_start,
        alignment,
    })
}

/// Checks each tensor's size and alignment, and that no two overlap; returns them sorted by offset.
fn entries(raw: Vec<RawTensor>, alignment: u64) -> Parse<Vec<Entry>> {
    let mut entries = Vec::with_capacity(raw.len());
    for t in raw {
        let (dtype, block_elems, block_bytes) = match stored(t.ggml_type) {
            Some(s) => s,
            None => {
                return Err(Stop::Invalid(FormatProblem::UnsupportedDtype {
                    tensor: t.name,
                    dtype: ggml_type_name(t.ggml_type),
                }));
            }
        };
        let elements = t
            .dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n < 1 << 48);
        let Some(elements) = elements else {
            return invalid(format!(
                "tensor `{}` has dims {:?}: too large",
                t.name, t.dims
            ));
        };
        if t.dims[0] % block_elems != 0 {
            return invalid(format!(
                "tensor `{}`: its row of {} elements is not a whole number of {block_elems}-element blocks",
                t.name, t.dims[0]
            ));
        }
        let bytes = elements / block_elems * block_bytes;
        if t.offset % alignment != 0 {
            return invalid(format!(
                "tensor `{}` starts at offset {}, not a multiple of the alignment {alignment}",
                t.name, t.offset
            ));
        }
        let Some(end) = t.offset.checked_add(bytes) else {
            return invalid(format!("tensor `{}`: offset past 2^64", t.name));
        };
        let shape = t
            .dims
            .iter()
            .rev()
            .map(|&d| usize::try_from(d).map_err(|_| Stop::NeedMore))
            .collect::<Parse<Vec<usize>>>()
            .or_else(|_| invalid(format!("tensor `{}` does not fit this platform", t.name)))?;
        entries.push(Entry {
            name: t.name,
            dtype,
            shape,
            start: t.offset,
            end,
        });
    }
    entries.sort_by_key(|e| e.start);
    for pair in entries.windows(2) {
        if pair[1].start < pair[0].end {
            return invalid(format!(
                "tensors `{}` and `{}` overlap",
                pair[0].name, pair[1].name
            ));
        }
    }
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return invalid(format!("the tensor name `{}` appears twice", w[0]));
    }
    Ok(entries)
}

/// GGML type id → how it is stored, elements a block, bytes a block.
fn stored(ggml_type: u32) -> Option<(Stored, u64, u64)> {
    Some(match ggml_type {
        0 => (Stored::Dense(Dtype::F32), 1, 4),
        1 => (Stored::Dense(Dtype::F16), 1, 2),
        30 => (Stored::Dense(Dtype::BF16), 1, 2),
        24 => (Stored::Dense(Dtype::I8), 1, 1),
        26 => (Stored::Dense(Dtype::I32), 1, 4),
        27 => (Stored::Dense(Dtype::I64), 1, 8),
        _ => {
            let q = QuantType::from_ggml(ggml_type)?;
            (Stored::Quant(q), q.block_elems(), q.block_bytes())
        }
    })
}

/// GGML's name for a type id this library does not read ("IQ2_XXS (GGML type 16)"), for errors.
fn ggml_type_name(id: u32) -> String {
    const NAMES: [&str; 36] = [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
        "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",
        "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "Q4_0_4_4",
        "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0",
    ];
    match NAMES.get(id as usize) {
        Some(name) => format!("{name} (GGML type {id})"),
        None => format!("GGML type {id}"),
    }
}

#[cfg(test)]
mod tests;
