//! A read-back copies the bytes into WASM memory once (browser only; issue #17 item 5). wgpu's
//! `BufferView`, read as a slice in the browser, first copies the whole mapping into a temporary `Vec`
//! in WASM memory; copying that again into the result took two copies and twice the memory. Here a
//! free block of the read's size is made just before each read: one copy reuses it and WASM memory
//! does not grow; two copies need a second block and grow it by the read's size. This file is its
//! own WASM instance, so nothing else shares its memory.
#![cfg(target_arch = "wasm32")]
mod common;

use wasm_bindgen_test::wasm_bindgen_test;
use webgpu_infer::web::wasm_memory_bytes;
use webgpu_infer::{DType, Tensor};

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn a_read_back_copies_into_wasm_memory_once() {
    const LEN: usize = 64 << 20;
    let gpu = common::gpu().await.expect("a device");
    let t = Tensor::empty(&gpu, &[LEN / 4], DType::F32).unwrap();
    let free_a_block = || drop(std::hint::black_box(vec![1u8; LEN]));
    // Tensor::read_bytes (to_f32_vec and friends).
    free_a_block();
    let (memory, counted) = (wasm_memory_bytes(), gpu.stats().wasm_bytes_in);
    let bytes = t.read_bytes().await.unwrap();
    let grown = wasm_memory_bytes() - memory;
    assert_eq!(bytes.len(), LEN);
    assert!(
        grown < (LEN / 2) as f64,
        "read_bytes grew WASM memory by {grown} bytes"
    );
    assert_eq!(gpu.stats().wasm_bytes_in - counted, LEN as u64);
    drop(bytes);
    // A recorder's read-back (the models' outputs, token ids).
    free_a_block();
    let (memory, counted) = (wasm_memory_bytes(), gpu.stats().wasm_bytes_in);
    let rec = gpu.recorder();
    let bytes = rec.submit_and_read(&t).bytes().await.unwrap();
    let grown = wasm_memory_bytes() - memory;
    assert_eq!(bytes.len(), LEN);
    assert!(
        grown < (LEN / 2) as f64,
        "Readback::bytes grew WASM memory by {grown} bytes"
    );
    assert_eq!(gpu.stats().wasm_bytes_in - counted, LEN as u64);
}
