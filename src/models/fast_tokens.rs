//! A faster road through BERT-style tokenizers for ASCII text: the normalizer and pre-tokenizer
//! applied in one pass over the bytes, each word given to the tokenizer's own WordPiece model, and
//! the tokenizer's own post-processing (special tokens, truncation, padding) applied to the result.
//!
//! The tokenizers crate tracks, for every normalization step, where each byte came from (offsets
//! for its `Encoding`); embeddings need only the ids, and that tracking is most of the cost: ~0.17 ms
//! a 128-token text natively, ~0.42 ms in WASM (one thread in a page: 13.6 ms for a batch of 32 on
//! the 2-core test machine), against ~0.02 ms here. Only for what this reproduces exactly:
//! `BertNormalizer` with `clean_text` (any `lowercase`; accents and Chinese characters do not occur
//! in ASCII), `BertPreTokenizer`, a `WordPiece` model, and text that is ASCII and contains no added
//! token (`[CLS]`, `[MASK]`, ...: the crate matches those in the raw text first). Anything else goes
//! through the crate. `tests/tokenizer.rs` compares both on MiniLM's tokenizer.

use tokenizers::models::ModelWrapper;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{Encoding, Model, Tokenizer};

/// What the fast road needs to know of a tokenizer (see the module's doc).
#[derive(Clone, Debug)]
pub struct AsciiBert {
    lowercase: bool,
    /// The added tokens' contents, lowercased: a text containing one takes the crate's road.
    added: Vec<Vec<u8>>,
}

impl AsciiBert {
    /// `None` unless `tokenizer` is one this reproduces exactly.
    pub fn new(tokenizer: &Tokenizer) -> Option<AsciiBert> {
        let Some(NormalizerWrapper::BertNormalizer(n)) = tokenizer.get_normalizer() else {
            return None;
        };
        let bert_pre = matches!(
            tokenizer.get_pre_tokenizer(),
            Some(PreTokenizerWrapper::BertPreTokenizer(_))
        );
        if !n.clean_text
            || !bert_pre
            || !matches!(tokenizer.get_model(), ModelWrapper::WordPiece(_))
        {
            return None;
        }
        let added = tokenizer
            .get_added_tokens_decoder()
            .values()
            .map(|t| t.content.to_ascii_lowercase().into_bytes())
            .filter(|c| !c.is_empty())
            .collect();
        Some(AsciiBert {
            lowercase: n.lowercase,
            added,
        })
    }

    /// `tokenizer.encode(text, true)`'s ids (and overflow), or `None` when `text` must take the
    /// crate's road (not ASCII, or an added token in it).
    pub fn encode(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
    ) -> Option<tokenizers::Result<Encoding>> {
        if !text.is_ascii() || self.has_added_token(text.as_bytes()) {
            return None;
        }
        Some(self.encode_ascii(tokenizer, text.as_bytes()))
    }

    fn has_added_token(&self, text: &[u8]) -> bool {
        self.added
            .iter()
            .any(|t| text.windows(t.len()).any(|w| w.eq_ignore_ascii_case(t)))
    }

    fn encode_ascii(&self, tokenizer: &Tokenizer, text: &[u8]) -> tokenizers::Result<Encoding> {
        let model = tokenizer.get_model();
        let mut words = Words::default();
        let mut word = String::new();
        for &b in text {
            match b {
                // BertNormalizer's clean_text: these become spaces, other control characters go.
                b' ' | b'\t' | b'\n' | b'\r' => words.push(model, &mut word)?,
                0..=0x1f | 0x7f => {}
                // BertPreTokenizer: each punctuation character is a word of its own.
                _ if b.is_ascii_punctuation() => {
                    words.push(model, &mut word)?;
                    word.push(char::from(b));
                    words.push(model, &mut word)?;
                }
                _ if self.lowercase => word.push(char::from(b.to_ascii_lowercase())),
                _ => word.push(char::from(b)),
            }
        }
        words.push(model, &mut word)?;
        let n = words.ids.len();
        let encoding = Encoding::new(
            words.ids,
            vec![0; n],
            words.tokens,
            words.word_of,
            vec![(0, 0); n],
            vec![0; n],
            vec![1; n],
            vec![],
            Default::default(),
        );
        tokenizer.post_process(encoding, None, true)
    }
}

/// The tokens of the words so far.
#[derive(Default)]
struct Words {
    ids: Vec<u32>,
    tokens: Vec<String>,
    word_of: Vec<Option<u32>>,
    count: u32,
}

impl Words {
    /// Tokenizes `word` (when not empty) with the model and empties it.
    fn push(&mut self, model: &ModelWrapper, word: &mut String) -> tokenizers::Result<()> {
        if word.is_empty() {
            return Ok(());
        }
        for t in model.tokenize(word)? {
            self.ids.push(t.id);
            self.tokens.push(t.value);
            self.word_of.push(Some(self.count));
        }
        self.count += 1;
        word.clear();
        Ok(())
    }
}
