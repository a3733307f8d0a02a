//! The Node.js face of `mcpvault_token`, the token core crate (napi-rs). Only type conversion lives here;
//! every decision is the core's. `express.js` wraps these functions into the public
//! `mcpvault-express` API and turns native errors into `McpVaultError`.
//!
//! Errors are thrown with `code` set to the core's denial code (`expired`,
//! `tool_not_granted`, ...) or `invalid_argument`, and `message` set to the reason.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use mcpvault_token::{AuthorizedFacts, TokenInfo};

#[path = "../../shared/glue.rs"]
mod glue;

use glue::{AttenuateArgs, Failure, MintArgs, RequestSpec};

type NResult<T> = napi::Result<T, String>;

fn throw(f: Failure) -> Error<String> {
    Error::new(f.code.to_string(), f.reason)
}

fn invalid(reason: impl Into<String>) -> Error<String> {
    throw(Failure::invalid(reason))
}

/// A JS number that must be a whole number in `0..=max` (napi's own integer
/// conversions wrap negative numbers around).
fn whole(what: &str, v: Option<f64>, max: u64) -> NResult<Option<u64>> {
    match v {
        None => Ok(None),
        Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= max as f64 => {
            Ok(Some(n as u64))
        }
        Some(_) => Err(invalid(format!(
            "{what} must be a whole number between 0 and {max}"
        ))),
    }
}

fn depth(v: Option<f64>) -> NResult<Option<u32>> {
    Ok(whole("maxDelegationDepth", v, u64::from(u32::MAX))?.map(|n| n as u32))
}

/// Largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

#[napi(object)]
pub struct KeyPair {
    pub private_key: String,
    pub public_key: String,
}

/// A new Ed25519 root key pair (hex).
#[napi]
pub fn generate_keypair() -> KeyPair {
    let (private_key, public_key) = glue::generate_keypair();
    KeyPair {
        private_key,
        public_key,
    }
}

#[napi(object)]
pub struct MintConfig {
    /// Tool names or families (`kv.*`); omitted or null grants every tool.
    pub tools: Option<Vec<String>>,
    /// Seconds; default 3600.
    pub ttl: Option<f64>,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    /// Attenuation blocks that may follow; default 3.
    pub max_delegation_depth: Option<f64>,
    /// `KIND:PATTERN`, e.g. `kv:app/*`.
    pub resources: Option<Vec<String>>,
}

/// Mints a token signed by the root private key (hex).
#[napi]
pub fn mint(private_key_hex: String, config: Option<MintConfig>) -> napi::Result<String, String> {
    let c = config.unwrap_or(MintConfig {
        tools: None,
        ttl: None,
        issuer: None,
        subject: None,
        max_delegation_depth: None,
        resources: None,
    });
    let args = MintArgs {
        tools: c.tools,
        ttl: whole("ttl", c.ttl, MAX_SAFE_INTEGER)?,
        issuer: c.issuer,
        subject: c.subject,
        max_delegation_depth: depth(c.max_delegation_depth)?,
        resources: c.resources.unwrap_or_default(),
    };
    glue::mint(&private_key_hex, args).map_err(throw)
}

#[napi(object)]
pub struct AttenuateConfig {
    pub tools: Option<Vec<String>>,
    pub ttl: Option<f64>,
    pub resources: Option<Vec<String>>,
    /// Further attenuation blocks allowed after this one.
    pub max_delegation_depth: Option<f64>,
}

/// Appends a narrowing block; with `publicKeyHex` the signature chain is checked first.
#[napi]
pub fn attenuate(
    token: String,
    public_key_hex: Option<String>,
    config: Option<AttenuateConfig>,
) -> napi::Result<String, String> {
    let c = config.unwrap_or(AttenuateConfig {
        tools: None,
        ttl: None,
        resources: None,
        max_delegation_depth: None,
    });
    let args = AttenuateArgs {
        tools: c.tools,
        ttl: whole("ttl", c.ttl, MAX_SAFE_INTEGER)?,
        resources: c.resources.unwrap_or_default(),
        max_delegation_depth: depth(c.max_delegation_depth)?,
    };
    glue::attenuate(&token, public_key_hex.as_deref(), args).map_err(throw)
}

