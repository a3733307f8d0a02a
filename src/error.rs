//! The one error type of a call, rendered in one place.
//!
//! Every tools/call, resources/read and prompts/get that fails ends as one of three
//! things, and the agent sees its `Display` text: `invalid arguments: ...` (refused
//! before any I/O), `denied: <reason>` (the token or the server said no; the reason and
//! its stable code come from [`Denial`]), or `<backend>: <op>: <reason>` (the backend
//! failed). None of them ever holds a token or a secret value.

use rmcp::model::{ContentBlock, IntoContents};
use thiserror::Error;

pub use crate::backend::BackendError;
pub use crate::token::Denial;

#[derive(Debug, Error)]
pub enum CallError {
    /// The arguments are unusable; nothing was authorized or sent.
    #[error("invalid arguments: {0}")]
    Invalid(String),
    /// Refused by policy; nothing was sent to a backend.
    #[error("denied: {0}")]
    Denied(#[from] Denial),
    /// The backend failed: `vault: <op>: <reason>` / `kms: <op>: <reason>`.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Not a failure: the call waits for the user's confirmation (2026-07-28). The
    /// transport answers with this input-required result; nothing was sent.
    #[error("input required: the user's confirmation")]
    InputRequired(Box<rmcp::model::InputRequiredResult>),
}

impl CallError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        CallError::Invalid(msg.into())
    }

    /// `invalid `field`: why`, the shape every argument check uses.
    pub fn bad_field(field: &str, why: impl std::fmt::Display) -> Self {
        CallError::Invalid(format!("invalid `{field}`: {why}"))
    }

    /// The audit log's decision for this error: `invalid`, `deny` or (after an
    /// allowed call) `error`.
    pub fn decision(&self) -> &'static str {
        match self {
            CallError::Invalid(_) => "invalid",
            CallError::Denied(_) => "deny",
            CallError::Backend(_) => "error",
            CallError::InputRequired(_) => "pending",
        }
    }

    /// The text after the prefix, as the audit log's `reason` records it.
    pub fn reason(&self) -> String {
        match self {
            CallError::Invalid(m) => m.clone(),
            CallError::Denied(d) => d.to_string(),
            CallError::Backend(b) => b.to_string(),
            CallError::InputRequired(_) => "confirmation requested".into(),
        }
    }
}

/// A failed tool call is a tool result with `isError: true` and this text (rmcp sets
/// the flag for the `Err` branch of a tool's `Result`).
impl IntoContents for CallError {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(self.to_string())]
    }
}

/// resources/read and prompts/get have no tool result to carry an error: they answer
/// with a JSON-RPC error of the same text.
impl From<CallError> for rmcp::ErrorData {
    fn from(e: CallError) -> Self {
        use rmcp::model::ErrorCode;
        let code = match &e {
            CallError::Invalid(_) => ErrorCode::INVALID_PARAMS,
            CallError::Denied(_) => ErrorCode::INVALID_REQUEST,
            CallError::Backend(_) => ErrorCode::INTERNAL_ERROR,
            // The transports answer this one with an input-required result; if it
            // ever got here, the call still did not happen.
            CallError::InputRequired(_) => ErrorCode::INVALID_REQUEST,
        };
        rmcp::ErrorData::new(code, e.to_string(), None)
    }
}
