//! Minting (needs the root private key) and attenuation (needs no key).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use biscuit_auth::builder::{BlockBuilder, Term};
use biscuit_auth::{Biscuit, PublicKey, UnverifiedBiscuit};

use crate::encoding::{decode_token, encode_token, MAX_TOKEN_BYTES};
use crate::error::{Denial, TokenError};
use crate::keys::KeyFile;
use crate::scope::{
    resource_checks, reveal_check, tools_check, ResourceKind, ResourcePattern, ToolGrant,
};
use crate::verify::HARD_MAX_DELEGATION_DEPTH;

/// What a new token grants. `tools: None` grants every tool (`tool_wildcard("*")`).
#[derive(Debug, Clone)]
pub struct MintSpec {
    pub tools: Option<Vec<ToolGrant>>,
    pub ttl: Duration,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub max_delegation_depth: u32,
    pub resources: Vec<ResourcePattern>,
    /// What secret values the token may see in clear (`--reveal`); none by default.
    pub reveal: Vec<ResourcePattern>,
    /// Tools whose calls first ask the user (`--confirm`); none by default.
    pub confirm: Vec<ToolGrant>,
}

impl Default for MintSpec {
    fn default() -> Self {
        MintSpec {
            tools: None,
            ttl: Duration::from_secs(3600),
            issuer: None,
            subject: None,
            max_delegation_depth: 3,
            resources: Vec::new(),
            reveal: Vec::new(),
            confirm: Vec::new(),
        }
    }
}

/// How to narrow a token. Every field only ever adds checks.
#[derive(Debug, Clone, Default)]
pub struct AttenuateSpec {
    pub tools: Option<Vec<ToolGrant>>,
    pub ttl: Option<Duration>,
    pub resources: Vec<ResourcePattern>,
    /// How many further attenuations may follow this one.
    pub max_delegation_depth: Option<u32>,
    /// Narrow reveal to these patterns (`Some(vec![])`: drop it). It can only take
    /// away: a token whose authority block grants no reveal still reveals nothing.
    pub reveal: Option<Vec<ResourcePattern>>,
    /// Tools whose calls first ask the user, on top of those the token already
    /// names (it can add a requirement, never remove one).
    pub confirm: Vec<ToolGrant>,
}

/// Upper bound on a TTL so `now + ttl` cannot overflow the Datalog date.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn expiry(ttl: Duration) -> Result<Term, TokenError> {
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(TokenError::Invalid(format!(
            "ttl must be between 1 and {} seconds",
            MAX_TTL.as_secs()
        )));
    }
    let at = SystemTime::now() + ttl;
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| TokenError::Invalid("clock before 1970".into()))?
        .as_secs();
    Ok(Term::Date(secs))
}

fn one(name: &str, value: Term) -> HashMap<String, Term> {
    HashMap::from([(name.to_string(), value)])
}

fn identity(kind: &str, value: &str) -> Result<Term, TokenError> {
    if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
        return Err(TokenError::Invalid(format!(
            "{kind} must be 1-256 printable characters"
        )));
    }
    Ok(Term::Str(value.to_string()))
}

/// `confirm(TOOL)` facts, as `*`, `kv.*` or an exact name (the text `--confirm`
/// takes). Plain facts, read by the verifier's static walk from every block.
fn confirm_facts(list: &[ToolGrant]) -> Vec<(&'static str, HashMap<String, Term>)> {
    list.iter()
        .map(|g| {
            let text = match g {
                ToolGrant::All => "*".to_string(),
                ToolGrant::Exact(n) => n.clone(),
                ToolGrant::Family(p) => format!("{p}*"),
            };
            ("confirm({t})", one("t", Term::Str(text)))
        })
        .collect()
}

