//! A GGUF file's header, whole or cut anywhere (the streaming loader parses prefixes): metadata,
//! the tensor table and its validation, the skim that finds the header's end, and then what the
//! loaders build from the metadata: the model's configuration (every architecture's keys), the
//! tokenizer (byte-level or SentencePiece: vocabulary, merges or scores, token types, pre-tokenizer)
//! and the chat template.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webgpu_infer::formats::gguf::Header;
use webgpu_infer::models::llama::Config;
use webgpu_infer::models::text::{ChatTemplate, Message, tokenizer_from_gguf};

fuzz_target!(|data: &[u8]| {
    let skim = Header::data_start("fuzz", data);
    let parsed = Header::parse("fuzz", data);
    // The skim and the parser must agree on where the data starts (the streaming loader copies
    // exactly the skim's count into WASM memory, then parses that).
    if let (Ok(Some(start)), Ok(Some(header))) = (&skim, &parsed) {
        assert_eq!(*start, header.data_start, "skim and parse disagree");
    }
    let Ok(Some(header)) = parsed else { return };
    let _ = header.check_file_len("fuzz", data.len() as u64);
    if let Ok(cfg) = Config::from_gguf_header("fuzz", &header) {
        let _ = (0..cfg.num_hidden_layers.min(64)).map(|i| cfg.is_sliding(i)).count();
    }
    if let Ok(tokenizer) = tokenizer_from_gguf("fuzz", &header) {
        let _ = tokenizer.encode("Hello, world! 123 héllo 日本", true);
    }
    if let Ok(template) = header.get("fuzz", "tokenizer.chat_template")
        && let Some(text) = template.as_str()
        && let Ok(t) = ChatTemplate::new(text, "<s>", "</s>")
    {
        let _ = t.render(&[Message::new("user", "Hi")], true);
    }
});
