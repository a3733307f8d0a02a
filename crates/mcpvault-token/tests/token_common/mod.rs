//! Helpers shared by the token tests (`mod token_common;`).
#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use biscuit_auth::builder::BlockBuilder;
use biscuit_auth::UnverifiedBiscuit;
use mcpvault_token::{
    self as token, decode_token, encode_token, AttenuateSpec, AuthorizedFacts, Denial, KeyFile,
    MintSpec, Request, RequestResource, ResourceKind, RevocationSet, Verifier, VerifierConfig,
};

pub fn key() -> KeyFile {
    token::generate_keypair()
}

/// A verifier with the default limits, except a time limit that a loaded test machine
/// (parallel tests, debug build, other builds) cannot trip on a valid token. The
/// static cost bound, not the clock, is what the limit tests rely on.
pub fn verifier(keys: &[&KeyFile]) -> Verifier {
    let list: Vec<&str> = keys.iter().map(|k| k.public_key.as_str()).collect();
    let mut config = VerifierConfig::default();
    config.limits.max_time = Duration::from_secs(2);
    Verifier::new(token::parse_public_keys(&list.join(",")).unwrap(), config).unwrap()
}

pub fn tools(list: &str) -> Option<Vec<token::ToolGrant>> {
    Some(token::parse_tools(list).unwrap())
}

pub fn res(list: &[&str]) -> Vec<token::ResourcePattern> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

pub fn mint(key: &KeyFile, spec: MintSpec) -> String {
    token::mint(key, &spec).unwrap()
}

pub fn attenuate(t: &str, spec: AttenuateSpec) -> String {
    token::attenuate(t, None, &spec).unwrap()
}

/// One more block with no narrowing at all.
pub fn plain_block(t: &str) -> String {
    attenuate(t, AttenuateSpec::default())
}

/// Appends a block written in raw Datalog, as a hostile holder could.
pub fn append_raw(t: &str, code: &str) -> String {
    append_builder(t, BlockBuilder::new().code(code).unwrap())
}

pub fn append_builder(t: &str, block: BlockBuilder) -> String {
    let bytes = decode_token(t).unwrap();
    let u = UnverifiedBiscuit::from(&bytes).unwrap();
    encode_token(&u.append(block).unwrap().to_vec().unwrap())
}

pub fn req(tool: &str) -> Request<'_> {
    Request {
        tool,
        resource: None,
        subject: None,
        now: SystemTime::now(),
    }
}

pub fn req_res<'a>(tool: &'a str, kind: ResourceKind, value: &'a str) -> Request<'a> {
    Request {
        resource: Some(RequestResource { kind, value }),
        ..req(tool)
    }
}

pub fn later(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

/// The decision, its denial naming the tool or resource; the explanation of what the
/// token admits instead is left out here (`explain_*` tests check it).
pub fn check(v: &Verifier, t: &str, r: &Request<'_>) -> Result<AuthorizedFacts, Denial> {
    v.authorize(t, r, &RevocationSet::empty()).map_err(bare)
}

/// A denial without its ` (token admits ...)` explanation.
pub fn bare(d: Denial) -> Denial {
    let cut = |s: String| match s.find(" (token admits ") {
        Some(i) => s[..i].to_string(),
        None => s,
    };
    match d {
        Denial::ToolNotGranted(t) => Denial::ToolNotGranted(cut(t)),
        Denial::ResourceNotGranted(r) => Denial::ResourceNotGranted(cut(r)),
        d => d,
    }
}

pub fn allowed(v: &Verifier, t: &str, tool: &str) -> bool {
    check(v, t, &req(tool)).is_ok()
}
