//! Grammar-constrained sampling: OpenAI's `response_format` (`json_object`, `json_schema`).
//!
//! llguidance compiles the JSON Schema into a grammar over bytes and, at each step, gives the set of
//! tokens that keep the output a prefix of some valid document (a bitset over the vocabulary, from
//! a walk of the token trie); the sampling kernel chooses among those on the GPU
//! ([`crate::kernels::sample::sample_masked`]), so the output always parses and validates, whatever
//! the model prefers. The end-of-sequence token is allowed only once the document is complete. The
//! next step's mask needs this step's token on the CPU, so constrained generation runs one step at a
//! time (no run-ahead): a read-back round trip a token.

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::{Value, json};
use tokenizers::Tokenizer;
use toktrie::{ApproximateTokEnv, TokRxInfo, TokTrie};

use crate::error::{Error, Result};

/// What the output must be.
#[derive(Clone, Debug, PartialEq)]
pub enum ResponseFormat {
    /// Any JSON object (OpenAI's `{"type": "json_object"}`).
    JsonObject,
    /// A JSON document that validates against this JSON Schema (OpenAI's `{"type": "json_schema",
    /// "json_schema": {"schema": …}}`). llguidance's `x-guidance` options in the schema are honoured;
    /// without them the output is compact JSON with `", "` and `": "` separators.
    JsonSchema(Value),
}

impl ResponseFormat {
    /// OpenAI's `response_format` object: `{"type": "text"}` (no constraint: `None`),
    /// `{"type": "json_object"}`, or `{"type": "json_schema", "json_schema": {"name", "schema",
    /// "strict"}}`.
    pub fn from_openai(v: &Value) -> Result<Option<ResponseFormat>> {
        let bad = |m: String| Error::Input(format!("response_format: {m}"));
        match v.get("type").and_then(Value::as_str) {
            Some("text") => Ok(None),
            Some("json_object") => Ok(Some(ResponseFormat::JsonObject)),
            Some("json_schema") => {
                let schema = v
                    .get("json_schema")
                    .and_then(|j| j.get("schema"))
                    .filter(|s| s.is_object() || s.is_boolean())
                    .ok_or_else(|| {
                        bad(
                            "type \"json_schema\" needs `json_schema: { name, schema: {…} }` with \
                             the schema an object"
                                .into(),
                        )
                    })?;
                Ok(Some(ResponseFormat::JsonSchema(schema.clone())))
            }
            other => Err(bad(format!(
                "`type` must be \"text\", \"json_object\" or \"json_schema\", got {}",
                other.map_or_else(
                    || v.get("type").map_or("nothing".into(), Value::to_string),
                    |t| { format!("{t:?}") }
                )
            ))),
        }
    }

    /// The schema llguidance compiles.
    fn schema(&self) -> Value {
        let mut schema = match self {
            ResponseFormat::JsonObject => json!({"type": "object"}),
            ResponseFormat::JsonSchema(s) => s.clone(),
        };
        // Compact separators, no free whitespace: a weak model cannot pad its answer with newlines
        // up to max_tokens.
        if let Some(obj) = schema.as_object_mut()
            && !obj.contains_key("x-guidance")
        {
            obj.insert(
                "x-guidance".into(),
                json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "}),
            );
        }
        schema
    }
}

/// A tokenizer's vocabulary as llguidance walks it (its token trie and the precomputed slices):
/// built once a generator, on the first constrained generation.
pub(crate) struct Grammars {
    factory: ParserFactory,
    eos_ids: Vec<u32>,
}

