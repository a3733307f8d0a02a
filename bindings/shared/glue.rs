//! What the Python and Node bindings share: the cached verifiers and revocation sets,
//! and the one error shape both languages raise. Included by each binding crate with
//! `#[path]`, so each addon carries its own copy and no third crate is needed.
//!
//! Nothing here decides anything: parsing, policy, limits and the denial reasons and
//! codes all come from `mcpvault_token`. This file only keeps objects alive between
//! calls so repeated verifies hit the `Verifier`'s own token and decision caches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use mcpvault_token::{
    self as token, Denial, Request, RequestResource, ResourceKind, RevocationSet, TokenError,
    Verifier, VerifierConfig,
};

/// An error as both bindings raise it: `reason` is the text users see (for a denial,
/// exactly what the server prints after `denied: `), `code` a stable identifier:
/// the core's denial code, or `invalid_argument` for anything that is not a
/// decision about a token (the middlewares answer 403 only to denials).
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: &'static str,
    pub reason: String,
}

/// The code of errors that are not a decision about a token: a bad argument, key,
/// tool name or resource pattern.
pub const INVALID_ARGUMENT: &str = "invalid_argument";

impl Failure {
    pub fn invalid(reason: impl Into<String>) -> Self {
        Failure {
            code: INVALID_ARGUMENT,
            reason: reason.into(),
        }
    }
}

impl From<Denial> for Failure {
    fn from(d: Denial) -> Self {
        Failure {
            code: d.code(),
            reason: d.to_string(),
        }
    }
}

impl From<TokenError> for Failure {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Denied(d) => d.into(),
            other => Failure::invalid(other.to_string()),
        }
    }
}

/// Verifiers kept per public key list. Each holds its own bounded caches, so the
/// number of lists is bounded too; a process normally uses one or two.
const MAX_VERIFIERS: usize = 8;
/// Revocation sets kept per exact list of ids.
const MAX_REVOCATION_SETS: usize = 8;

/// A tiny cache that forgets everything when full: enough for a handful of keys
/// that never change, and it cannot grow without bound.
struct SmallCache<K, V> {
    map: HashMap<K, V>,
    cap: usize,
}

impl<K: std::hash::Hash + Eq, V: Clone> SmallCache<K, V> {
    fn new(cap: usize) -> Self {
        SmallCache {
            map: HashMap::new(),
            cap,
        }
    }

