use thiserror::Error;

/// Why a request was denied. The `Display` text is what users see after `denied: `;
/// it never contains the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Denial {
    #[error("no token")]
    NoToken,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("revoked")]
    Revoked,
    #[error("wrong subject: {0}")]
    WrongSubject(String),
    #[error("tool not granted: {0}")]
    ToolNotGranted(String),
    #[error("resource not granted: {0}")]
    ResourceNotGranted(String),
    #[error("delegation too deep: {0}")]
    DelegationTooDeep(String),
    #[error("evaluation limit exceeded")]
    LimitExceeded,
}

impl Denial {
    /// A short stable code for audit logs and bindings.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::NoToken => "no_token",
            Denial::Malformed(_) => "malformed",
            Denial::BadSignature => "bad_signature",
            Denial::Expired => "expired",
            Denial::Revoked => "revoked",
            Denial::WrongSubject(_) => "wrong_subject",
            Denial::ToolNotGranted(_) => "tool_not_granted",
            Denial::ResourceNotGranted(_) => "resource_not_granted",
            Denial::DelegationTooDeep(_) => "delegation_too_deep",
            Denial::LimitExceeded => "limit_exceeded",
        }
    }
}

/// Errors of the token tooling (minting, attenuating, key handling): bad usage or
/// unreadable input rather than a policy decision.
#[derive(Debug, Error)]
pub enum TokenError {
    #[error("invalid key: {0}")]
    Key(String),
    #[error(
        "invalid tool name {0:?}: use letters, digits, '_', '-', '.', ':' or a family like 'kv.*'"
    )]
    ToolName(String),
    #[error(
        "invalid resource {0:?}: expected KIND:PATTERN with KIND one of kv, transit, db, ssh, kms"
    )]
    Resource(String),
    #[error("invalid value: {0}")]
    Invalid(String),
    #[error("token rejected: {0}")]
    Denied(#[from] Denial),
    #[error("biscuit: {0}")]
    Biscuit(String),
}

impl From<biscuit_auth::error::Token> for TokenError {
    fn from(e: biscuit_auth::error::Token) -> Self {
        TokenError::Biscuit(e.to_string())
    }
}
