//! Backends: one module each. Errors name the backend and what failed, never a value.

pub mod http;
pub mod kms;
pub mod vault;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BackendError {
    /// Vault / OpenBao failed: the operation and the reason (status + Vault's errors).
    #[error("vault: {op}: {reason}")]
    Vault { op: &'static str, reason: String },
    #[error("kms: {op}: {reason}")]
    Kms { op: &'static str, reason: String },
    /// An `http.request` destination failed (no connection, TLS, timeout): never
    /// the URL (its query may carry anything).
    #[error("http: {op}: {reason}")]
    Http { op: &'static str, reason: String },
}
