//! Vault / OpenBao backend through `vaultrs`.
//!
//! Configuration is read from the environment at startup, but the HTTP client is
//! built on first use and nothing talks to Vault before a call needs it: the server
//! answers initialize and tools/list even when Vault is down; calls then fail with
//! `vault: <op>: ...` and work again once Vault is back.
//!
//! Every request goes through one generic raw endpoint (`Raw`, a `rustify`
//! `Endpoint`) executed with vaultrs's HTTP client and middleware (token,
//! namespace, API version). vaultrs's typed helpers drop data we must return
//! (kv2 versions, database lease ids) and lack `sys/leases`; one request path also
//! gives one place for error mapping and for the re-login-and-retry-once rule.

mod api;
mod children;
mod session;

use std::sync::OnceLock;
use std::time::Duration;

use rustify::endpoint::Endpoint;
use rustify::enums::{RequestMethod, RequestType, ResponseType};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

pub use api::{
    CertType, DbCreds, Health, KvMeta, KvRead, KvSecret, KvVersionMeta, Lease, SignOpts, SshOtp,
    SshRoleTtls, SshSigned,
};
use session::{Login, SessionCache};

use super::BackendError;

/// Default per-request timeout (connect + response), `VAULT_TIMEOUT_SECS` overrides.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// What the environment asked for; parsed eagerly (cheap), used lazily.
#[derive(Clone)]
pub struct Settings {
    /// For messages only; vaultrs reads `VAULT_ADDR` itself (see `build`).
    addr: String,
    login: Login,
    namespace: Option<String>,
    ca_cert: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for Settings {
    // Hand-written so a token or secret id can never reach a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("addr", &self.addr)
            .field("login", &self.login.kind())
            .field("namespace", &self.namespace)
            .field("ca_cert", &self.ca_cert)
            .field("timeout", &self.timeout)
            .finish()
    }
}

pub struct Vault {
    settings: Result<Settings, String>,
    client: OnceLock<Result<VaultClient, String>>,
    session: SessionCache,
    /// Child tokens binding credentials to capability tokens (`children.rs`).
    children: children::Children,
    /// SSH role TTLs, read once per role (they bound certificate lifetimes).
    ssh_roles: std::sync::Mutex<std::collections::HashMap<String, SshRoleTtls>>,
    /// At most `MAX_IN_FLIGHT` requests on the wire at once. With a thousand agents on
    /// one mcpvault-http, sending everything at once made a loaded Vault slower for
    /// every request until some passed the timeout; queued here, each is answered in
    /// turn. The wait for a slot has the request timeout too.
    in_flight: tokio::sync::Semaphore,
}

/// Requests one process keeps in flight to Vault.
const MAX_IN_FLIGHT: usize = 64;

/// Why a Vault request failed. `Display` never includes a request or response body.
#[derive(Debug, Clone)]
pub enum VaultError {
    /// Bad configuration: missing credentials, unreadable CA file, bad address.
    Config(String),
    /// No HTTP answer: connection refused, DNS, TLS, timeout.
    Unreachable(String),
    /// Vault answered with an error status. `body` is kept for callers that need
    /// structured details (a soft-deleted KV version) and is never displayed.
    Api {
        code: u16,
        errors: Vec<String>,
        body: Option<String>,
    },
    /// Vault answered 2xx with something we could not parse.
    Decode(String),
    /// Logging in (AppRole) or checking the token failed.
    Login(Box<VaultError>),
}

impl std::fmt::Display for VaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultError::Config(m) => write!(f, "not configured ({m})"),
            VaultError::Unreachable(m) => write!(f, "unreachable ({m})"),
            VaultError::Api { code, errors, .. } => {
                let errs: Vec<String> = errors.iter().map(|e| clean(e)).collect();
                if errs.is_empty() || errs.iter().all(String::is_empty) {
                    write!(f, "HTTP {code}: {}", status_text(*code))
                } else {
                    write!(f, "HTTP {code}: {}", errs.join("; "))
                }
            }
            VaultError::Decode(m) => write!(f, "unexpected response ({m})"),
            VaultError::Login(e) => write!(f, "login failed: {e}"),
        }
    }
}