impl Grammars {
    /// `eos_ids`: the tokens that end a generation; the first is the grammar's end token, and every
    /// one of them is allowed where it is.
    pub(crate) fn new(tokenizer: &Tokenizer, eos_ids: &[u32]) -> Result<Grammars> {
        let unsupported = |m: String| Error::Input(format!("response_format: {m}"));
        let &eos = eos_ids.first().ok_or_else(|| {
            unsupported(
                "the model has no end-of-sequence token, so a JSON answer could not end".into(),
            )
        })?;
        let spec: Value = serde_json::from_str(
            &tokenizer
                .to_string(false)
                .map_err(|e| unsupported(format!("the tokenizer does not serialise: {e}")))?,
        )
        .map_err(|e| unsupported(format!("the tokenizer does not serialise: {e}")))?;
        check_byte_tokens(&spec).map_err(unsupported)?;
        let mut words = llguidance::token_bytes_from_tokenizer_json(&spec)
            .map_err(|e| unsupported(format!("the vocabulary's bytes: {e}")))?;
        let vocab = tokenizer.get_vocab_size(true).max(words.len());
        words.resize(vocab, Vec::new());
        let info = TokRxInfo::new(
            u32::try_from(vocab).map_err(|_| unsupported("vocabulary too large".into()))?,
            eos,
        );
        let env: toktrie::TokEnv =
            std::sync::Arc::new(ApproximateTokEnv::new(TokTrie::from(&info, &words)));
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| unsupported(format!("llguidance: {e}")))?;
        factory.quiet();
        Ok(Grammars {
            factory,
            eos_ids: eos_ids.to_vec(),
        })
    }

    /// A fresh constraint for one generation over a model whose logits have `vocab` entries.
    pub(crate) fn constraint(&self, format: &ResponseFormat, vocab: usize) -> Result<Constraint> {
        let grammar = TopLevelGrammar::from_json_schema(format.schema());
        let parser = self
            .factory
            .create_parser(grammar)
            .map_err(|e| Error::Input(format!("response_format: the JSON schema: {e}")))?;
        Ok(Constraint {
            matcher: Matcher::new(Ok(parser)),
            eos_ids: self.eos_ids.clone(),
            vocab,
        })
    }
}

/// llguidance's vocabulary reader takes every `<0x…>` token of a byte-fallback vocabulary for a
/// byte; refuse one that is not `<0xHH>` here rather than let it panic.
fn check_byte_tokens(spec: &Value) -> std::result::Result<(), String> {
    let decoders = spec["decoder"]["decoders"].as_array();
    let byte_fallback =
        decoders.is_some_and(|d| d.iter().any(|d| d["type"].as_str() == Some("ByteFallback")));
    if !byte_fallback {
        return Ok(());
    }
    let vocab = spec["model"]["vocab"].as_object();
    for name in vocab.into_iter().flat_map(|v| v.keys()) {
        let hex = name.len() == 6
            && name.ends_with('>')
            && name
                .get(3..5)
                .is_some_and(|h| u8::from_str_radix(h, 16).is_ok());
        if name.starts_with("<0x") && !hex {
            return Err(format!(
                "the vocabulary's token {name:?} looks like a byte token but is not <0xHH>"
            ));
        }
    }
    Ok(())
}

/// One generation's grammar state.
pub(crate) struct Constraint {
    matcher: Matcher,
    eos_ids: Vec<u32>,
    vocab: usize,
}

impl Constraint {
    /// The tokens allowed next, as the sampling kernel's bitset (`ceil(vocab / 32)` words; ids past
    /// the tokenizer's vocabulary never allowed).
    pub(crate) fn mask(&mut self) -> Result<Vec<u32>> {
        let vob = self.matcher.compute_mask_or_eos().map_err(grammar_error)?;
        let mut words = vec![0u32; self.vocab.div_ceil(32)];
        let n = words.len().min(vob.as_slice().len());
        words[..n].copy_from_slice(&vob.as_slice()[..n]);
        if let Some(&eos) = self.eos_ids.first()
            && vob.is_allowed(eos)
        {
            for &id in &self.eos_ids {
                if let Some(w) = words.get_mut(id as usize / 32) {
                    *w |= 1 << (id % 32);
                }
            }
        }
        // Bits past the vocabulary (the last word's tail) stay clear.
        if !self.vocab.is_multiple_of(32)
            && let Some(last) = words.last_mut()
        {
            *last &= (1u32 << (self.vocab % 32)) - 1;
        }
        if words.iter().all(|&w| w == 0) {
            return Err(grammar_error(
                "no token can continue the output (the vocabulary cannot spell what the schema \
                 requires)",
            ));
        }
        Ok(words)
    }

    /// Advances past the token chosen (one the last mask allowed).
    pub(crate) fn consume(&mut self, id: u32) -> Result<()> {
        if self.eos_ids.contains(&id) {
            return Ok(());
        }
        self.matcher.consume_token(id).map_err(grammar_error)
    }
}

fn grammar_error(e: impl std::fmt::Display) -> Error {
    Error::Input(format!("response_format: {e}"))
}
