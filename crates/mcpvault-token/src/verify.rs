//! Request authorization with bounded caches.
//!
//! Order of work, cheapest rejection first: size cap, base64, static cost bound and
//! authority facts (`bounds`), parse, block cap, signature chain (all cached per
//! token), revocation, delegation depth, subject, then Datalog with the request facts
//! (cached per token, request and second). Datalog runs only on tokens whose
//! worst-case cost is bounded, and under explicit run limits as a backstop.

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use biscuit_auth::builder::{date, fact, int, string, AuthorizerBuilder};
use biscuit_auth::error::{FailedCheck, Logic, Token as BiscuitError};
use biscuit_auth::format::VerifiedPrefixes;
use biscuit_auth::{Authorizer, AuthorizerLimits, Biscuit, PublicKey, UnverifiedBiscuit};
use lru::LruCache;
use serde::Serialize;

use crate::bounds::{self, AuthorityFacts, ShapeError};
use crate::encoding::{decode_token, MAX_TOKEN_BYTES};
use crate::error::Denial;
use crate::http::HttpTarget;
use crate::scope::{ResourceKind, ResourcePattern};

/// Cap on attenuation blocks when the token does not set its own.
pub const DEFAULT_MAX_DELEGATION_DEPTH: u32 = 5;

/// Server-side policy. Only authority-block facts and the request facts below are
/// visible to it, so nothing a later block adds can satisfy an `allow`. Public for
/// the benchmark that measures the path without the per-token template.
pub const POLICY: &str = r#"
allow if tool($t), requested_tool($t);
allow if tool_wildcard("*");
allow if tool_prefix($p), requested_tool($t), $t.starts_with($p);
deny if true;
"#;

/// One request to authorize.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub tool: &'a str,
    pub resource: Option<RequestResource<'a>>,
    /// The identity the caller serves; `None` skips the subject comparison (CLI
    /// `verify` without `--subject`). The server always sets it.
    pub subject: Option<&'a str>,
    pub now: SystemTime,
}

#[derive(Debug, Clone, Copy)]
pub struct RequestResource<'a> {
    pub kind: ResourceKind,
    pub value: &'a str,
}

impl RequestResource<'static> {
    /// The value that stands for "the whole kind": a request that names no resource
    /// of a kind it touches (`kms.decrypt` without a key). No `requested_resource`
    /// fact is supplied for it, so it passes only tokens that do not restrict the
    /// kind. No real value holds a NUL (the server's validation refuses control
    /// characters), and a caller who passes it gets the stricter rule, never more.
    pub const ANY: &'static str = "\u{0}any";

    pub fn whole_kind(kind: ResourceKind) -> Self {
        RequestResource {
            kind,
            value: Self::ANY,
        }
    }
}

/// Revoked block ids. Each set gets a unique generation so cached decisions made
/// under an older list are never reused.
#[derive(Debug)]
pub struct RevocationSet {
    ids: HashSet<Vec<u8>>,
    generation: u64,
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

impl RevocationSet {
    pub fn new(ids: impl IntoIterator<Item = Vec<u8>>) -> Self {
        RevocationSet {
            ids: ids.into_iter().collect(),
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn empty() -> Self {
        Self::new(std::iter::empty())
    }

    /// Parses a revocation list: one hex id a line; blank lines and `#` comments are
    /// ignored. Any other malformed line fails the whole list (callers fail closed).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ids = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = hex::decode(line).map_err(|_| format!("line {}: not a hex id", n + 1))?;
            ids.push(id);
        }
        Ok(Self::new(ids))
    }

    pub fn contains(&self, id: &[u8]) -> bool {
        self.ids.contains(id)
    }

