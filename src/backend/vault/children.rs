//! Vault child tokens that bind dynamic credentials to a capability token.
//!
//! Credentials issued through a capability token are issued with a Vault child token
//! made for it: its TTL is the capability's remaining lifetime, so Vault's own lease
//! machinery revokes the credentials when the capability expires, and revoking the
//! child token (when the capability, or any token it derives from, is revoked)
//! revokes them at once. Children are made through a token role
//! (`MCPVAULT_VAULT_TOKEN_ROLE`, orphan, not renewable) so that a re-login of the
//! server, which revokes the server's own token and its children, leaves them alone.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Raw, Vault, VaultError};

/// One child token, cached per capability token (its last block's revocation id).
pub(super) struct Child {
    token: String,
    accessor: String,
    /// Every block's revocation id of the capability: revoking any of them (the
    /// token itself or an ancestor) revokes the child.
    chain: Vec<Vec<u8>>,
    /// When to stop using it (a little before Vault expires it).
    usable_until: Option<Instant>,
}

impl Drop for Child {
    fn drop(&mut self) {
        // Best effort: do not leave a live credential in freed memory.
        let len = self.token.len();
        self.token.clear();
        self.token.extend(std::iter::repeat_n('\0', len));
    }
}

pub(super) type Children = std::sync::Mutex<HashMap<String, Child>>;

impl Vault {
    /// The child token for the capability whose block ids are `chain` (hex, authority
    /// first), made through `role` with a TTL of `ttl_secs` (the capability's
    /// remaining lifetime; `None`: the role's default). Created once and cached.
    pub async fn child_token(
        &self,
        role: &str,
        chain: &[String],
        ttl_secs: Option<u64>,
    ) -> Result<String, VaultError> {
        let key = chain.last().cloned().unwrap_or_default();
        if let Some(c) = self.lock_children().get(&key) {
            if c.usable_until.is_none_or(|t| Instant::now() < t) {
                return Ok(c.token.clone());
            }
        }
        let mut body = json!({ "display_name": "mcpvault", "meta": { "capability": key } });
        if let Some(t) = ttl_secs {
            body["ttl"] = json!(format!("{t}s"));
        }
        let env = self
            .call::<serde_json::Value>(Raw::post(format!("auth/token/create/{role}"), body))
            .await?;
        let auth = env
            .auth
            .filter(|a| !a.client_token.is_empty() && !a.accessor.is_empty())
            .ok_or_else(|| VaultError::Decode("token create: no token in the answer".into()))?;
        let child = Child {
            token: auth.client_token.clone(),
            accessor: auth.accessor,
            chain: chain.iter().filter_map(|h| hex::decode(h).ok()).collect(),
            // Stop using it a second early: a credential issued in its last second
            // would die at once.
            usable_until: ttl_secs
                .map(|t| Instant::now() + Duration::from_secs(t.saturating_sub(1))),
        };
        self.lock_children().insert(key, child);
        Ok(auth.client_token)
    }

    /// Revokes (by accessor) every cached child whose capability has a revoked id;
    /// forgets expired ones. Returns how many were revoked.
    pub async fn revoke_children(&self, revoked: impl Fn(&[u8]) -> bool) -> usize {
        let doomed: Vec<(String, String)> = {
            let mut children = self.lock_children();
            children.retain(|_, c| {
                c.usable_until
                    .is_none_or(|t| Instant::now() < t + Duration::from_secs(2))
            });
            children
                .iter()
                .filter(|(_, c)| c.chain.iter().any(|id| revoked(id)))
                .map(|(k, c)| (k.clone(), c.accessor.clone()))
                .collect()
        };
        let mut n = 0;
        for (key, accessor) in doomed {
            let req = Raw::post(
                "auth/token/revoke-accessor".to_string(),
                json!({ "accessor": accessor }),
            );
            match self.call::<serde_json::Value>(req).await {
                Ok(_) => {
                    self.lock_children().remove(&key);
                    n += 1;
                }
                // Kept: the next round tries again.
                Err(e) => tracing::warn!("revoking a child token failed: {e}"),
            }
        }
        n
    }

    fn lock_children(&self) -> std::sync::MutexGuard<'_, HashMap<String, Child>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }
}
