//! `Generator.chat` / `chatText` / `resetChat` for JS: a conversation whose KV cache lives on between
//! calls (see `models/chat.rs`); the package's `ChatEngine` (js/chat.js) puts WebLLM's OpenAI-style
//! API on top of them.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::error::Error;
use crate::models::chat::ChatSession;
use crate::models::text::Message;
use crate::web::generator::{Generator, generate_options};

/// `[{ role, content }]` from JS: `content` a string, `null` (an assistant turn that only called a
/// tool) or an array of `{ type: "text", text }` parts (OpenAI's multi-part form, text only).
fn messages_of(value: &JsValue) -> Result<Vec<Message>, Error> {
    let bad = |what: String| Error::Input(format!("chat: {what}"));
    let array: &Array = value
        .dyn_ref()
        .ok_or_else(|| bad("`messages` must be an array of { role, content }".into()))?;
    array
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let field = |k: &str| Reflect::get(&m, &k.into()).unwrap_or(JsValue::UNDEFINED);
            let role = field("role")
                .as_string()
                .ok_or_else(|| bad(format!("message {i} has no string `role`")))?;
            let content = field("content");
            let text = if let Some(s) = content.as_string() {
                s
            } else if content.is_null() || content.is_undefined() {
                String::new()
            } else if let Some(parts) = content.dyn_ref::<Array>() {
                let mut text = String::new();
                for p in parts.iter() {
                    let kind = Reflect::get(&p, &"type".into())
                        .ok()
                        .and_then(|t| t.as_string());
                    let part = Reflect::get(&p, &"text".into())
                        .ok()
                        .and_then(|t| t.as_string());
                    match (kind.as_deref(), part) {
                        (Some("text"), Some(t)) => text.push_str(&t),
                        _ => {
                            return Err(bad(format!(
                                "message {i}: only text content parts ({{ type: \"text\", text }}) \
                                 are supported"
                            )));
                        }
                    }
                }
                text
            } else {
                return Err(bad(format!(
                    "message {i}: `content` must be a string, null or an array of text parts"
                )));
            };
            Ok(Message::new(&role, &text))
        })
        .collect()
}

/// The session, taken for the length of one generation (two at once would share its cache).
fn take_session(g: &Generator) -> Result<ChatSession, Error> {
    g.session.borrow_mut().take().ok_or_else(|| {
        Error::Input(
            "chat: another chat generation of this model is still running; await it (or stop it) \
             first"
                .into(),
        )
    })
}

#[wasm_bindgen]
impl Generator {
    /// The assistant's next message after `messages` (`[{ role: "system" | "user" | "assistant" |
    /// "tool", content }]`, through the model's chat template), as an async iterator of text pieces
    /// with `stats` like `generate`. The conversation's KV cache is kept: the next call, sending the
    /// same messages back with the answer and a new one, prefills only the new part
    /// (`stats.reusedTokens`). Options as `generate` (`chat` is implied).
    #[wasm_bindgen(
        unchecked_return_type = "AsyncIterableIterator<string> & { stats: GenerationStats | null }"
    )]
    pub fn chat(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ChatMessage[]")] messages: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateOptions")] options: Option<Object>,
    ) -> Result<JsValue, JsValue> {
        let messages = messages_of(&messages)?;
        let (opts, signal) = generate_options(options.as_ref())?;
        let mut session = take_session(self)?;
        let (generator, slot) = (self.inner.clone(), self.session.clone());
        Ok(self.stream(signal, move |on_piece| {
            Box::pin(async move {
                let result = generator
                    .chat(&mut session, &messages, &opts, on_piece)
                    .await;
                *slot.borrow_mut() = Some(session);
                result
            })
        }))
    }

    /// [`Generator::chat`]'s whole answer: `{ text, ids, promptIds, stopReason, stats }`.
    #[wasm_bindgen(js_name = chatText)]
    pub async fn chat_text(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ChatMessage[]")] messages: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateOptions")] options: Option<Object>,
    ) -> Result<Object, JsValue> {
        let messages = messages_of(&messages)?;
        let (opts, signal) = generate_options(options.as_ref())?;
        let mut session = take_session(self)?;
        let mut on_piece = |_: &str| !signal.as_ref().is_some_and(|s| s.aborted());
        let result = self
            .inner
            .chat(&mut session, &messages, &opts, &mut on_piece)
            .await;
        *self.session.borrow_mut() = Some(session);
        Ok(self.whole(&result?))
    }

    /// Forgets the conversation: the next `chat` prefills its whole prompt.
    #[wasm_bindgen(js_name = resetChat)]
    pub fn reset_chat(&self) -> Result<(), JsValue> {
        let mut slot = self.session.borrow_mut();
        let session = slot.as_mut().ok_or_else(|| {
            JsValue::from(Error::Input(
                "resetChat: a chat generation is still running; await it (or stop it) first".into(),
            ))
        })?;
        session.reset();
        Ok(())
    }
}

#[wasm_bindgen(typescript_custom_section)]
const CHAT_MESSAGE_TS: &str = r#"
/** One message of a conversation (`Generator.chat`, `ChatEngine`). */
export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  /** Text; `null` for an assistant turn without text; OpenAI's `[{ type: "text", text }]` parts. */
  content: string | null | { type: "text"; text: string }[];
}
"#;