impl VaultError {
    /// The HTTP status, when Vault answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            VaultError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// As the backend error the tools report: `vault: <op>: <reason>`.
    pub fn at(self, op: &'static str) -> BackendError {
        BackendError::Vault {
            op,
            reason: self.to_string(),
        }
    }
}

/// Vault's error strings are short, but cap them and keep them on one line. Go's
/// multierror text ("1 error occurred:\n\t* permission denied\n\n") becomes just
/// its items ("permission denied").
fn clean(s: &str) -> String {
    let items: Vec<&str> = s
        .lines()
        .filter_map(|l| l.trim().strip_prefix("* "))
        .collect();
    let joined = if s.trim_start().contains("error occurred:")
        || s.trim_start().contains("errors occurred:")
    {
        items.join("; ")
    } else {
        s.to_string()
    };
    let one_line: String = joined
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let t = one_line.trim();
    match t.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &t[..i]),
        None => t.to_string(),
    }
}

fn status_text(code: u16) -> &'static str {
    match code {
        400 => "bad request",
        403 => "permission denied",
        404 => "not found",
        405 => "unsupported operation",
        412 => "precondition failed",
        429 => "rate limited",
        500 => "internal server error",
        502 => "bad gateway",
        503 => "sealed or unavailable",
        _ => "error",
    }
}

/// The innermost message of an error chain: for a refused connection that is
/// "Connection refused (os error 111)" rather than reqwest's URL-carrying wrapper.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    clean(&cur.to_string())
}

/// The Vault envelope around every response (`data`, lease fields, `auth`).
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    #[serde(default = "none")]
    pub data: Option<T>,
    #[serde(default)]
    pub lease_id: String,
    #[serde(default)]
    pub lease_duration: u64,
    #[serde(default)]
    pub renewable: bool,
    #[serde(default)]
    pub auth: Option<AuthInfo>,
    /// Present when the request asked for response wrapping (`Raw::wrap`).
    #[serde(default)]
    pub wrap_info: Option<WrapInfo>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> Default for Envelope<T> {
    fn default() -> Self {
        Envelope {
            data: None,
            lease_id: String::new(),
            lease_duration: 0,
            renewable: false,
            auth: None,
            wrap_info: None,
        }
    }
}

/// The `auth` block of a login or renew-self response.
#[derive(Deserialize)]
pub struct AuthInfo {
    #[serde(default)]
    pub client_token: String,
    #[serde(default)]
    pub accessor: String,
    #[serde(default)]
    pub lease_duration: u64,
    #[serde(default)]
    pub renewable: bool,
}

impl std::fmt::Debug for AuthInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthInfo")
            .field("lease_duration", &self.lease_duration)
            .field("renewable", &self.renewable)
            .finish_non_exhaustive()
    }
}

/// The `wrap_info` block of a wrapped response: a single-use token that unwraps
/// (`sys/wrapping/unwrap`) to the response Vault would have sent.
#[derive(Deserialize)]
pub struct WrapInfo {
    pub token: String,
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub creation_path: String,
}

impl std::fmt::Debug for WrapInfo {
    // The wrapping token is a credential: never through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrapInfo")
            .field("ttl", &self.ttl)
            .field("creation_path", &self.creation_path)
            .finish_non_exhaustive()
    }
}

/// One raw Vault request. The path is split on '/' and each segment is
/// percent-encoded by rustify, so a validated name cannot change the route.
#[derive(Clone)]
pub(crate) struct Raw {
    method: RequestMethod,
    path: String,
    query: Option<String>,
    body: Option<Vec<u8>>,
    /// Response wrapping TTL (seconds) for the `X-Vault-Wrap-TTL` header.
    wrap: Option<u64>,
}

