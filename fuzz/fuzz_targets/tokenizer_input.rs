//! Text from users through the tokenizers the models use: a WordPiece one (BERT) and a byte-level BPE
//! one (LLaMA), any UTF-8 (and lossily any bytes), then chat-template rendering of it as a message.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use webgpu_infer::models::text::{ChatTemplate, Message};

const BPE: &[u8] = include_bytes!("../../tests/fixtures/tiny-llama/tokenizer.json");
const WORDPIECE: &[u8] = include_bytes!("../corpus_data/wordpiece-tokenizer.json");
const TEMPLATE: &str = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

fn tokenizers() -> &'static [tokenizers::Tokenizer; 2] {
    static T: OnceLock<[tokenizers::Tokenizer; 2]> = OnceLock::new();
    T.get_or_init(|| {
        let load = |b: &[u8]| tokenizers::Tokenizer::from_bytes(b).expect("fixture tokenizer");
        [load(BPE), load(WORDPIECE)]
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for t in tokenizers() {
        if let Ok(enc) = t.encode(text.as_ref(), true) {
            let _ = t.decode(enc.get_ids(), false);
        }
    }
    if let Ok(t) = ChatTemplate::new(TEMPLATE, "<s>", "</s>") {
        let _ = t.render(&[Message::new("user", &text)], true);
    }
});
