//! The Vault token in use: a static `VAULT_TOKEN` or an AppRole login.
//!
//! Nothing happens at startup. The first call looks the static token up (to learn
//! its TTL) or logs in with AppRole. A token with a TTL is refreshed once two
//! thirds of it have passed: renew-self when renewable, else (AppRole) a new
//! login. Only one refresh runs at a time; other calls wait for it and then use
//! its result, so a burst of calls after expiry causes a single login. When the
//! refresh fails (Vault down or hung), the calls that were waiting for it fail with
//! the same error instead of each trying again in turn: a burst during an outage
//! costs one timeout, not one per call.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use super::{header_safe, Raw, Vault, VaultError};

/// How to get a token.
#[derive(Clone)]
pub(crate) enum Login {
    Token(String),
    AppRole {
        mount: String,
        role_id: String,
        secret_id: String,
    },
    Jwt {
        mount: String,
        role: String,
        file: std::path::PathBuf,
    },
}

impl Login {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Login::Token(_) => "token",
            Login::AppRole { .. } => "approle",
            Login::Jwt { .. } => "jwt",
        }
    }

    /// The login request (mount, body) of a method that can log in again; `None`
    /// for a static token. The JWT file is re-read every time: platforms rotate it.
    fn login_request(&self) -> Option<Result<(&str, Value), VaultError>> {
        match self {
            Login::Token(_) => None,
            Login::AppRole {
                mount,
                role_id,
                secret_id,
            } => Some(Ok((
                mount.as_str(),
                json!({ "role_id": role_id, "secret_id": secret_id }),
            ))),
            Login::Jwt { mount, role, file } => Some(
                std::fs::read_to_string(file)
                    .map(|jwt| (mount.as_str(), json!({ "role": role, "jwt": jwt.trim() })))
                    .map_err(|e| {
                        VaultError::Login(Box::new(VaultError::Config(format!(
                            "VAULT_JWT_FILE {}: {e}",
                            file.display()
                        ))))
                    }),
            ),
        }
    }

    /// Whether a dead token can be replaced (AppRole) or not (a static token).
    pub(crate) fn can_relogin(&self) -> bool {
        matches!(self, Login::AppRole { .. } | Login::Jwt { .. })
    }
}

/// The token and when to refresh it. `checked` is false until the first lookup or
/// login: an unchecked session is never handed out.
#[derive(Clone, Default)]
struct Session {
    token: String,
    generation: u64,
    checked: bool,
    renewable: bool,
    /// The TTL the token was granted; a renewal that grants less has hit the
    /// token's max TTL, and an AppRole session then logs in again instead.
    ttl: Duration,
    refresh_at: Option<Instant>,
    expires_at: Option<Instant>,
}

impl Session {
    fn new(token: String, generation: u64, ttl_secs: u64, renewable: bool) -> Session {
        let mut s = Session {
            token,
            generation,
            checked: true,
            renewable,
            ..Session::default()
        };
        s.set_ttl(ttl_secs);
        s
    }

    /// A TTL of 0 means the token never expires (a root token): nothing to do.
    fn set_ttl(&mut self, ttl_secs: u64) {
        let now = Instant::now();
        self.ttl = Duration::from_secs(ttl_secs);
        if ttl_secs == 0 {
            self.refresh_at = None;
            self.expires_at = None;
        } else {
            self.refresh_at = Some(now + self.ttl * 2 / 3);
            self.expires_at = Some(now + self.ttl);
        }
    }

    fn usable(&self, now: Instant) -> bool {
        self.checked && !self.token.is_empty() && self.refresh_at.is_none_or(|t| now < t)
    }
}

#[derive(Default)]
pub(crate) struct SessionCache {
    current: RwLock<Session>,
    /// Held while refreshing; holds the last failed refresh (when, why).
    refresh: tokio::sync::Mutex<Option<(Instant, VaultError)>>,
}

#[derive(Deserialize, Default)]
struct LookupSelf {
    #[serde(default)]
    ttl: u64,
    #[serde(default)]
    renewable: bool,
}

