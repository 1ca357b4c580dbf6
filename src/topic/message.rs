//! What a topic tells JS: one message type, a union napi writes into `binding.d.ts`.

use napi_derive::napi;

/// A message from a topic member to JS.
#[napi(discriminant = "kind", discriminant_case = "lowercase", object_from_js = false)]
pub enum TopicMessage {
    /// Events of one author, in its order, as one JSON array text.
    Events { author: String, json: String },
    /// The send buffer drained, as JS asked.
    Drain,
    /// A gossip neighbour connected (`up`) or went away.
    Neighbor { node_id: String, up: bool },
    /// The first word from a member (its heads or its events).
    Member { node_id: String },
    /// Events `from` up to (not including) `to` of `author` are gone everywhere this
    /// member could ask: delivery goes on after them.
    Gap { author: String, from: f64, to: f64 },
    /// Something arrived that is not delivered: a bad signature, an author not allowed, a
    /// replayed run, a malformed message.
    Dropped { author: Option<String>, reason: String },
    /// The member stopped; last.
    Closed { closed: TopicClosed },
}

#[napi(object, object_from_js = false)]
#[derive(Clone)]
pub struct TopicClosed {
    pub code: f64,
    pub reason: String,
    #[napi(ts_type = "'local' | 'transport'")]
    pub kind: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl TopicClosed {
    pub fn local(code: u32, reason: &str) -> Self {
        TopicClosed { code: code.into(), reason: reason.into(), kind: "local".into(), error_code: None, error_message: None }
    }

    pub fn error(message: &str, code: &str) -> Self {
        TopicClosed {
            code: 0.0,
            reason: message.into(),
            kind: "transport".into(),
            error_code: Some(code.into()),
            error_message: Some(message.into()),
        }
    }
}