    fn get_or_try_insert<Q, E>(
        &mut self,
        key: &Q,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(v) = self.map.get(key) {
            return Ok(v.clone());
        }
        let v = make()?;
        if self.map.len() >= self.cap {
            self.map.clear();
        }
        self.map.insert(key.to_owned(), v.clone());
        Ok(v)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned cache only means a panic elsewhere mid-insert: the map is still valid.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

static VERIFIERS: Mutex<Option<SmallCache<String, Arc<Verifier>>>> = Mutex::new(None);
static REVOCATIONS: Mutex<Option<SmallCache<Vec<String>, Arc<RevocationSet>>>> = Mutex::new(None);

/// The verifier for a root public key list (hex, comma-separated for rotation),
/// created on first use and kept. Keyed by the exact text, so a hit costs no key
/// parsing.
pub fn verifier_for(public_keys_hex: &str) -> Result<Arc<Verifier>, Failure> {
    let key = public_keys_hex.trim();
    let mut guard = lock(&VERIFIERS);
    let cache = guard.get_or_insert_with(|| SmallCache::new(MAX_VERIFIERS));
    cache.get_or_try_insert(key, || new_verifier(key))
}

fn new_verifier(public_keys_hex: &str) -> Result<Arc<Verifier>, Failure> {
    let roots = token::parse_public_keys(public_keys_hex)?;
    Ok(Arc::new(Verifier::new(roots, VerifierConfig::default())?))
}

/// The revocation set for a list of hex ids, kept per exact list: the verifier's
/// decision cache is keyed on the set's generation, so re-creating an identical set
/// on every call would defeat it.
pub fn revocation_set(ids: &[String]) -> Result<Arc<RevocationSet>, Failure> {
    if ids.is_empty() {
        return Ok(empty_revocation_set());
    }
    let mut guard = lock(&REVOCATIONS);
    let cache = guard.get_or_insert_with(|| SmallCache::new(MAX_REVOCATION_SETS));
    cache.get_or_try_insert(ids, || new_revocation_set(ids))
}

fn empty_revocation_set() -> Arc<RevocationSet> {
    static EMPTY: std::sync::OnceLock<Arc<RevocationSet>> = std::sync::OnceLock::new();
    EMPTY
        .get_or_init(|| Arc::new(RevocationSet::empty()))
        .clone()
}

/// One id per entry. The list format (hex, blank lines and `#` comments ignored,
/// anything else fails the whole list) is the core's `RevocationSet::parse`; an entry
/// holding a line break would smuggle in a second line, so it is refused first.
fn new_revocation_set(ids: &[String]) -> Result<Arc<RevocationSet>, Failure> {
    if let Some(i) = ids.iter().position(|id| id.contains(['\n', '\r'])) {
        return Err(Failure::invalid(format!(
            "revocation list entry {} holds a line break",
            i + 1
        )));
    }
    let set = RevocationSet::parse(&ids.join("\n"))
        .map_err(|e| Failure::invalid(format!("revocation list: {e}")))?;
    Ok(Arc::new(set))
}

/// A verifier and a revocation set resolved once: the middleware builds one at
/// start-up, so a bad key or list fails there rather than on the first request.
#[derive(Clone)]
pub struct Guard {
    verifier: Arc<Verifier>,
    revoked: Arc<RevocationSet>,
}

impl Guard {
    pub fn new(public_keys_hex: &str, revocation_list: &[String]) -> Result<Self, Failure> {
        Ok(Guard {
            verifier: verifier_for(public_keys_hex)?,
            revoked: revocation_set(revocation_list)?,
        })
    }

    pub fn authorize(
        &self,
        token: &str,
        req: &RequestSpec<'_>,
    ) -> Result<token::AuthorizedFacts, Failure> {
        let request = req.to_request()?;
        Ok(self.verifier.authorize(token, &request, &self.revoked)?)
    }
}

/// A request as the bindings receive it, before conversion to the core's `Request`.
#[derive(Debug, Default, Clone)]
pub struct RequestSpec<'a> {
    pub tool: &'a str,
    /// `KIND:VALUE`, e.g. `kv:app/db`.
    pub resource: Option<&'a str>,
    pub subject: Option<&'a str>,
    /// Unix seconds; `None` is the current time. For tests and replays.
    pub now: Option<f64>,
}

impl RequestSpec<'_> {
    fn to_request(&self) -> Result<Request<'_>, Failure> {
        let resource = self.resource.map(request_resource).transpose()?;
        let now = match self.now {
            None => SystemTime::now(),
            Some(secs) => unix_time(secs)?,
        };
        Ok(Request {
            tool: self.tool,
            resource,
            subject: self.subject,
            now,
        })
    }
}

fn request_resource(s: &str) -> Result<RequestResource<'_>, Failure> {
    let bad = || {
        Failure::invalid(format!(
            "invalid resource {s:?}: expected KIND:VALUE with KIND one of kv, transit, db, ssh, kms, ssh_principal"
        ))
    };
    let (kind, value) = s.split_once(':').ok_or_else(bad)?;
    let kind: ResourceKind = kind.parse().map_err(|_| bad())?;
    Ok(RequestResource { kind, value })
}

/// Latest accepted `now`: year 9999, far past any token's expiry.
const MAX_UNIX_SECS: f64 = 253_402_300_799.0;

fn unix_time(secs: f64) -> Result<SystemTime, Failure> {
    if !secs.is_finite() || !(0.0..=MAX_UNIX_SECS).contains(&secs) {
        return Err(Failure::invalid(
            "now must be unix seconds between 0 and 253402300799",
        ));
    }
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs))
}

