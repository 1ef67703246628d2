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
/// vocabulary, merges and pre-tokenizer, or SentencePiece BPE ("llama": [`spm_tokenizer`]); CONTROL
/// tokens become special added tokens, USER_DEFINED ones plain added tokens, so that `<|im_start|>` in
/// a chat prompt stays one token.
pub fn tokenizer_from_gguf(source: &str, header: &Header) -> Result<Tokenizer> {
    let model = header.get(source, "tokenizer.ggml.model")?;
    let spm = match model.as_str() {
        Some("gpt2") => false,
        Some("llama") => true,
        _ => {
            return Err(model_error(
                source,
                format!(
                    "tokenizer.ggml.model is {model:?}; byte-level BPE (\"gpt2\") and SentencePiece \
                     BPE (\"llama\") vocabularies are supported"
                ),
            ));
        }
    };
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
    let types: Vec<u64> = match header.metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(a)) => a.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
        _ => vec![1; tokens.len()],
    };
    if spm {
        return spm_tokenizer(source, header, &tokens, &types);
    }
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
    let vocab: serde_json::Map<String, Json> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), json!(i)))
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
        "added_tokens": added_tokens(&tokens, &types),
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer(pre),
        "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": merges},
    });
    build(source, &spec)
}

fn build(source: &str, spec: &Json) -> Result<Tokenizer> {
    let bytes = serde_json::to_vec(spec).map_err(|e| model_error(source, e.to_string()))?;
    Tokenizer::from_bytes(bytes)
        .map_err(|e| model_error(source, format!("building the tokenizer: {e}")))
}

/// CONTROL tokens (type 3) as special added tokens, USER_DEFINED ones (4) as plain added tokens: both
/// stay whole in the text (`<|im_start|>`, `<start_of_turn>`).
fn added_tokens(tokens: &[&str], types: &[u64]) -> Vec<Json> {
    tokens
        .iter()
        .zip(types)
        .enumerate()
        .filter(|(_, (_, t))| **t == 3 || **t == 4)
        .map(|(id, (content, t))| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": *t == 3})
        })
        .collect()
}

/// A SentencePiece BPE vocabulary (LLaMA 2, TinyLlama, Mistral, Phi-3, Gemma), built as transformers
/// builds it from a GGUF file (`integrations/gguf/gguf_tokenizer_mapping.py`): BPE with byte fallback
/// over the pieces, the merges recovered from the vocabulary (GGUF stores none) and ordered by the
/// merged piece's score (Gemma: by its position in the file, which is its merge order; and Gemma's
/// whitespace-only pieces, stored as spaces, spelled with "▁" again). Spaces become "▁": through a
/// "▁" prepended to the text (Metaspace) for LLaMA, a normalizer for Phi-3, no prefix for Gemma.
fn spm_tokenizer(
    source: &str,
    header: &Header,
    tokens: &[&str],
    types: &[u64],
) -> Result<Tokenizer> {
    const SPACE: &str = "\u{2581}";
    let arch = header.architecture().unwrap_or("");
    let gemma = arch.starts_with("gemma");
    let tokens: Vec<String> = tokens
        .iter()
        .map(|t| {
            if gemma && t.contains(' ') && t.trim().is_empty() {
                SPACE.repeat(t.chars().count())
            } else {
                t.to_string()
            }
        })
        .collect();
    let scores: Vec<f64> = if gemma {
        (0..tokens.len()).map(|i| -(i as f64)).collect()
    } else {
        let array = header
            .get(source, "tokenizer.ggml.scores")?
            .as_array()
            .ok_or_else(|| model_error(source, "`tokenizer.ggml.scores` is not an array"))?;
        if array.len() != tokens.len() {
            return Err(model_error(
                source,
                format!("{} scores for {} tokens", array.len(), tokens.len()),
            ));
        }
        array.iter().map(|v| v.as_f64().unwrap_or(0.0)).collect()
    };
    let merges = merges_from_scores(&tokens, &scores);
    let mut vocab = serde_json::Map::new();
    for (i, t) in tokens.iter().enumerate() {
        vocab.insert(t.clone(), json!(i));
    }
    let unk = header
        .metadata
        .get("tokenizer.ggml.unknown_token_id")
        .and_then(Value::as_u64)
        .and_then(|i| tokens.get(i as usize))
        .cloned();
    let prefix = header
        .metadata
        .get("tokenizer.ggml.add_space_prefix")
        .and_then(Value::as_bool)
        .unwrap_or(!gemma);
    let replace = |from: &str, to: &str| json!({"type": "Replace", "pattern": {"String": from}, "content": to});
    let (normalizer, pre_tokenizer) = if gemma {
        (replace(" ", SPACE), Json::Null)
    } else if arch == "phi3" {
        let mut steps = vec![replace(" ", SPACE)];
        if prefix {
            steps.insert(0, json!({"type": "Prepend", "prepend": SPACE}));
        }
        (
            json!({"type": "Sequence", "normalizers": steps}),
            Json::Null,
        )
    } else {
        let scheme = if prefix { "first" } else { "never" };
        let meta = json!({"type": "Metaspace", "replacement": SPACE, "prepend_scheme": scheme, "split": false});
        (Json::Null, meta)
    };
    let mut decoders = vec![
        replace(SPACE, " "),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if prefix && !gemma {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    let token_refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(&token_refs, types),
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {"type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true,
                  "ignore_merges": false, "vocab": vocab, "merges": merges},
    });
    build(source, &spec)
}

/// The merges a SentencePiece BPE vocabulary implies (transformers' `generate_merges`): every split
/// of a piece into two pieces of the vocabulary, ranked by the whole piece's score, best first (ties:
/// longer left part, then longer right part, then the order the pieces come in).
fn merges_from_scores(tokens: &[String], scores: &[f64]) -> Vec<Json> {
    // As Python's dicts: the last id of a repeated piece, the first position, the last score.
    let mut ids: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut order: Vec<&str> = Vec::with_capacity(tokens.len());
    let mut score_of: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    for (i, t) in tokens.iter().enumerate() {
        if ids.insert(t, i).is_none() {
            order.push(t);
        }
        score_of.insert(t, scores[i]);
    }
    let mut merges: Vec<(&str, &str, f64)> = Vec::new();
    for piece in order {
        let score = score_of[piece];
        let start = merges.len();
        for (at, _) in piece.char_indices().skip(1) {
            let (l, r) = piece.split_at(at);
            if ids.contains_key(l) && ids.contains_key(r) {
                merges.push((l, r, score));
            }
        }
        merges[start..].sort_by_key(|(l, r, _)| (ids[l], ids[r]));
    }
    let len = |s: &str| s.chars().count();
    merges.sort_by(|a, b| {
        b.2.total_cmp(&a.2)
            .then(len(b.0).cmp(&len(a.0)))
            .then(len(b.1).cmp(&len(a.1)))
    });
    merges.into_iter().map(|(l, r, _)| json!([l, r])).collect()
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
