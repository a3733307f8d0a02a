//! Vault / OpenBao backend through `vaultrs`.
//!
//! The client is built at startup without any network I/O, so the server answers
//! initialize and tools/list even when Vault is down; calls then fail with
//! `vault: ...` and work again once Vault is back.

use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

use super::BackendError;

pub struct Vault {
    client: Option<VaultClient>,
    /// Why there is no client (bad VAULT_ADDR, missing credentials).
    unavailable: Option<String>,
}

impl Vault {
    pub fn from_env() -> Self {
        let addr = std::env::var("VAULT_ADDR").unwrap_or_else(|_| "http://127.0.0.1:8200".into());
        let token = std::env::var("VAULT_TOKEN").unwrap_or_default();
        let built = VaultClientSettingsBuilder::default()
            .address(addr)
            .token(token)
            .build()
            .map_err(|e| e.to_string())
            .and_then(|s| VaultClient::new(s).map_err(|e| e.to_string()));
        match built {
            Ok(c) => Vault {
                client: Some(c),
                unavailable: None,
            },
            Err(e) => Vault {
                client: None,
                unavailable: Some(e),
            },
        }
    }

    pub fn client(&self, op: &'static str) -> Result<&VaultClient, BackendError> {
        self.client.as_ref().ok_or_else(|| BackendError::Vault {
            op,
            reason: self
                .unavailable
                .clone()
                .unwrap_or_else(|| "not configured".into()),
        })
    }
}

/// Maps a vaultrs error to a message that names what failed and never carries a
/// request body (which could hold a secret).
pub fn vault_err(op: &'static str, e: vaultrs::error::ClientError) -> BackendError {
    use vaultrs::error::ClientError as E;
    let reason = match e {
        E::APIError { code, errors } => format!("HTTP {code}: {}", errors.join("; ")),
        E::RestClientError { source } => format!("request failed: {source}"),
        E::ResponseEmptyError => "empty response".into(),
        other => other.to_string(),
    };
    BackendError::Vault { op, reason }
}
