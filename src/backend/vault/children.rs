//! Vault child tokens that bind dynamic credentials to a capability token.
//!
//! Credentials issued through a capability token are issued with a Vault child token
//! made for it: its TTL is the capability's remaining lifetime, so Vault's own lease
//! machinery revokes the credentials when the capability expires, and revoking the
//! child token (when the capability, or any token it derives from, is revoked)
//! revokes them at once. Children are made through a token role
//! (`MCPVAULT_VAULT_TOKEN_ROLE`, orphan, not renewable) so that a re-login of the
//! server, which revokes the server's own token and its children, leaves them alone.
//!
//! The capability -> child accessor mapping is also kept in Vault KV
//! (`{KV_MOUNT}/mcpvault/children/<id>`: accessor, block ids, expiry; never the child
//! token itself), where a restarted server or another replica finds it, so revoking a
//! capability still revokes its credentials after a restart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use serde_json::{Map, Value};

use super::{KvRead, Raw, Vault, VaultError};

/// Where the mapping lives under the KV mount (outside every subject's namespace).
const STORE: &str = "mcpvault/children";

/// One child token, cached per capability token (its last block's revocation id).
pub(super) struct Child {
    /// Empty for a child learnt from the KV store (made by another process): it
    /// can be revoked, not used.
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
        kv_mount: &str,
        chain: &[String],
        ttl_secs: Option<u64>,
    ) -> Result<String, VaultError> {
        let key = chain.last().cloned().unwrap_or_default();
        if let Some(c) = self.lock_children().get(&key) {
            if !c.token.is_empty() && c.usable_until.is_none_or(|t| Instant::now() < t) {
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
        // Where a restarted server finds it. A failure here is logged, not fatal:
        // the credential still ends with the capability; only revocation after a
        // restart would miss it.
        let mut record = Map::new();
        record.insert("accessor".into(), Value::from(child.accessor.clone()));
        record.insert("chain".into(), Value::from(chain.to_vec()));
        record.insert(
            "expires_at".into(),
            Value::from(ttl_secs.map(|t| now_unix() + t)),
        );
        if let Err(e) = self
            .kv_write(kv_mount, &format!("{STORE}/{key}"), &record, None)
            .await
        {
            tracing::warn!("could not record a child token in {kv_mount}/{STORE}: {e}");
        }
        self.lock_children().insert(key, child);
        Ok(auth.client_token)
    }

    /// Learns the children other processes (or this one before a restart) recorded,
    /// and drops the records of expired ones.
    pub async fn load_children(&self, kv_mount: &str) -> Result<(), VaultError> {
        let keys = self.kv_list(kv_mount, &format!("{STORE}/")).await?;
        for key in keys {
            if self.lock_children().contains_key(&key) {
                continue;
            }
            let path = format!("{STORE}/{key}");
            let KvRead::Found(rec) = self.kv_read(kv_mount, &path, None).await? else {
                continue;
            };
            let expires_at = rec.data.get("expires_at").and_then(Value::as_u64);
            if expires_at.is_some_and(|t| t + 2 < now_unix()) {
                self.forget_record(kv_mount, &key).await;
                continue;
            }
            let Some(accessor) = rec.data.get("accessor").and_then(Value::as_str) else {
                continue;
            };
            let chain = rec
                .data
                .get("chain")
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .filter_map(Value::as_str)
                        .filter_map(|h| hex::decode(h).ok())
                        .collect()
                })
                .unwrap_or_default();
            let usable_until = expires_at
                .map(|t| Instant::now() + Duration::from_secs(t.saturating_sub(now_unix())));
            self.lock_children().insert(
                key,
                Child {
                    token: String::new(),
                    accessor: accessor.to_string(),
                    chain,
                    usable_until,
                },
            );
        }
        Ok(())
    }

    async fn forget_record(&self, kv_mount: &str, key: &str) {
        let req = Raw::new(
            rustify::enums::RequestMethod::DELETE,
            format!("{kv_mount}/metadata/{STORE}/{key}"),
        );
        if let Err(e) = self.call::<Value>(req).await {
            tracing::debug!("could not delete a child token record: {e}");
        }
    }

    /// Revokes (by accessor) every cached child whose capability has a revoked id;
    /// forgets expired ones. Returns how many were revoked.
    pub async fn revoke_children(&self, kv_mount: &str, revoked: impl Fn(&[u8]) -> bool) -> usize {
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
                    self.forget_record(kv_mount, &key).await;
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

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