impl SessionCache {
    // A poisoned lock only means another thread panicked mid-update of plain
    // data; the worst case is one extra refresh, so keep going.
    fn read(&self) -> RwLockReadGuard<'_, Session> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Session> {
        self.current.write().unwrap_or_else(|p| p.into_inner())
    }

    fn usable(&self) -> Option<(String, u64)> {
        let s = self.read();
        s.usable(Instant::now())
            .then(|| (s.token.clone(), s.generation))
    }

    /// A token to use now, with its generation (for `invalidate`).
    pub(crate) async fn token(
        &self,
        vault: &Vault,
        login: &Login,
    ) -> Result<(String, u64), VaultError> {
        if let Some(t) = self.usable() {
            return Ok(t);
        }
        let arrived = Instant::now();
        let mut last_failure = self.refresh.lock().await;
        // Whoever held the lock before us may have refreshed already, or failed
        // to while we waited: then share that outcome.
        if let Some(t) = self.usable() {
            return Ok(t);
        }
        if let Some((at, e)) = last_failure.as_ref() {
            if *at >= arrived {
                return Err(e.clone());
            }
        }
        let current = self.read().clone();
        match refresh(vault, login, current).await {
            Ok(next) => {
                *last_failure = None;
                let out = (next.token.clone(), next.generation);
                *self.write() = next;
                Ok(out)
            }
            Err(e) => {
                *last_failure = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    /// Drops the token of `generation` (Vault said it is no longer valid) so the
    /// next call logs in again. A newer token is left alone.
    pub(crate) fn invalidate(&self, generation: u64) {
        let mut s = self.write();
        if s.generation == generation {
            s.token.clear();
            s.checked = false;
        }
    }
}

async fn refresh(vault: &Vault, login: &Login, cur: Session) -> Result<Session, VaultError> {
    match login {
        Login::Token(token) => refresh_static(vault, token, cur).await,
        Login::AppRole { .. } | Login::Jwt { .. } => {
            let now = Instant::now();
            if !cur.token.is_empty()
                && cur.renewable
                && cur
                    .expires_at
                    .is_some_and(|e| e > now + Duration::from_secs(5))
            {
                match renew_self(vault, &cur.token).await {
                    Ok((ttl, renewable)) if Duration::from_secs(ttl) >= cur.ttl => {
                        let mut next = cur.clone();
                        next.renewable = renewable;
                        next.set_ttl(ttl);
                        return Ok(next);
                    }
                    Ok(_) => tracing::debug!("vault token at its max TTL; logging in again"),
                    Err(e) => tracing::warn!("vault token renewal failed ({e}); logging in again"),
                }
            }
            let (mount, body) = match login.login_request() {
                Some(r) => r?,
                None => return Err(VaultError::Config("no login method".into())),
            };
            let env = vault
                .send::<Value>("", &Raw::post(format!("auth/{mount}/login"), body))
                .await
                .map_err(|e| VaultError::Login(Box::new(e)))?;
            let auth = env.auth.ok_or_else(|| {
                VaultError::Login(Box::new(VaultError::Decode(
                    "login response has no auth block".into(),
                )))
            })?;
            header_safe("the token from the login", &auth.client_token)
                .map_err(|e| VaultError::Login(Box::new(VaultError::Decode(e))))?;
            tracing::info!(
                ttl_secs = auth.lease_duration,
                renewable = auth.renewable,
                login = login.kind(),
                "vault login ok"
            );
            Ok(Session::new(
                auth.client_token,
                cur.generation + 1,
                auth.lease_duration,
                auth.renewable,
            ))
        }
    }
}

/// A static token cannot be replaced, so only an unreachable Vault fails the call
/// here; a dead token shows up as the call's own 403.
async fn refresh_static(vault: &Vault, token: &str, cur: Session) -> Result<Session, VaultError> {
    if !cur.checked {
        return match vault
            .send::<LookupSelf>(token, &Raw::get("auth/token/lookup-self"))
            .await
        {
            Ok(env) => {
                let d = env.data.unwrap_or_default();
                Ok(Session::new(
                    token.to_string(),
                    cur.generation + 1,
                    d.ttl,
                    d.renewable,
                ))
            }
            // Vault is down: the call would fail the same way; look up next time.
            Err(e @ (VaultError::Unreachable(_) | VaultError::Config(_))) => Err(e),
            Err(e) => {
                tracing::warn!("cannot look up VAULT_TOKEN ({e}); it will not be renewed");
                Ok(Session::new(
                    token.to_string(),
                    cur.generation + 1,
                    0,
                    false,
                ))
            }
        };
    }
    let mut next = cur.clone();
    if !cur.renewable {
        tracing::warn!("VAULT_TOKEN is not renewable; it expires at the end of its TTL");
        next.refresh_at = None;
        return Ok(next);
    }
    match renew_self(vault, token).await {
        Ok((ttl, renewable)) => {
            next.renewable = renewable;
            next.set_ttl(ttl);
        }
        Err(e) => {
            tracing::warn!("VAULT_TOKEN renewal failed ({e}); retrying in 30s");
            next.refresh_at = Some(Instant::now() + Duration::from_secs(30));
        }
    }
    Ok(next)
}

async fn renew_self(vault: &Vault, token: &str) -> Result<(u64, bool), VaultError> {
    let env = vault
        .send::<Value>(token, &Raw::post("auth/token/renew-self", json!({})))
        .await?;
    let auth = env
        .auth
        .ok_or_else(|| VaultError::Decode("renew-self response has no auth block".into()))?;
    Ok((auth.lease_duration, auth.renewable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_schedules_refresh_at_two_thirds() {
        let s = Session::new("t".into(), 1, 30, true);
        let now = Instant::now();
        assert!(s.usable(now));
        assert!(!s.usable(now + Duration::from_secs(21)));
        let root = Session::new("t".into(), 1, 0, false);
        assert!(root.usable(now + Duration::from_secs(1_000_000)));
        assert!(!Session::default().usable(now));
    }
}