    /// Every id of `self` and `other`, as a new set (with its own generation).
    pub fn union(&self, other: &RevocationSet) -> RevocationSet {
        Self::new(self.ids.iter().chain(&other.ids).cloned())
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// What an authorized token says, for callers and the CLI's `verify` output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuthorizedFacts {
    pub tools: Vec<String>,
    pub tool_wildcard: bool,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub delegation_depth: u32,
    pub max_delegation_depth: u32,
    /// The earliest expiry any block states (RFC 3339), if any.
    pub expires_at: Option<String>,
    /// The same, in seconds since the epoch: what credentials issued through the
    /// token are capped to (not printed: `expires_at` says it).
    #[serde(skip)]
    pub expires_at_unix: Option<u64>,
    pub resources: Vec<String>,
    /// What the authority block lets the token see in clear (`KIND:PATTERN`); later
    /// blocks may narrow it (asked per value with [`Verifier::may_reveal`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reveal: Vec<String>,
    /// Tools (`kv.delete`, a family `kv.*`, or `*`) whose calls wait for the user's
    /// confirmation: the union over every block (a block can add a requirement,
    /// never remove one). Not printed when empty, so MCPVault-shaped output stays
    /// the same.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub confirm: Vec<String>,
    pub revocation_ids: Vec<String>,
}

impl AuthorizedFacts {
    /// Whether a call of `tool` needs the user's confirmation first.
    pub fn requires_confirmation(&self, tool: &str) -> bool {
        self.confirm.iter().any(|c| {
            // Any text parses or matches nothing: an unparseable requirement
            // (written by hand, not by `mint`) falls back to an exact comparison.
            c.parse::<crate::scope::ToolGrant>()
                .map(|g| g.matches(tool))
                .unwrap_or(c == tool)
        })
    }
}

#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub default_max_depth: u32,
    pub limits: AuthorizerLimits,
    /// Signature-verified tokens kept (LRU).
    pub token_cache: usize,
    /// Decisions kept (LRU); each is valid only within the second it was made.
    pub decision_cache: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            default_max_depth: DEFAULT_MAX_DELEGATION_DEPTH,
            // Bounded evaluation: enough for any token we mint (a few dozen facts), far
            // below what a crafted token would need to hurt. The static cost bound in
            // `bounds` is the real guard; this time bound is a backstop, generous so a
            // valid token is not refused on a loaded machine (the 1 ms default does that).
            limits: AuthorizerLimits {
                max_facts: 1000,
                max_iterations: 100,
                max_time: Duration::from_millis(20),
            },
            token_cache: 1024,
            decision_cache: 4096,
        }
    }
}

/// Hard cap on attenuation blocks, whatever a token says: checked before signatures.
pub const HARD_MAX_DELEGATION_DEPTH: u32 = 32;

/// A token's first-sight outcome, as cached.
type FirstSight = Result<Arc<Verified>, Denial>;

struct FirstSightError {
    denial: Denial,
    /// Same token, same verifier, same outcome: safe to cache.
    deterministic: bool,
}

impl From<Denial> for FirstSightError {
    fn from(denial: Denial) -> Self {
        FirstSightError {
            denial,
            deterministic: true,
        }
    }
}

/// A token whose signature chain has been checked, with its static facts extracted.
struct Verified {
    /// Unique per first sight: the decision cache's handle on this token.
    id: u64,
    /// The policy with this token loaded, built once and never run: each request
    /// clones it and adds its own facts (`Authorizer::add_fact`, vendor/README.md).
    /// Building (decoding and translating every block) was most of a known token's
    /// cost per new request.
    template: Authorizer,
    revocation_ids: Vec<Vec<u8>>,
    facts: AuthorizedFacts,
    /// Authority-block problems found at first sight (e.g. two subjects): deny always.
    defect: Option<Denial>,
    /// The authority block's reveal grants (unparseable ones grant nothing).
    reveal: Vec<ResourcePattern>,
    /// What attenuation blocks declare they narrowed to, for denials that explain.
    narrowed: Vec<bounds::Narrowing>,
}

static NEXT_TOKEN_ID: AtomicU64 = AtomicU64::new(1);

type DecisionKey = (
    u64,
    String,
    Option<(ResourceKind, String)>,
    Option<String>,
    u64,
    u64,
    // The reveal question's target (`None`: the call itself).
    Option<(ResourceKind, String)>,
);

