//! Multi-turn chat over a [`Generator`]: a conversation (system, user, assistant, tool messages)
//! rendered through the model's chat template, in a [`ChatSession`] that keeps its KV cache between
//! turns, so that each turn prefills only what the cache does not hold yet (the longest common prefix
//! of the new prompt with what was fed before is reused: the earlier turns, as long as the caller
//! sends them back unchanged, as OpenAI-style clients do).

use crate::error::{Error, Result};
use crate::models::generate::{GenerateOptions, Generation, Generator};
use crate::models::llama::KvCache;
use crate::models::text::Message;

/// A conversation's KV cache and the token ids it holds, reused across [`Generator::chat`] calls.
/// Belongs to one generator (a cache of another model's shape is replaced, not misread).
#[derive(Default)]
pub struct ChatSession {
    pub(crate) cache: Option<KvCache>,
    /// The same on the CPU backend.
    pub(crate) host_cache: Option<KvCache<crate::cpu::Cpu>>,
    /// The ids whose keys and values the cache holds, in order.
    pub(crate) fed: Vec<u32>,
}

impl ChatSession {
    pub fn new() -> ChatSession {
        ChatSession::default()
    }

    /// Forgets the conversation (the cache's buffers are kept for the next one).
    pub fn reset(&mut self) {
        self.fed.clear();
        if let Some(c) = self.cache.as_mut() {
            c.clear();
        }
        if let Some(c) = self.host_cache.as_mut() {
            c.clear();
        }
    }

    /// Token positions the cache holds.
    pub fn cached_tokens(&self) -> usize {
        self.fed.len()
    }
}

/// The roles a chat message may have.
pub const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];

impl Generator {
    /// The prompt for `messages` through the model's chat template, the assistant's turn opened.
    pub fn render_messages(&self, messages: &[Message]) -> Result<String> {
        if messages.is_empty() {
            return Err(Error::Input(
                "chat: no messages (give at least one user message)".into(),
            ));
        }
        if let Some(m) = messages.iter().find(|m| !ROLES.contains(&m.role.as_str())) {
            return Err(Error::Input(format!(
                "chat: a message has role {:?}; roles are {}",
                m.role,
                ROLES.join(", ")
            )));
        }
        self.template()
            .ok_or_else(|| {
                Error::Input("this model has no chat template: use generate with chat off".into())
            })?
            .render(messages, true)
    }

    /// The ids of [`Generator::render_messages`] (what the template writes, BOS included where it
    /// does, as transformers' `apply_chat_template`).
    pub fn encode_messages(&self, messages: &[Message]) -> Result<Vec<u32>> {
        let text = self.render_messages(messages)?;
        self.encode_rendered(&text)
    }

    /// The assistant's next message after `messages`, in `session`'s cache: only the part of the
    /// prompt the cache does not hold is prefilled (`stats.reused_tokens` says how much was reused).
    /// Same results as [`Generator::generate`] on the same prompt (the cached keys and values are
    /// those of the same ids at the same positions). `opts.chat` is ignored: the messages are the
    /// chat.
    pub async fn chat(
        &self,
        session: &mut ChatSession,
        messages: &[Message],
        opts: &GenerateOptions,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let ids = self.encode_messages(messages)?;
        self.generate_in(Some(session), ids, opts, on_piece).await
    }
}