impl Raw {
    pub(crate) fn new(method: RequestMethod, path: impl Into<String>) -> Self {
        Raw {
            method,
            path: path.into(),
            query: None,
            body: None,
            wrap: None,
        }
    }

    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self::new(RequestMethod::GET, path)
    }

    pub(crate) fn post(path: impl Into<String>, body: Value) -> Self {
        Self::new(RequestMethod::POST, path).json(body)
    }

    pub(crate) fn put(path: impl Into<String>, body: Value) -> Self {
        Self::new(RequestMethod::PUT, path).json(body)
    }

    pub(crate) fn query(mut self, q: String) -> Self {
        self.query = Some(q);
        self
    }

    /// Ask Vault to wrap the response in a single-use token living `ttl_secs`.
    pub(crate) fn wrap(mut self, ttl_secs: u64) -> Self {
        self.wrap = Some(ttl_secs);
        self
    }

    fn json(mut self, body: Value) -> Self {
        // Serializing a `Value` cannot fail; an empty body is what Vault expects
        // for "no parameters" anyway.
        self.body = serde_json::to_vec(&body).ok();
        self
    }
}

impl Endpoint for Raw {
    // Parsed by `Vault::send` (it must also read error bodies and empty 204s).
    type Response = Value;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        self.path.clone()
    }

    fn method(&self) -> RequestMethod {
        self.method.clone()
    }

    fn query(&self) -> Result<Option<String>, rustify::errors::ClientError> {
        Ok(self.query.clone())
    }

    fn body(&self) -> Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        Ok(self.body.clone())
    }
}

/// A value that goes into an HTTP header: vaultrs's middleware panics on anything
/// `HeaderValue` refuses, so refuse it here first.
fn header_safe(name: &str, v: &str) -> Result<(), String> {
    if v.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        Ok(())
    } else {
        Err(format!(
            "{name} contains characters not allowed in an HTTP header"
        ))
    }
}

impl Settings {
    /// From the environment as `config` reads it (`env_var` gives trimmed, non-empty
    /// values). An `Err` is kept, not fatal: a server may serve KMS alone, so a Vault
    /// that is not configured fails each Vault call with this reason.
    pub fn from_vars(env_var: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let addr = env_var("VAULT_ADDR").unwrap_or_else(|| "http://127.0.0.1:8200".into());
        if !(addr.starts_with("http://") || addr.starts_with("https://")) {
            return Err(format!(
                "VAULT_ADDR {addr:?} must start with http:// or https://"
            ));
        }
        let login = match (
            env_var("VAULT_TOKEN"),
            env_var("VAULT_ROLE_ID"),
            env_var("VAULT_SECRET_ID"),
        ) {
            (Some(t), _, _) => {
                header_safe("VAULT_TOKEN", &t)?;
                Login::Token(t)
            }
            (None, Some(role_id), Some(secret_id)) => Login::AppRole {
                mount: env_var("VAULT_APPROLE_MOUNT")
                    .unwrap_or_else(|| "approle".into())
                    .trim_matches('/')
                    .to_string(),
                role_id,
                secret_id,
            },
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err("AppRole needs both VAULT_ROLE_ID and VAULT_SECRET_ID".into())
            }
            // Workload identity: a JWT file that Kubernetes or CI rotates, re-read at
            // every login.
            (None, None, None)
                if env_var("VAULT_JWT_FILE").is_some() || env_var("VAULT_JWT_ROLE").is_some() =>
            {
                match (env_var("VAULT_JWT_FILE"), env_var("VAULT_JWT_ROLE")) {
                    (Some(file), Some(role)) => Login::Jwt {
                        mount: env_var("VAULT_JWT_MOUNT")
                            .unwrap_or_else(|| "jwt".into())
                            .trim_matches('/')
                            .to_string(),
                        role,
                        file: file.into(),
                    },
                    _ => {
                        return Err("JWT login needs both VAULT_JWT_FILE and VAULT_JWT_ROLE".into())
                    }
                }
            }
            (None, None, None) => {
                return Err("set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID".into())
            }
        };
        let namespace = env_var("VAULT_NAMESPACE");
        if let Some(ns) = &namespace {
            header_safe("VAULT_NAMESPACE", ns)?;
        }
        let timeout = match env_var("VAULT_TIMEOUT_SECS") {
            None => DEFAULT_TIMEOUT_SECS,
            Some(s) => match s.parse::<u64>() {
                Ok(n) if (1..=3600).contains(&n) => n,
                _ => return Err(format!("VAULT_TIMEOUT_SECS {s:?} must be 1..=3600")),
            },
        };
        Ok(Settings {
            addr,
            login,
            namespace,
            ca_cert: env_var("VAULT_CACERT"),
            timeout: Duration::from_secs(timeout),
        })
    }

    fn build(&self) -> Result<VaultClient, String> {
        let mut b = VaultClientSettingsBuilder::default();
        // The address is left to vaultrs's default, which reads VAULT_ADDR and
        // returns an error on a bad URL (its `address()` setter panics instead).
        // ca_certs is set explicitly: its default also walks VAULT_CAPATH with
        // unwraps. The token is set per request by `send`.
        b.token("")
            .ca_certs(self.ca_cert.iter().cloned().collect())
            .timeout(Some(self.timeout));
        if let Some(ns) = &self.namespace {
            b.set_namespace(ns.clone());
        }
        let settings = b.build().map_err(|e| e.to_string())?;
        VaultClient::new(settings).map_err(|e| {
            let cause = root_cause(&e);
            let top = e.to_string();
            if cause == top {
                top
            } else {
                format!("{top}: {cause}")
            }
        })
    }
}