pub struct Verifier {
    roots: Vec<PublicKey>,
    config: VerifierConfig,
    policy: AuthorizerBuilder,
    /// First-sight outcomes by token text (hashed, then compared in full, so a hit
    /// is the very same token). Deterministic rejections (bad signature, malformed,
    /// over the cost bound) are kept too, so replaying a rejected token costs a
    /// lookup, not a signature check; run-limit rejections are not kept (they can
    /// depend on load).
    tokens: Mutex<LruCache<Box<str>, FirstSight>>,
    /// Signature-chain prefixes already verified: a token attenuated from one seen
    /// before has only its new blocks' signatures checked (vendor/README.md).
    prefixes: Prefixes,
    decisions: Mutex<LruCache<DecisionKey, Result<(), Denial>>>,
}

/// Digests of verified signature-chain prefixes (LRU). Only digests of chains that
/// verified in full are ever inserted, so a hit is a chain checked before.
struct Prefixes(Mutex<LruCache<[u8; 32], ()>>);

impl VerifiedPrefixes for Prefixes {
    fn contains(&self, digest: &[u8; 32]) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
            .is_some()
    }

    fn insert(&self, digests: &[[u8; 32]]) {
        let mut cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for d in digests {
            cache.put(*d, ());
        }
    }
}

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n.max(1)).unwrap_or(NonZeroUsize::MIN)
}

impl Verifier {
    pub fn new(roots: Vec<PublicKey>, config: VerifierConfig) -> Result<Self, crate::TokenError> {
        if roots.is_empty() {
            return Err(crate::TokenError::Key("no root public key".into()));
        }
        let policy = AuthorizerBuilder::new()
            .code(POLICY)?
            .set_limits(config.limits.clone());
        Ok(Verifier {
            roots,
            tokens: Mutex::new(LruCache::new(nz(config.token_cache))),
            // A few prefixes per token (each is 32 bytes): a chain's ancestors too.
            prefixes: Prefixes(Mutex::new(LruCache::new(nz(config
                .token_cache
                .saturating_mul(4))))),
            decisions: Mutex::new(LruCache::new(nz(config.decision_cache))),
            config,
            policy,
        })
    }

    /// Authorizes `req` with `token`. Returns the token's facts or the precise reason
    /// for denial. Never touches the network or the disk.
    pub fn authorize(
        &self,
        token: &str,
        req: &Request<'_>,
        revoked: &RevocationSet,
    ) -> Result<AuthorizedFacts, Denial> {
        self.decide(token, req, revoked, None)
    }

    /// What a token says about itself once its signature chain is checked, without
    /// a request (no tool, resource, time or revocation decision: callers authorize
    /// each call as usual). For routing a call to the subject the token names.
    pub fn facts(&self, token: &str) -> Result<AuthorizedFacts, Denial> {
        Ok(self.checked(token)?.facts.clone())
    }

    /// The token, signature-checked (cached), without authority-block defects.
    fn checked(&self, token: &str) -> Result<Arc<Verified>, Denial> {
        let text = token.trim();
        if text.is_empty() {
            return Err(Denial::NoToken);
        }
        if text.len() > MAX_TOKEN_BYTES {
            // Before hashing or caching anything.
            return Err(decode_token(text).err().unwrap_or(Denial::NoToken));
        }
        let verified = self.verified(text)?;
        match &verified.defect {
            Some(d) => Err(d.clone()),
            None => Ok(verified),
        }
    }

    /// Whether `token`, authorized for `req`, may also see in clear a secret value
    /// read from `target`: the authority block must grant reveal on it, and every
    /// later block's reveal narrowing must admit it (together with all the checks the
    /// call itself passes). Fails closed: any denial is `false`.
    pub fn may_reveal(
        &self,
        token: &str,
        req: &Request<'_>,
        revoked: &RevocationSet,
        target: RequestResource<'_>,
    ) -> bool {
        let granted = match self.verified(token.trim()) {
            Ok(v) => v
                .reveal
                .iter()
                .any(|p| p.matches(target.kind, target.value)),
            Err(_) => false,
        };
        granted && self.decide(token, req, revoked, Some(target)).is_ok()
    }