/// Mints a token. The authority block stays MCPVault-compatible (`tool`, `tool_wildcard`,
/// `issuer`, `subject`, `delegation_depth(0)`, the TTL check) and adds our own facts,
/// which an MCPVault verifier simply ignores.
pub fn mint(key: &KeyFile, spec: &MintSpec) -> Result<String, TokenError> {
    if spec.max_delegation_depth > HARD_MAX_DELEGATION_DEPTH {
        return Err(TokenError::Invalid(format!(
            "max delegation depth must be at most {HARD_MAX_DELEGATION_DEPTH}"
        )));
    }
    let keypair = key.keypair()?;
    let mut b = Biscuit::builder();
    match &spec.tools {
        None => b = b.code(r#"tool_wildcard("*")"#)?,
        Some(tools) if tools.contains(&ToolGrant::All) => b = b.code(r#"tool_wildcard("*")"#)?,
        Some(tools) => {
            if tools.is_empty() {
                return Err(TokenError::Invalid("empty tool list".into()));
            }
            for t in tools {
                b = match t {
                    ToolGrant::Exact(n) => b.code_with_params(
                        "tool({n})",
                        one("n", Term::Str(n.clone())),
                        HashMap::new(),
                    )?,
                    ToolGrant::Family(p) => b.code_with_params(
                        "tool({n}); tool_prefix({p})",
                        HashMap::from([
                            ("n".to_string(), Term::Str(format!("{p}*"))),
                            ("p".to_string(), Term::Str(p.clone())),
                        ]),
                        HashMap::new(),
                    )?,
                    ToolGrant::All => b,
                };
            }
        }
    }
    let issuer = spec.issuer.as_deref().unwrap_or("mcpvault");
    b = b.code_with_params(
        "issuer({i})",
        one("i", identity("issuer", issuer)?),
        HashMap::new(),
    )?;
    if let Some(s) = &spec.subject {
        b = b.code_with_params(
            "subject({s})",
            one("s", identity("subject", s)?),
            HashMap::new(),
        )?;
    }
    b = b.code_with_params(
        "delegation_depth(0); max_delegation_depth({m})",
        one("m", Term::Integer(i64::from(spec.max_delegation_depth))),
        HashMap::new(),
    )?;
    for r in &spec.resources {
        b = b.code_with_params(
            "resource({k}, {p})",
            HashMap::from([
                ("k".to_string(), Term::Str(r.kind.as_str().to_string())),
                ("p".to_string(), Term::Str(r.pattern.clone())),
            ]),
            HashMap::new(),
        )?;
    }
    for (src, params) in resource_checks(&spec.resources) {
        b = b.code_with_params(src, params, HashMap::new())?;
    }
    no_http_reveal(&spec.reveal)?;
    for r in &spec.reveal {
        b = b.code_with_params(
            "reveal({k}, {p})",
            HashMap::from([
                ("k".to_string(), Term::Str(r.kind.as_str().to_string())),
                ("p".to_string(), Term::Str(r.pattern.clone())),
            ]),
            HashMap::new(),
        )?;
    }
    for (src, params) in confirm_facts(&spec.confirm) {
        b = b.code_with_params(src, params, HashMap::new())?;
    }
    b = b.code_with_params(
        "check if time($t), $t < {exp}",
        one("exp", expiry(spec.ttl)?),
        HashMap::new(),
    )?;
    let token = b.build(&keypair)?;
    Ok(encode_token(&token.to_vec()?))
}

/// `http.request` results are never secret values, so reveal on `http` would mean
/// nothing: refused rather than silently ignored.
fn no_http_reveal(reveal: &[ResourcePattern]) -> Result<(), TokenError> {
    if reveal.iter().any(|r| r.kind == ResourceKind::Http) {
        return Err(TokenError::Invalid(
            "reveal on http means nothing (http.request results are never secret values)".into(),
        ));
    }
    Ok(())
}

/// Appends a narrowing block. Offline: no private key. With `roots`, the signature
/// chain is checked first so a forged token is refused rather than extended.
pub fn attenuate(
    token: &str,
    roots: Option<&[PublicKey]>,
    spec: &AttenuateSpec,
) -> Result<String, TokenError> {
    let bytes = decode_token(token)?;
    let unverified =
        UnverifiedBiscuit::from(&bytes).map_err(|e| Denial::Malformed(e.to_string()))?;
    if let Some(roots) = roots {
        let ok = roots.iter().any(|pk| Biscuit::from(&bytes, *pk).is_ok());
        if !ok {
            return Err(Denial::BadSignature.into());
        }
    }
    // The new block's index is its delegation depth.
    let depth = unverified.block_count() as i64;
    let mut block = BlockBuilder::new();
    if let Some(tools) = &spec.tools {
        if tools.is_empty() {
            return Err(TokenError::Invalid("empty tool list".into()));
        }
        if let Some((src, params)) = tools_check(tools) {
            block = block.code_with_params(src, params, HashMap::new())?;
        }
        // Display only (a later block's facts grant nothing): lets a denial say
        // what the token was narrowed to.
        for t in tools {
            let name = match t {
                ToolGrant::Exact(n) => n.clone(),
                ToolGrant::Family(p) => format!("{p}*"),
                ToolGrant::All => "*".to_string(),
            };
            block = block.code_with_params(
                "narrow_tool({t})",
                one("t", Term::Str(name)),
                HashMap::new(),
            )?;
        }
    }
    if let Some(ttl) = spec.ttl {
        block = block.code_with_params(
            "check if time($t), $t < {exp}",
            one("exp", expiry(ttl)?),
            HashMap::new(),
        )?;
    }
    for (src, params) in resource_checks(&spec.resources) {
        block = block.code_with_params(src, params, HashMap::new())?;
    }
    for r in &spec.resources {
        block = block.code_with_params(
            "narrow_resource({k}, {p})",
            HashMap::from([
                ("k".to_string(), Term::Str(r.kind.as_str().to_string())),
                ("p".to_string(), Term::Str(r.pattern.clone())),
            ]),
            HashMap::new(),
        )?;
    }
    if let Some(reveal) = &spec.reveal {
        no_http_reveal(reveal)?;
        let (src, params) = reveal_check(reveal);
        block = block.code_with_params(src, params, HashMap::new())?;
    }
    for (src, params) in confirm_facts(&spec.confirm) {
        block = block.code_with_params(src, params, HashMap::new())?;
    }
    if let Some(more) = spec.max_delegation_depth {
        // `depth` is supplied by the verifier (it counts blocks); a later block cannot
        // add facts to this block's scope, so it cannot satisfy this check falsely.
        block = block.code_with_params(
            "check if depth($d), $d <= {cap}",
            one("cap", Term::Integer(depth + i64::from(more))),
            HashMap::new(),
        )?;
    }
    let next = unverified.append(block)?.to_vec()?;
    if encode_token(&next).len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Invalid(format!(
            "the attenuated token would be larger than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    Ok(encode_token(&next))
}
