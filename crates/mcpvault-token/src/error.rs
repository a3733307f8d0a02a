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
    // Denials the server decides around the token (not from its Datalog). They live
    // here so every denial, its text and its code come from one enum.
    /// The revocation list cannot be read or parsed: fail closed.
    #[error("revocation list unavailable, failing closed ({0})")]
    RevocationUnavailable(String),
    /// Per-token or per-subject bucket empty: the limiter's own explanation,
    /// `rate limited (token): retry in N ms`.
    #[error("{0}")]
    RateLimited(String),
    /// `params._meta` carries two different tokens under the two accepted keys.
    #[error("conflicting tokens")]
    ConflictingTokens,
    /// A resource URI names another subject's namespace.
    #[error("resource belongs to another subject")]
    OtherSubject,
    /// A tool registered without a scope declaration: never run unscoped.
    #[error("tool has no declared scope: {0}")]
    UndeclaredScope(String),
    /// The audit entry for this call could not be written: fail closed.
    #[error("audit log unavailable")]
    AuditUnavailable,
    /// A handle this server does not hold for this token (never issued, issued to
    /// another token, or held by another replica): indistinguishable on purpose.
    #[error("unknown handle")]
    UnknownHandle,
    /// A handle past its lifetime; its value is gone.
    #[error("handle expired")]
    HandleExpired,
    /// Storing or encrypting the handle's value where the token could read it back in
    /// clear, without leave to reveal the handle's source.
    #[error("handle would become revealable")]
    HandleRevealable,
    /// An `http.request` destination that is, or resolves to, a non-public address
    /// (loopback, private, link-local, ...) outside `MCPVAULT_HTTP_ALLOW_NETS`.
    #[error("destination blocked: {0}")]
    DestinationBlocked(String),
    /// The token requires the user's confirmation for this tool and the user
    /// declined (or cancelled) it.
    #[error("declined by user")]
    Declined,
    /// No answer to the confirmation question within `MCPVAULT_CONFIRM_TIMEOUT`.
    #[error("confirmation timed out")]
    ConfirmTimedOut,
    /// The token requires confirmation and the client declared no elicitation.
    #[error("confirmation required, but the client does not support elicitation")]
    ConfirmUnsupported,
    /// A confirmation that cannot be trusted: a request state that was altered,
    /// issued for another call, or already used; an answer missing or unreadable.
    #[error("confirmation rejected: {0}")]
    ConfirmRejected(String),
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
            Denial::RevocationUnavailable(_) => "revocation_unavailable",
            Denial::RateLimited(_) => "rate_limited",
            Denial::ConflictingTokens => "conflicting_tokens",
            Denial::OtherSubject => "other_subject",
            Denial::UndeclaredScope(_) => "undeclared_scope",
            Denial::AuditUnavailable => "audit_unavailable",
            Denial::UnknownHandle => "unknown_handle",
            Denial::HandleExpired => "handle_expired",
            Denial::HandleRevealable => "handle_revealable",
            Denial::DestinationBlocked(_) => "destination_blocked",
            Denial::Declined => "declined",
            Denial::ConfirmTimedOut => "confirm_timed_out",
            Denial::ConfirmUnsupported => "confirm_unsupported",
            Denial::ConfirmRejected(_) => "confirm_rejected",
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
        "invalid resource {0:?}: expected KIND:PATTERN with KIND one of kv, transit, db, ssh, kms, ssh_principal, http"
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