    fn decide(
        &self,
        token: &str,
        req: &Request<'_>,
        revoked: &RevocationSet,
        reveal: Option<RequestResource<'_>>,
    ) -> Result<AuthorizedFacts, Denial> {
        let verified = self.checked(token)?;
        if verified
            .revocation_ids
            .iter()
            .any(|id| revoked.contains(id))
        {
            return Err(Denial::Revoked);
        }
        let facts = &verified.facts;
        if facts.delegation_depth > facts.max_delegation_depth {
            return Err(Denial::DelegationTooDeep(format!(
                "depth {} exceeds the cap of {}",
                facts.delegation_depth, facts.max_delegation_depth
            )));
        }
        if let Some(want) = req.subject {
            match &facts.subject {
                None => return Err(Denial::WrongSubject("token names no subject".into())),
                Some(s) if s != want => {
                    return Err(Denial::WrongSubject(format!(
                        "token is for {s:?}, this server serves {want:?}"
                    )))
                }
                Some(_) => {}
            }
        }
        let now_secs = req
            .now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // Biscuit dates have one-second resolution, so for the same token, request,
        // revocation set and second the Datalog outcome cannot differ: reuse it.
        let key: DecisionKey = (
            verified.id,
            req.tool.to_string(),
            req.resource.map(|r| (r.kind, r.value.to_string())),
            req.subject.map(str::to_string),
            now_secs,
            revoked.generation(),
            reveal.map(|r| (r.kind, r.value.to_string())),
        );
        let cached = self.lock_decisions().get(&key).cloned();
        let decision = match cached {
            Some(d) => d,
            None => {
                let mut d = self.run_datalog(&verified, req, now_secs, reveal);
                if d == Err(Denial::LimitExceeded) {
                    // The time bound can trip on a descheduled thread (shared, loaded
                    // hosts): one more try before refusing. A token that really is
                    // too costly fails again, within the same bound.
                    d = self.run_datalog(&verified, req, now_secs, reveal);
                }
                self.lock_decisions().put(key, d.clone());
                d
            }
        };
        decision.map(|()| facts.clone())
    }

    fn lock_decisions(
        &self,
    ) -> std::sync::MutexGuard<'_, LruCache<DecisionKey, Result<(), Denial>>> {
        // A poisoned cache only means another thread panicked mid-update of a cache;
        // its content is still a valid cache.
        self.decisions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn verified(&self, text: &str) -> Result<Arc<Verified>, Denial> {
        if let Some(v) = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(text)
        {
            return v.clone();
        }
        let bytes = decode_token(text)?;
        let (v, keep) = match self.first_sight(&bytes) {
            Ok(v) => (Ok(Arc::new(v)), true),
            Err(FirstSightError {
                denial,
                deterministic,
            }) => (Err(denial), deterministic),
        };
        if keep {
            self.tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .put(text.into(), v.clone());
        }
        v
    }

    /// Everything about a token that does not depend on the request, cheapest
    /// rejection first; Datalog runs only once the static cost bound holds.
    fn first_sight(&self, bytes: &[u8]) -> Result<Verified, FirstSightError> {
        // The walk is linear in the (capped) size and reads no signature.
        let shape = bounds::check(bytes, self.config.limits.max_facts).map_err(|e| match e {
            ShapeError::Malformed(m) => Denial::Malformed(m.to_string()),
            ShapeError::Unsupported(m) => Denial::Malformed(m),
            ShapeError::TooCostly(_) => Denial::LimitExceeded,
        })?;
        let depth = shape.blocks.saturating_sub(1);
        if depth > HARD_MAX_DELEGATION_DEPTH as usize {
            // Before the signature chain: its cost grows with the block count.
            return Err(Denial::DelegationTooDeep(format!(
                "{depth} attenuation blocks, more than any token may have \
                 ({HARD_MAX_DELEGATION_DEPTH})"
            ))
            .into());
        }
        let unverified =
            UnverifiedBiscuit::from(bytes).map_err(|e| Denial::Malformed(short(&e)))?;
        if unverified
            .external_public_keys()
            .iter()
            .any(Option::is_some)
        {
            return Err(Denial::Malformed("third-party blocks are not accepted".into()).into());
        }
        let biscuit = match self.roots.as_slice() {
            [one] => unverified.verify_with_prefixes(*one, &self.prefixes).ok(),
            roots => roots.iter().find_map(|pk| {
                unverified
                    .clone()
                    .verify_with_prefixes(*pk, &self.prefixes)
                    .ok()
            }),
        }
        .ok_or(Denial::BadSignature)?;
        let authority = match shape.authority {
            Some(a) => a,
            // A run limit hit here may depend on load (time): do not remember it.
            None => query_authority(&biscuit, &self.config).map_err(|denial| FirstSightError {
                deterministic: denial != Denial::LimitExceeded,
                denial,
            })?,
        };
        let reveal = authority
            .reveals
            .iter()
            .filter_map(|(k, p)| format!("{k}:{p}").parse().ok())
            .collect();
        let (facts, defect) = authorized_facts(
            authority,
            &biscuit,
            shape.expiry,
            shape.confirms,
            &self.config,
        );
        let template = self
            .policy
            .clone()
            .build(&biscuit)
            .map_err(|e| FirstSightError {
                deterministic: true,
                denial: Denial::Malformed(short(&e)),
            })?;
        Ok(Verified {
            id: NEXT_TOKEN_ID.fetch_add(1, Ordering::Relaxed),
            revocation_ids: biscuit.revocation_identifiers(),
            template,
            facts,
            defect,
            reveal,
            narrowed: shape.narrowed,
        })
    }

