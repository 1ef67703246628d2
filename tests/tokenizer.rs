//! Tokenizers built from GGUF metadata against transformers' GGUF tokenizer: SentencePiece BPE
//! vocabularies (`tokenizer.ggml.model = "llama"`) as LLaMA 2, Phi-3 and Gemma files store them,
//! natively and in the browser (the tokenizers crate's WASM build uses another regex engine).
//! Fixtures and goldens: scripts/make_spm_fixtures.py (a small SentencePiece BPE model trained there,
//! byte fallback on; texts with leading and repeated spaces, new lines, digits, characters outside the
//! vocabulary and control tokens). And the embedder's ASCII road through BERT tokenizers
//! (`models::fast_tokens`) against the tokenizers crate's own `encode`.
mod common;

use common::{Rng, read_asset};
use webgpu_infer::Result;
use webgpu_infer::formats::gguf::Header;
use webgpu_infer::models::fast_tokens::AsciiBert;
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

/// Random ASCII: words of letters (some long, past WordPiece's 100 characters), digits, every
/// punctuation character, every kind of ASCII whitespace and control character.
fn ascii_text(rng: &mut Rng, words: usize) -> String {
    const PIECES: &[&str] = &[
        "the",
        "City",
        "GREW",
        "river's",
        "don't",
        "3.14",
        "e-mail",
        "a/b",
        "x_y",
        "naïve",
        "(x)",
        "[y]",
        "{z}",
        "50%",
        "#1",
        "@home",
        "~",
        "`q`",
        "a+b=c",
        "1,000",
        "end.",
        "wait...",
        "\\path",
        "\"q\"",
        "<tag>",
        "|",
        "^",
        "$5",
        "&",
        "*",
        ";:",
        "?!",
        "unaffable",
        "jumpingly",
    ];
    const GAPS: &[&str] = &[
        " ", "  ", "\t", "\n", "\r\n", "\u{0b}", "\u{0c}", "\u{7f}", "\u{1}", "",
    ];
    let mut pick = |n: usize| ((rng.next_f32() + 1.0) * 0.5 * n as f32) as usize % n;
    let mut out = String::new();
    for _ in 0..words {
        match pick(20) {
            0 => out.push_str(&"x".repeat(90 + pick(30))),
            _ => out.push_str(PIECES[pick(PIECES.len())]),
        }
        out.push_str(GAPS[pick(GAPS.len())]);
    }
    out.retain(|c| c.is_ascii());
    out
}

/// The ASCII road gives the crate's ids and overflow on MiniLM's tokenizer, as loaded (padding to
/// 128 and truncation at 128 baked in) and as the embedder sets it up (no padding, truncation at
/// 256); text that is not ASCII, or holds an added token, is left to the crate.
async fn ascii_bert_road() -> Result<()> {
    let bytes = read_asset("models/all-MiniLM-L6-v2/tokenizer.json").await;
    let mut tok = tokenizers::Tokenizer::from_bytes(&bytes).unwrap();
    let mut rng = Rng::new(7);
    let texts: Vec<String> = (0..300)
        .map(|i| ascii_text(&mut rng, [0, 1, 3, 20, 150][i % 5]))
        .chain(["", " ", "Hello, World!", "A\u{0b}B\u{0c}C\u{7f}D"].map(String::from))
        .collect();
    for embedder_setup in [false, true] {
        if embedder_setup {
            tok.with_padding(None);
            tok.with_truncation(Some(tokenizers::TruncationParams {
                max_length: 256,
                ..Default::default()
            }))
            .unwrap();
        }
        let fast = AsciiBert::new(&tok).expect("MiniLM's tokenizer takes the ASCII road");
        for text in &texts {
            let want = tok.encode(text.as_str(), true).unwrap();
            let got = fast.encode(&tok, text).expect("ASCII text").unwrap();
            assert_eq!(got.get_ids(), want.get_ids(), "{text:?}");
            assert_eq!(
                got.get_overflowing().is_empty(),
                want.get_overflowing().is_empty(),
                "{text:?}"
            );
        }
        for text in ["café au lait", "a [MASK] b", "x [sep] y", "日本"] {
            assert!(fast.encode(&tok, text).is_none(), "{text:?}");
        }
    }
    Ok(())
}
gpu_test!(
    ascii_bert_road_matches_the_tokenizers_crate,
    ascii_bert_road
);
