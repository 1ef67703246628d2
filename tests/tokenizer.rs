//! Tokenizers built from GGUF metadata against transformers' GGUF tokenizer: SentencePiece BPE
//! vocabularies (`tokenizer.ggml.model = "llama"`) as LLaMA 2, Phi-3 and Gemma files store them,
//! natively and in the browser (the tokenizers crate's WASM build uses another regex engine).
//! Fixtures and goldens: scripts/make_spm_fixtures.py (a small SentencePiece BPE model trained there,
//! byte fallback on; texts with leading and repeated spaces, new lines, digits, characters outside the
//! vocabulary and control tokens).
mod common;

use common::read_asset;
use webgpu_infer::Result;
use webgpu_infer::formats::gguf::Header;
use webgpu_infer::models::text::tokenizer_from_gguf;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

async fn sentencepiece_vocabularies() -> Result<()> {
    const DIR: &str = "tests/fixtures/spm";
    let golden: serde_json::Value =
        serde_json::from_slice(&read_asset(&format!("{DIR}/golden.json")).await).unwrap();
    let files = golden["files"].as_object().unwrap();
    assert_eq!(files.len(), 3);
    for (file, want) in files {
        let bytes = read_asset(&format!("{DIR}/{file}")).await;
        let header = Header::parse(file, &bytes)?.expect("a whole header");
        let tok = tokenizer_from_gguf(file, &header)?;
        assert_eq!(
            tok.get_vocab_size(false) as u64,
            want["vocab_size"].as_u64().unwrap(),
            "{file}"
        );
        for case in want["cases"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let ids: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
            let got = tok.encode(text, false).unwrap();
            assert_eq!(got.get_ids(), ids, "{file}: {text:?}");
            let decoded = tok.decode(&ids, true).unwrap();
            assert_eq!(
                decoded,
                case["decoded"].as_str().unwrap(),
                "{file}: {text:?}"
            );
        }
    }
    Ok(())
}
gpu_test!(
    sentencepiece_vocabularies_match_transformers,
    sentencepiece_vocabularies
);