    fn run_datalog(
        &self,
        v: &Verified,
        req: &Request<'_>,
        now_secs: u64,
        reveal: Option<RequestResource<'_>>,
    ) -> Result<(), Denial> {
        let kind = req.resource.map(|r| r.kind.as_str()).unwrap_or("none");
        let mut a = v.template.clone();
        let mut add = |f: biscuit_auth::builder::Fact| {
            a.add_fact(f)
                .map_err(|_| Denial::Malformed("request facts".into()))
        };
        add(fact(
            "time",
            &[date(
                &(SystemTime::UNIX_EPOCH + Duration::from_secs(now_secs)),
            )],
        ))?;
        add(fact("requested_tool", &[string(req.tool)]))?;
        add(fact("request_kind", &[string(kind)]))?;
        add(fact("depth", &[int(i64::from(v.facts.delegation_depth))]))?;
        if let Some(r) = req.resource.filter(|r| r.value != RequestResource::ANY) {
            add(fact("requested_resource", &[string(kind), string(r.value)]))?;
            // `http` patterns are checked on the URL's parts. A value that is not a
            // canonical URL gets no parts and so matches no `http` pattern.
            if let Some(t) = (r.kind == ResourceKind::Http)
                .then(|| HttpTarget::from_canonical(r.value))
                .flatten()
            {
                add(fact(
                    "requested_http",
                    &[
                        string(&t.scheme),
                        string(&t.host),
                        string(t.parent()),
                        int(i64::from(t.port)),
                        string(&t.path),
                    ],
                ))?;
            }
        }
        // A reveal question states its target; an ordinary call says it is one, which
        // passes every reveal narrowing (those only speak to reveal questions).
        add(match reveal {
            Some(t) => fact(
                "reveal_request",
                &[string(t.kind.as_str()), string(t.value)],
            ),
            None => fact("request_purpose", &[string("call")]),
        })?;
        a.authorize().map(|_| ()).map_err(|e| classify(e, req, v))
    }
}

/// At most this many patterns are listed in one explanation.
const EXPLAIN_MAX: usize = 8;

fn listing(items: &[String]) -> String {
    let mut shown: Vec<&str> = items.iter().take(EXPLAIN_MAX).map(String::as_str).collect();
    if items.len() > EXPLAIN_MAX {
        shown.push("…");
    }
    shown.join(", ")
}

/// What the token admits for a tool request: the authority block's grants, then
/// each narrowing a later block declares. Never the token, never a value.
fn admits_tools(v: &Verified, failed: &[usize]) -> String {
    let f = &v.facts;
    let mut out = if f.tool_wildcard {
        "every tool".to_string()
    } else if f.tools.is_empty() {
        "no tool".to_string()
    } else {
        listing(&f.tools)
    };
    for n in v.narrowed.iter().filter(|n| !n.tools.is_empty()) {
        out.push_str("; narrowed to ");
        out.push_str(&listing(&n.tools));
    }
    out.push_str(&undeclared(failed, |b| {
        v.narrowed
            .iter()
            .any(|n| n.block == b && !n.tools.is_empty())
    }));
    format!("token admits {out}")
}