/// Verifies with the cached verifier for `public_keys_hex` and the cached set for
/// `revocation_list`: the one-shot `verify(token, pub, options)` of both bindings.
pub fn verify(
    token: &str,
    public_keys_hex: &str,
    revocation_list: &[String],
    req: &RequestSpec<'_>,
) -> Result<token::AuthorizedFacts, Failure> {
    Guard::new(public_keys_hex, revocation_list)?.authorize(token, req)
}

/// Builds a mint spec from already-converted values. `tools: None` grants every tool.
pub struct MintArgs {
    pub tools: Option<Vec<String>>,
    pub ttl: Option<u64>,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub max_delegation_depth: Option<u32>,
    pub resources: Vec<String>,
}

pub fn mint(private_key_hex: &str, args: MintArgs) -> Result<String, Failure> {
    let key = key_file(private_key_hex)?;
    let defaults = token::MintSpec::default();
    let spec = token::MintSpec {
        tools: args.tools.as_deref().map(tool_grants).transpose()?,
        ttl: args.ttl.map(Duration::from_secs).unwrap_or(defaults.ttl),
        issuer: args.issuer,
        subject: args.subject,
        max_delegation_depth: args
            .max_delegation_depth
            .unwrap_or(defaults.max_delegation_depth),
        resources: resource_patterns(&args.resources)?,
        // The bindings guard HTTP routes, which return no secret fields: nothing to
        // reveal (tokens minted by the CLI with --reveal still verify here).
        reveal: Vec::new(),
        // Confirmation is an MCP-session matter (elicitation): nothing to ask on an
        // HTTP route.
        confirm: Vec::new(),
    };
    Ok(token::mint(&key, &spec)?)
}

/// The key pair behind a private key hex. The public half is derived, so a key file
/// is never needed in memory as text.
fn key_file(private_key_hex: &str) -> Result<token::KeyFile, Failure> {
    let partial = token::KeyFile {
        private_key: private_key_hex.trim().to_string(),
        public_key: String::new(),
    };
    let public = partial.keypair()?.public().to_bytes();
    Ok(token::KeyFile {
        public_key: public.iter().map(|b| format!("{b:02x}")).collect(),
        ..partial
    })
}

pub struct AttenuateArgs {
    pub tools: Option<Vec<String>>,
    pub ttl: Option<u64>,
    pub resources: Vec<String>,
    pub max_delegation_depth: Option<u32>,
}

/// Appends a narrowing block; with a public key the signature chain is checked first.
pub fn attenuate(
    token_b64: &str,
    public_keys_hex: Option<&str>,
    args: AttenuateArgs,
) -> Result<String, Failure> {
    let roots = public_keys_hex.map(token::parse_public_keys).transpose()?;
    let spec = token::AttenuateSpec {
        tools: args.tools.as_deref().map(tool_grants).transpose()?,
        ttl: args.ttl.map(Duration::from_secs),
        resources: resource_patterns(&args.resources)?,
        max_delegation_depth: args.max_delegation_depth,
        reveal: None,
        confirm: Vec::new(),
    };
    Ok(token::attenuate(token_b64, roots.as_deref(), &spec)?)
}

/// One grant per entry (`db_query`, `kv.*`, `*`), parsed by the core. Entries are
/// parsed one by one, so a comma inside an entry is an error, not a second tool.
fn tool_grants(tools: &[String]) -> Result<Vec<token::ToolGrant>, Failure> {
    if tools.is_empty() {
        return Err(Failure::invalid(
            "empty tool list: omit tools (or pass None/null) to grant every tool",
        ));
    }
    Ok(tools
        .iter()
        .map(|t| t.parse())
        .collect::<Result<Vec<token::ToolGrant>, TokenError>>()?)
}

fn resource_patterns(list: &[String]) -> Result<Vec<token::ResourcePattern>, Failure> {
    Ok(list
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<token::ResourcePattern>, TokenError>>()?)
}

pub fn generate_keypair() -> (String, String) {
    let k = token::generate_keypair();
    (k.private_key.clone(), k.public_key.clone())
}

pub fn inspect(token_b64: &str) -> Result<token::TokenInfo, Failure> {
    Ok(token::inspect(token_b64)?)
}
