//! Text in and out of a language model: a `tokenizers::Tokenizer` built from a GGUF file's vocabulary
//! (or read from `tokenizer.json`), and the chat template applied with a real Jinja engine
//! (minijinja), as transformers' `apply_chat_template` does.

use minijinja::{Environment, ErrorKind, context};
use serde::Serialize;
use serde_json::{Value as Json, json};
use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use crate::formats::gguf::{Header, Value};

fn model_error(source: &str, message: impl Into<String>) -> Error {
    Error::Model {
        source_name: source.to_string(),
        message: message.into(),
    }
}

/// GPT-2's split, which the byte-level pre-tokenizer applies with `use_regex`.
const DIGITS_THEN_GPT2: &[&str] = &[
    "smollm",
    "starcoder",
    "refact",
    "command-r",
    "codeshell",
    "exaone",
    "minerva",
];

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How a byte-level vocabulary splits text before BPE, by `tokenizer.ggml.pre` (llama.cpp's names
/// for the pre-tokenizers of the models it converts).
fn pre_tokenizer(pre: &str) -> Json {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |pattern: &str| json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false});
    if DIGITS_THEN_GPT2.contains(&pre) {
        // Every digit its own piece, then GPT-2's split (llama.cpp's "\p{N}" rule).
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]})
    } else if [
        "llama3",
        "llama-v3",
        "llama-bpe",
        "falcon3",
        "smaug-bpe",
        "dbrx",
    ]
    .contains(&pre)
    {
        json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_SPLIT), byte_level(false)]})
    } else if ["qwen2", "deepseek-r1-qwen"].contains(&pre) {
        json!({"type": "Sequence", "pretokenizers": [split(QWEN2_SPLIT), byte_level(false)]})
    } else {
        byte_level(true) // "gpt2", "default" and unknown names: GPT-2's own split
    }
}

/// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.*`): byte-level BPE ("gpt2") with its
/// vocabulary, merges and pre-tokenizer; CONTROL tokens become special added tokens, USER_DEFINED ones
/// plain added tokens, so that `<|im_start|>` in a chat prompt stays one token.
pub fn tokenizer_from_gguf(source: &str, header: &Header) -> Result<Tokenizer> {
    let model = header.get(source, "tokenizer.ggml.model")?;
    if model.as_str() != Some("gpt2") {
        return Err(model_error(
            source,
            format!(
                "tokenizer.ggml.model is {model:?}; only byte-level BPE (\"gpt2\") vocabularies are \
                 supported (SentencePiece ones are not yet)"
            ),
        ));
    }
    let strings = |key: &str| -> Result<Vec<&str>> {
        let array = header
            .get(source, key)?
            .as_array()
            .ok_or_else(|| model_error(source, format!("`{key}` is not an array")))?;
        array
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| model_error(source, format!("`{key}` holds a non-string")))
            })
            .collect()
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges: Vec<Json> = strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| match m.split_once(' ') {
            Some((a, b)) => Ok(json!([a, b])),
            None => Err(model_error(
                source,
                format!("the merge {m:?} is not two tokens"),
            )),
        })
        .collect::<Result<_>>()?;
    let types: Vec<u64> = match header.metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(a)) => a.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
        _ => vec![1; tokens.len()],
    };
    let vocab: serde_json::Map<String, Json> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), json!(i)))
        .collect();
    // 3: CONTROL (special), 4: USER_DEFINED (added, not special).
    let added: Vec<Json> = tokens
        .iter()
        .zip(&types)
        .enumerate()
        .filter(|(_, (_, t))| **t == 3 || **t == 4)
        .map(|(id, (content, t))| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": *t == 3})
        })
        .collect();
    let pre = header
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer(pre),
        "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": merges},
    });
    let bytes = serde_json::to_vec(&spec).map_err(|e| model_error(source, e.to_string()))?;
    Tokenizer::from_bytes(bytes)
        .map_err(|e| model_error(source, format!("building the tokenizer: {e}")))
}

/// One chat message: `role` is "system", "user" or "assistant".
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A model's chat template (Jinja, from `tokenizer_config.json` or `tokenizer.chat_template`).
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Compiles `template`; `bos_token`/`eos_token` are the strings templates may insert.
    pub fn new(template: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        // As transformers renders templates: trim_blocks and lstrip_blocks on, Python string methods.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| model_error("chat template", e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned("chat", template.to_string())
            .map_err(|e| model_error("chat template", e.to_string()))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        })
    }

    /// The prompt for `messages`, ending with the assistant's turn opened when
    /// `add_generation_prompt`.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| model_error("chat template", e.to_string()))?;
        template
            .render(context! {
                messages => messages
                    .iter()
                    .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
                    .collect::<minijinja::Value>(),
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
            })
            .map_err(|e| Error::Input(format!("the chat template failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_chatml_template_like_transformers() {
        let t = ChatTemplate::new(
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
            "<s>",
            "</s>",
        )
        .unwrap();
        let out = t.render(&[Message::new("user", "Hi")], true).unwrap();
        assert_eq!(
            out,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn template_errors_are_typed() {
        assert!(ChatTemplate::new("{% for %}", "", "").is_err());
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").unwrap();
        let err = t.render(&[], false).unwrap_err().to_string();
        assert!(err.contains("no system role"), "{err}");
    }
}