/// Blocks whose check failed without saying what they narrowed to (tokens attenuated
/// by older tools, or by hand): named, so the explanation never claims more.
fn undeclared(failed: &[usize], declared: impl Fn(usize) -> bool) -> String {
    failed
        .iter()
        .filter(|&&b| b > 0 && !declared(b))
        .map(|b| format!("; narrowed further by block {b}"))
        .collect()
}

/// The same for a resource kind.
fn admits_resources(v: &Verified, kind: ResourceKind, failed: &[usize]) -> String {
    let mut parts = Vec::new();
    let authority: Vec<String> = v
        .facts
        .resources
        .iter()
        .filter(|r| r.split_once(':').is_some_and(|(k, _)| k == kind.as_str()))
        .cloned()
        .collect();
    if !authority.is_empty() {
        parts.push(listing(&authority));
    }
    for n in &v.narrowed {
        let l: Vec<String> = n
            .resources
            .iter()
            .filter(|(k, _)| k.as_str() == kind.as_str())
            .map(|(k, p)| format!("{k}:{p}"))
            .collect();
        if !l.is_empty() {
            parts.push(listing(&l));
        }
    }
    let further = undeclared(failed, |b| {
        v.narrowed
            .iter()
            .any(|n| n.block == b && n.resources.iter().any(|(k, _)| k == kind.as_str()))
    });
    match parts.len() {
        0 => format!("token admits no {kind} resource it names{further}"),
        _ => format!("token admits {}{further}", parts.join("; narrowed to ")),
    }
}

fn short(e: &BiscuitError) -> String {
    let s = e.to_string();
    s.chars().take(120).collect()
}

/// Maps a Biscuit failure to a precise denial. Failed checks win over the policy
/// outcome (an expired token is "expired", not "tool not granted"), in a fixed order.
fn classify(e: BiscuitError, req: &Request<'_>, v: &Verified) -> Denial {
    let req_depth = v.facts.delegation_depth;
    match e {
        BiscuitError::FailedLogic(Logic::Unauthorized { checks, .. })
        | BiscuitError::FailedLogic(Logic::NoMatchingPolicy { checks }) => {
            let rules: Vec<&str> = checks
                .iter()
                .map(|c| match c {
                    FailedCheck::Block(b) => b.rule.as_str(),
                    FailedCheck::Authorizer(a) => a.rule.as_str(),
                })
                .collect();
            let any = |needle: &str| rules.iter().any(|r| r.contains(needle));
            // Blocks (by index) whose checks on `needle` failed.
            let failed_in = |needle: &str| -> Vec<usize> {
                let mut b: Vec<usize> = checks
                    .iter()
                    .filter_map(|c| match c {
                        FailedCheck::Block(b) if b.rule.contains(needle) => {
                            Some(b.block_id as usize)
                        }
                        _ => None,
                    })
                    .collect();
                b.sort_unstable();
                b.dedup();
                b
            };
            let resource = || match req.resource {
                Some(r) if r.value == RequestResource::ANY => Denial::ResourceNotGranted(format!(
                    "{} (none named, and the token admits only named ones: {})",
                    r.kind,
                    admits_resources(v, r.kind, &failed_in("request_kind("))
                        .trim_start_matches("token admits ")
                )),
                Some(r) => Denial::ResourceNotGranted(format!(
                    "{}:{} ({})",
                    r.kind,
                    r.value,
                    admits_resources(v, r.kind, &failed_in("request_kind("))
                )),
                None => Denial::ResourceNotGranted("(none named)".into()),
            };
            let tool = || {
                Denial::ToolNotGranted(format!(
                    "{} ({})",
                    req.tool,
                    admits_tools(v, &failed_in("requested_tool("))
                ))
            };
            if any("time(") {
                Denial::Expired
            } else if any("depth(") {
                Denial::DelegationTooDeep(format!(
                    "depth {} exceeds a cap set by an attenuation block",
                    req_depth
                ))
            } else if any("requested_tool(") {
                tool()
            } else if any("request_kind(") || any("requested_resource(") || any("requested_http(") {
                resource()
            } else if rules.is_empty() {
                // No check failed: the policy (deny if true) decided.
                tool()
            } else {
                // A check we did not write (e.g. an MCPVault `operation` check needing
                // facts we do not supply) failed: deny, naming the tool.
                tool()
            }
        }
        BiscuitError::RunLimit(_) => Denial::LimitExceeded,
        BiscuitError::FailedLogic(Logic::InvalidBlockRule(..)) => {
            Denial::Malformed("invalid block rule".into())
        }
        other => Denial::Malformed(short(&other)),
    }
}