impl Vault {
    /// As the server would build it, from the environment (through `config`).
    pub fn from_env() -> Self {
        Self::new(Settings::from_vars(&crate::config::var))
    }

    pub fn new(settings: Result<Settings, String>) -> Self {
        match &settings {
            Ok(s) => tracing::debug!(settings = ?s, "vault configured"),
            Err(e) => tracing::warn!("vault is not usable: {e}; vault tools will fail"),
        }
        Vault {
            settings,
            client: OnceLock::new(),
            session: SessionCache::default(),
            ssh_roles: Default::default(),
            children: Default::default(),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
        }
    }

    fn parts(&self) -> Result<(&Settings, &VaultClient), VaultError> {
        let s = self
            .settings
            .as_ref()
            .map_err(|e| VaultError::Config(e.clone()))?;
        let c = self
            .client
            .get_or_init(|| s.build())
            .as_ref()
            .map_err(|e| VaultError::Config(e.clone()))?;
        Ok((s, c))
    }

    /// Sends one request with `token` (empty: none); returns the response body.
    async fn send_bytes(&self, token: &str, req: &Raw) -> Result<Vec<u8>, VaultError> {
        let (s, client) = self.parts()?;
        let _slot = tokio::time::timeout(s.timeout, self.in_flight.acquire())
            .await
            .map_err(|_| {
                VaultError::Unreachable(format!(
                    "busy: {MAX_IN_FLIGHT} requests in flight for {}s",
                    s.timeout.as_secs()
                ))
            })?
            // Never closed.
            .map_err(|_| VaultError::Unreachable("shutting down".into()))?;
        let middle = EndpointMiddleware {
            token: token.to_string(),
            version: client.middle.version.clone(),
            // A number, so always a valid header value (the middleware panics on
            // invalid ones).
            wrap: req.wrap.map(|s| format!("{s}s")),
            namespace: client.middle.namespace.clone(),
        };
        let resp = req
            .clone()
            .with_middleware(&middle)
            .exec(&client.http)
            .await
            .map_err(|e| classify(e, s))?;
        Ok(resp.response.into_body())
    }

