//! `config.json` of the BERT and LLaMA families: any bytes give a `Config` or an `Error` (shapes that
//! would overflow or divide by zero are refused there, before any buffer is sized from them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webgpu_infer::models::{bert, llama};

fuzz_target!(|data: &[u8]| {
    let _ = bert::Config::from_json("fuzz", data);
    let _ = llama::Config::from_json("fuzz", data);
});