#[napi(object)]
pub struct VerifyOptions {
    pub requested_tool: String,
    /// `KIND:VALUE`, e.g. `kv:app/db`.
    pub resource: Option<String>,
    /// Require the token's subject to be this.
    pub subject: Option<String>,
    /// Revoked ids (hex). Ignored by `Guard.verify` (the guard's list applies).
    pub revocation_list: Option<Vec<String>>,
    /// Unix seconds instead of the clock (tests).
    pub now: Option<f64>,
}

impl VerifyOptions {
    fn spec(&self) -> RequestSpec<'_> {
        RequestSpec {
            tool: &self.requested_tool,
            resource: self.resource.as_deref(),
            subject: self.subject.as_deref(),
            now: self.now,
        }
    }
}

#[napi(object)]
pub struct Facts {
    pub tools: Vec<String>,
    pub tool_wildcard: bool,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub delegation_depth: u32,
    pub max_delegation_depth: u32,
    /// RFC 3339, the earliest expiry any block states.
    pub expires_at: Option<String>,
    pub resources: Vec<String>,
    pub revocation_ids: Vec<String>,
}

impl From<AuthorizedFacts> for Facts {
    fn from(f: AuthorizedFacts) -> Self {
        Facts {
            tools: f.tools,
            tool_wildcard: f.tool_wildcard,
            issuer: f.issuer,
            subject: f.subject,
            delegation_depth: f.delegation_depth,
            max_delegation_depth: f.max_delegation_depth,
            expires_at: f.expires_at,
            resources: f.resources,
            revocation_ids: f.revocation_ids,
        }
    }
}

/// Authorizes one request with the cached verifier for `publicKeyHex`.
#[napi]
pub fn verify(
    token: String,
    public_key_hex: String,
    options: VerifyOptions,
) -> napi::Result<Facts, String> {
    let revoked = options.revocation_list.as_deref().unwrap_or_default();
    glue::verify(&token, &public_key_hex, revoked, &options.spec())
        .map(Facts::from)
        .map_err(throw)
}

#[napi(object)]
pub struct BlockInfo {
    pub facts: Vec<String>,
    pub rules: Vec<String>,
    pub checks: Vec<String>,
}

#[napi(object)]
pub struct InspectInfo {
    pub block_count: u32,
    /// Every block's facts, in order.
    pub facts: Vec<String>,
    /// Every block's checks, in order.
    pub checks: Vec<String>,
    pub blocks: Vec<BlockInfo>,
    pub revocation_ids: Vec<String>,
}

impl From<TokenInfo> for InspectInfo {
    fn from(info: TokenInfo) -> Self {
        let facts = info.blocks.iter().flat_map(|b| b.facts.clone()).collect();
        let checks = info.blocks.iter().flat_map(|b| b.checks.clone()).collect();
        InspectInfo {
            block_count: u32::try_from(info.block_count).unwrap_or(u32::MAX),
            facts,
            checks,
            blocks: info
                .blocks
                .into_iter()
                .map(|b| BlockInfo {
                    facts: b.facts,
                    rules: b.rules,
                    checks: b.checks,
                })
                .collect(),
            revocation_ids: info.revocation_ids,
        }
    }
}

/// Reads a token WITHOUT checking its signature (never use it to decide).
#[napi]
pub fn inspect(token: String) -> napi::Result<InspectInfo, String> {
    glue::inspect(&token).map(InspectInfo::from).map_err(throw)
}

/// A verifier bound to one public key list and revocation list, resolved once: a
/// bad key or id throws here, at start-up. The Express middleware holds one.
#[napi]
pub struct Guard {
    inner: glue::Guard,
}

#[napi]
impl Guard {
    #[napi(constructor)]
    pub fn new(
        public_key_hex: String,
        revocation_list: Option<Vec<String>>,
    ) -> napi::Result<Self, String> {
        let ids = revocation_list.unwrap_or_default();
        let inner = glue::Guard::new(&public_key_hex, &ids).map_err(throw)?;
        Ok(Guard { inner })
    }

    /// Like `verify`; `options.revocationList` is ignored (the guard's applies).
    #[napi]
    pub fn verify(&self, token: String, options: VerifyOptions) -> napi::Result<Facts, String> {
        self.inner
            .authorize(&token, &options.spec())
            .map(Facts::from)
            .map_err(throw)
    }
}