    /// Like `send_bytes`, parsing the envelope. An empty body (204) is an empty
    /// envelope.
    async fn send<T: DeserializeOwned>(
        &self,
        token: &str,
        req: &Raw,
    ) -> Result<Envelope<T>, VaultError> {
        let body = self.send_bytes(token, req).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Envelope::default());
        }
        parse(&body)
    }

    /// Sends `req` with a valid token. With AppRole, a 403 caused by an expired or
    /// revoked token (as `lookup-self` confirms) triggers one re-login and one
    /// retry; a 403 from policy is returned as is. A 403 means Vault did nothing,
    /// so retrying a write is safe.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        req: Raw,
    ) -> Result<Envelope<T>, VaultError> {
        let (s, _) = self.parts()?;
        let (token, generation) = self.session.token(self, &s.login).await?;
        match self.send(&token, &req).await {
            Err(e) if e.status() == Some(403) && s.login.can_relogin() => {
                let lookup = self
                    .send::<Value>(&token, &Raw::get("auth/token/lookup-self"))
                    .await;
                if lookup.as_ref().err().and_then(VaultError::status) != Some(403) {
                    return Err(e);
                }
                tracing::info!("vault token no longer valid; logging in again");
                self.session.invalidate(generation);
                let (token, _) = self.session.token(self, &s.login).await?;
                self.send(&token, &req).await
            }
            other => other,
        }
    }
}

impl Vault {
    /// Reachable and logged in: the server's own token looks itself up (every
    /// Vault token may). For readiness probes.
    pub async fn ready(&self) -> Result<(), VaultError> {
        self.call::<Value>(Raw::get("auth/token/lookup-self"))
            .await
            .map(|_| ())
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, VaultError> {
    serde_json::from_slice(body).map_err(|e| {
        // serde messages can quote the offending value, which may be a secret:
        // report only where it failed.
        VaultError::Decode(format!("line {} column {}", e.line(), e.column()))
    })
}

fn classify(e: rustify::errors::ClientError, s: &Settings) -> VaultError {
    use rustify::errors::ClientError as R;
    match e {
        R::ServerResponseError { code, content } => {
            let errors = content
                .as_deref()
                .and_then(|c| serde_json::from_str::<Value>(c).ok())
                .and_then(|v| {
                    v.get("errors")?.as_array().map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect::<Vec<_>>()
                    })
                })
                .unwrap_or_default();
            VaultError::Api {
                code,
                errors,
                body: content,
            }
        }
        R::RequestError { .. } | R::ResponseError { .. } => {
            let cause = root_cause(&e);
            let cause = if cause.to_ascii_lowercase().contains("timed out") {
                format!("timed out after {}s", s.timeout.as_secs())
            } else {
                cause
            };
            VaultError::Unreachable(format!("{}: {cause}", s.addr))
        }
        other => VaultError::Unreachable(format!("{}: {}", s.addr, root_cause(&other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_display_has_no_body() {
        let e = VaultError::Api {
            code: 404,
            errors: vec![],
            body: Some(r#"{"data":{"data":{"password":"hunter2"}}}"#.into()),
        };
        assert_eq!(e.to_string(), "HTTP 404: not found");
        let e = VaultError::Api {
            code: 400,
            errors: vec!["check-and-set parameter did not match\nthe current version".into()],
            body: None,
        };
        assert_eq!(
            e.at("kv.write").to_string(),
            "vault: kv.write: HTTP 400: check-and-set parameter did not match the current version"
        );
    }

    #[test]
    fn clean_caps_length() {
        let long = "x".repeat(1000);
        assert_eq!(clean(&long).len(), 303);
        assert_eq!(clean("caf\u{e9}"), "caf\u{e9}");
        assert_eq!(
            clean("1 error occurred:\n\t* permission denied\n\n"),
            "permission denied"
        );
        assert_eq!(clean("2 errors occurred:\n\t* a\n\t* b\n\n"), "a; b");
    }

    #[test]
    fn header_values_checked() {
        assert!(header_safe("T", "hvs.abc").is_ok());
        assert!(header_safe("T", "a\nb").is_err());
        assert!(header_safe("T", "a b").is_err());
    }
}