/// Reads the authority facts with Datalog queries: only for authority blocks with
/// rules (what they grant can only be known by running them). Same limits.
fn query_authority(biscuit: &Biscuit, config: &VerifierConfig) -> Result<AuthorityFacts, Denial> {
    let mut a = AuthorizerBuilder::new()
        .set_limits(config.limits.clone())
        .build(biscuit)
        .map_err(query_error)?;
    let mut q = |rule: &str| -> Result<Vec<String>, Denial> {
        let rows: Vec<(String,)> = a.query(rule).map_err(query_error)?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    };
    let tools = q("data($n) <- tool($n)")?;
    let tool_wildcards = q("data($w) <- tool_wildcard($w)")?;
    let issuers = q("data($i) <- issuer($i)")?;
    let subjects = q("data($s) <- subject($s)")?;
    let caps: Vec<(i64,)> = a
        .query("data($m) <- max_delegation_depth($m)")
        .map_err(query_error)?;
    let resources: Vec<(String, String)> = a
        .query("data($k, $p) <- resource($k, $p)")
        .map_err(query_error)?;
    let reveals: Vec<(String, String)> = a
        .query("data($k, $p) <- reveal($k, $p)")
        .map_err(query_error)?;
    Ok(AuthorityFacts {
        tools,
        tool_wildcards,
        issuers,
        subjects,
        max_delegation_depths: caps.into_iter().map(|(m,)| m).collect(),
        resources,
        reveals,
    })
}

/// What callers see of a token, from its authority facts; and an authority-block
/// defect that denies every request (several subjects).
fn authorized_facts(
    a: AuthorityFacts,
    biscuit: &Biscuit,
    expiry: Option<u64>,
    confirm: Vec<String>,
    config: &VerifierConfig,
) -> (AuthorizedFacts, Option<Denial>) {
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v.dedup();
        v
    };
    let subjects = sorted(a.subjects);
    let defect =
        (subjects.len() > 1).then(|| Denial::WrongSubject("token names several subjects".into()));
    // The tightest cap stated in the authority block, else the server default.
    // The depth itself is never read from the token: it is the block count.
    let cap = a
        .max_delegation_depths
        .iter()
        .map(|m| (*m).clamp(0, i64::from(u32::MAX)) as u32)
        .min()
        .unwrap_or(config.default_max_depth);
    let facts = AuthorizedFacts {
        tools: sorted(a.tools),
        tool_wildcard: a.tool_wildcards.iter().any(|w| w == "*"),
        issuer: sorted(a.issuers).into_iter().next(),
        subject: if subjects.len() == 1 {
            subjects.into_iter().next()
        } else {
            None
        },
        delegation_depth: (biscuit.block_count().saturating_sub(1)) as u32,
        max_delegation_depth: cap,
        expires_at: expiry.map(rfc3339),
        expires_at_unix: expiry,
        resources: sorted(
            a.resources
                .into_iter()
                .map(|(k, p)| format!("{k}:{p}"))
                .collect(),
        ),
        reveal: sorted(
            a.reveals
                .into_iter()
                .map(|(k, p)| format!("{k}:{p}"))
                .collect(),
        ),
        confirm,
        revocation_ids: biscuit
            .revocation_identifiers()
            .iter()
            .map(hex::encode)
            .collect(),
    };
    (facts, defect)
}

fn query_error(e: BiscuitError) -> Denial {
    match e {
        BiscuitError::RunLimit(_) => Denial::LimitExceeded,
        e => Denial::Malformed(short(&e)),
    }
}

/// RFC 3339 UTC (`2031-11-21T05:06:44Z`), as Biscuit prints dates.
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn dates_print_like_biscuit() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_953_004_004), "2031-11-21T05:06:44Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
