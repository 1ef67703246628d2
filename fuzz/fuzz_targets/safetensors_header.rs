//! A safetensors file's first bytes: the length prefix, the JSON header, the layout checks (offsets,
//! overlaps, dtype sizes against shapes, the file's length), and a shard index. Any input must give
//! `Ok` or an `Error`, never a panic, a hang or an allocation the input's size does not justify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webgpu_infer::formats::safetensors::{Header, ShardIndex};

fuzz_target!(|data: &[u8]| {
    let file_len = data.len() as u64;
    if let Ok(json_len) = Header::json_len("fuzz", data, Some(file_len)) {
        let json = &data[8..(8 + json_len as usize).min(data.len())];
        if let Ok(header) = Header::parse("fuzz", json) {
            let _ = header.check_file_len("fuzz", file_len);
            let _ = header.file_len();
        }
    }
    if let Ok(index) = ShardIndex::parse("fuzz", data) {
        let _ = index.check_complete("fuzz", &|name| name.len() % 2 == 0);
    }
});
