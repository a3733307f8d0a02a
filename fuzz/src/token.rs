//! The token harnesses: they use the token core (`mcpvault_token`) and biscuit-auth
//! only, so `cargo fuzz build --no-default-features token_authorize` builds them
//! without the server.
//!
//! - `token_authorize`: arbitrary text and bytes as tokens; valid tokens with an
//!   arbitrary Datalog block appended (first-party or third-party) never gain
//!   authority their base token lacks; bit-flipped valid tokens are refused or mean
//!   exactly what the original means.
//! - `resource_patterns`: arbitrary text as `KIND:PATTERN` (and as a tool list):
//!   parsing never panics, a parsed pattern prints back to itself, `matches` is
//!   exactly "prefix or equal", and the Datalog checks minted or attenuated from
//!   the pattern admit exactly what `matches` admits for its kind (and leave other
//!   kinds alone).
// Shared with the test crate through `#[path]`; not every item is used in both.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64::Engine;
use biscuit_auth::builder::{Algorithm, BlockBuilder};
use biscuit_auth::{PrivateKey, UnverifiedBiscuit};
use mcpvault_token::{
    attenuate, decode_token, inspect, mint, parse_public_keys, parse_tools, AttenuateSpec,
    AuthorizedFacts, Denial, KeyFile, MintSpec, Request, RequestResource, ResourceKind,
    ResourcePattern, RevocationSet, ToolGrant, Verifier, VerifierConfig,
};

/// Fuzz-only keys (never used outside this harness).
pub(crate) const ROOT_PRIVATE: &str =
    "b9c62e9d2fe25f93b61cc44d78825c73598774bccafa2c7d7cc7054e196fa187";
pub(crate) const ROOT_PUBLIC: &str =
    "99ecefee2aabe12bd51b203446ff0af6782663f525a15630444da7a408182fe4";
const EXTERNAL_PRIVATE: &str = "7441cc91edab9925399b10cf3acb17d5acca8731b8d92ec31e09c721994258de";

pub(crate) const SUBJECT: &str = "agentF";

pub(crate) const TOOLS: &[&str] = &[
    "kv.read",
    "kv.write",
    "kv.list",
    "kv.destroy",
    "transit.encrypt",
    "transit.random",
    "db.issue_creds",
    "db.renew",
    "ssh.sign",
    "kms.encrypt",
    "kms.sign",
    "no.such",
];

pub(crate) struct Fixture {
    pub(crate) verifier: Verifier,
    revoked: RevocationSet,
    /// Valid tokens to build on: all tools; narrowed by tool and resource; that one
    /// attenuated; a revoked one.
    pub(crate) bases: Vec<String>,
    external: PrivateKey,
    pub(crate) key: KeyFile,
}

pub(crate) fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = KeyFile {
            private_key: ROOT_PRIVATE.into(),
            public_key: ROOT_PUBLIC.into(),
        };
        let spec = |tools: Option<&str>, resources: &[&str]| MintSpec {
            tools: tools.map(|t| parse_tools(t).expect("tools")),
            subject: Some(SUBJECT.into()),
            resources: resources
                .iter()
                .map(|r| r.parse::<ResourcePattern>().expect("resource"))
                .collect(),
            ttl: Duration::from_secs(10 * 365 * 24 * 3600),
            ..MintSpec::default()
        };
        let all = mint(&key, &spec(None, &[])).expect("mint");
        let narrow = mint(
            &key,
            &spec(Some("kv.read,transit.*"), &["kv:app/*", "transit:k1"]),
        )
        .expect("mint");
        let narrower = attenuate(
            &narrow,
            None,
            &AttenuateSpec {
                tools: Some(parse_tools("kv.read").expect("tools")),
                ..AttenuateSpec::default()
            },
        )
        .expect("attenuate");
        let revoked_token = attenuate(&all, None, &AttenuateSpec::default()).expect("attenuate");
        let revoked_id = UnverifiedBiscuit::from(decode_token(&revoked_token).expect("decode"))
            .expect("parse")
            .revocation_identifiers()
            .last()
            .cloned()
            .expect("id");
        let roots = parse_public_keys(ROOT_PUBLIC).expect("root key");
        Fixture {
            verifier: Verifier::new(roots, VerifierConfig::default()).expect("verifier"),
            revoked: RevocationSet::new([revoked_id]),
            bases: vec![all, narrow, narrower, revoked_token],
            key,
            external: PrivateKey::from_bytes(
                &hex::decode(EXTERNAL_PRIVATE).expect("hex"),
                Algorithm::Ed25519,
            )
            .expect("external key"),
        }
    })
}

fn request_for(selector: u8) -> (String, Option<(ResourceKind, &'static str)>) {
    let tool = TOOLS[selector as usize % TOOLS.len()];
    let pick = (selector as usize / TOOLS.len()) % 4;
    let resource = match tool.split('.').next() {
        Some("kv") => Some((ResourceKind::Kv, ["app/x", "other/y", "app", ""][pick])),
        Some("transit") if tool != "transit.random" => {
            Some((ResourceKind::Transit, ["k1", "k2", "k1x", ""][pick]))
        }
        Some("db") => Some((ResourceKind::Db, "ro")),
        Some("ssh") => Some((ResourceKind::Ssh, "ops")),
        Some("kms") => Some((ResourceKind::Kms, "alias/a")),
        _ => None,
    };
    (tool.to_string(), resource)
}

fn authorize(
    token: &str,
    tool: &str,
    resource: Option<(ResourceKind, &str)>,
) -> Result<AuthorizedFacts, Denial> {
    let f = fixture();
    let req = Request {
        tool,
        resource: resource.map(|(kind, value)| RequestResource { kind, value }),
        subject: Some(SUBJECT),
        now: SystemTime::now(),
    };
    f.verifier.authorize(token, &req, &f.revoked)
}

/// Whatever `derived` is allowed, `base` must be allowed too, for the same subject.
fn never_wider(
    what: &str,
    base: &Result<AuthorizedFacts, Denial>,
    derived: &Result<AuthorizedFacts, Denial>,
) {
    if let Ok(d) = derived {
        match base {
            Ok(b) => {
                assert_eq!(d.subject, b.subject, "{what} changed the subject");
                assert_eq!(
                    (&d.tools, d.tool_wildcard),
                    (&b.tools, b.tool_wildcard),
                    "{what} changed the granted tools"
                );
            }
            // A wall-clock run limit on the base proves nothing either way.
            Err(Denial::LimitExceeded) => {}
            Err(e) => panic!("{what} allowed what its base token is denied ({e}): {d:?}"),
        }
        assert_eq!(d.subject.as_deref(), Some(SUBJECT));
        assert!(d.delegation_depth <= d.max_delegation_depth);
    }
}

/// `data[0]`: low bits pick the mode, the rest the base token and the request.
pub fn token_authorize(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Some((&req_sel, rest)) = rest.split_first() else {
        return;
    };
    let f = fixture();
    let (tool, resource) = request_for(req_sel);
    let base_token = &f.bases[(sel as usize >> 3) % f.bases.len()];
    let base = authorize(base_token, &tool, resource);
    match sel % 5 {
        // Arbitrary text as the token.
        0 => {
            let _ = authorize(&String::from_utf8_lossy(rest), &tool, resource);
        }
        // Arbitrary bytes as a serialized biscuit.
        1 => {
            let token = base64::engine::general_purpose::STANDARD.encode(rest);
            let _ = authorize(&token, &tool, resource);
        }
        // A first-party block of arbitrary Datalog, appended offline by a holder.
        2 => {
            let Ok(block) = BlockBuilder::new().code(String::from_utf8_lossy(rest)) else {
                return;
            };
            let Ok(bytes) = decode_token(base_token) else {
                return;
            };
            let Ok(t) = UnverifiedBiscuit::from(&bytes).and_then(|t| t.append(block)) else {
                return;
            };
            let Ok(out) = t.to_vec() else { return };
            let token = base64::engine::general_purpose::STANDARD.encode(out);
            never_wider(
                "a first-party block",
                &base,
                &authorize(&token, &tool, resource),
            );
        }
        // A third-party block of arbitrary Datalog, signed by a key nobody trusts.
        3 => {
            let Ok(block) = BlockBuilder::new().code(String::from_utf8_lossy(rest)) else {
                return;
            };
            let Ok(bytes) = decode_token(base_token) else {
                return;
            };
            let Ok(t) = UnverifiedBiscuit::from(&bytes) else {
                return;
            };
            let appended = t
                .third_party_request()
                .and_then(|r| r.create_block(&f.external, block))
                .and_then(|b| b.serialize())
                .and_then(|b| t.append_third_party(&b))
                .and_then(|t| t.to_vec());
            let Ok(out) = appended else { return };
            let token = base64::engine::general_purpose::STANDARD.encode(out);
            never_wider(
                "a third-party block",
                &base,
                &authorize(&token, &tool, resource),
            );
        }
        // Bit flips in a valid token: refused, or exactly as good as the original.
        _ => {
            let Ok(mut bytes) = decode_token(base_token) else {
                return;
            };
            for c in rest.chunks(3) {
                if let [hi, lo, x] = c {
                    let pos = usize::from(u16::from_be_bytes([*hi, *lo])) % bytes.len();
                    bytes[pos] ^= x;
                }
            }
            let token = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let flipped = authorize(&token, &tool, resource);
            never_wider("a bit-flipped token", &base, &flipped);
            if let (Ok(a), Ok(b)) = (&flipped, &base) {
                assert_eq!(a.resources, b.resources, "bit flips changed the resources");
                assert_eq!(a.expires_at, b.expires_at, "bit flips changed the expiry");
            }
        }
    }
}

/// Splits `data` at its first NUL: (pattern text, request value).
fn two_strings(data: &[u8]) -> (String, String) {
    let (a, b) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    (
        String::from_utf8_lossy(a).into_owned(),
        String::from_utf8_lossy(b).into_owned(),
    )
}

/// What a resource pattern means, written out plainly. `http` patterns are matched
/// on URL parts, not strings: their plain reading is [`http_reference`].
fn reference_match(p: &ResourcePattern, kind: ResourceKind, value: &str) -> bool {
    if p.kind == ResourceKind::Http {
        return kind == p.kind && http_reference(&p.pattern, value);
    }
    kind == p.kind
        && match p.pattern.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => value == p.pattern,
        }
}

/// An `http` pattern in canonical form (`https://HOST:PORT/PATH[*]`, host maybe
/// `*.BASE`) against a canonical value, read independently of the token crate's
/// parser: the same origin (one label under BASE for `*.`), and the path equal to the
/// pattern's, or under its prefix at a `/` boundary.
fn http_reference(pattern: &str, value: &str) -> bool {
    let Some(target) = mcpvault_token::http::HttpTarget::from_canonical(value) else {
        return false;
    };
    let split = |s: &str| -> Option<(String, String)> {
        let (scheme, rest) = s.split_once("://")?;
        let slash = rest.find('/')?;
        Some((
            format!("{scheme}://{}", &rest[..slash]),
            rest[slash..].to_string(),
        ))
    };
    let (Some((p_origin, p_path)), Some((v_origin, v_path))) = (split(pattern), split(value))
    else {
        return false;
    };
    let origin = match p_origin.split_once("://*.") {
        Some((scheme, base_port)) => {
            let (label, _) = target.host.split_once('.').unwrap_or(("", ""));
            !label.is_empty()
                && !target.host.starts_with('[')
                && target.host.parse::<std::net::Ipv4Addr>().is_err()
                && v_origin == format!("{scheme}://{label}.{base_port}")
        }
        None => p_origin == v_origin,
    };
    let path = match p_path.strip_suffix('*') {
        None => p_path == v_path,
        Some(prefix) if prefix.ends_with('/') => v_path.starts_with(prefix),
        Some(prefix) => v_path == prefix || v_path.starts_with(&format!("{prefix}/")),
    };
    origin && path
}

fn tool_for(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Kv => "kv.read",
        ResourceKind::Transit => "transit.encrypt",
        ResourceKind::Db => "db.issue_creds",
        ResourceKind::Ssh => "ssh.sign",
        ResourceKind::Kms => "kms.encrypt",
        ResourceKind::SshPrincipal => "ssh.sign",
        ResourceKind::Http => "http.request",
    }
}

/// The token's decision on `(kind, value)` must be exactly `p.matches` for the
/// pattern's kind; kinds the token does not mention stay unrestricted.
fn datalog_agrees(what: &str, token: &str, p: &ResourcePattern, value: &str) {
    for kind in ResourceKind::ALL {
        let want = kind != p.kind || p.matches(kind, value);
        match authorize(token, tool_for(kind), Some((kind, value))) {
            Ok(_) => assert!(want, "{what} {p} admitted {kind}:{value:?}"),
            Err(Denial::ResourceNotGranted(_)) => {
                assert!(!want, "{what} {p} refused {kind}:{value:?}")
            }
            // A wall-clock run limit proves nothing either way.
            Err(Denial::LimitExceeded) => {}
            Err(e) => panic!("{what} {p}, {kind}:{value:?}: {e}"),
        }
    }
}

/// `data`: pattern text, NUL, a request value.
pub fn resource_patterns(data: &[u8]) {
    let (text, value) = two_strings(data);
    // The text as a whole, and its tail under every kind.
    let mut candidates = vec![text.clone()];
    candidates.extend(ResourceKind::ALL.iter().map(|k| format!("{k}:{text}")));
    for c in &candidates {
        let Ok(p) = c.parse::<ResourcePattern>() else {
            continue;
        };
        // What a pattern may be.
        let body = p.pattern.strip_suffix('*').unwrap_or(&p.pattern);
        let http = p.kind == ResourceKind::Http;
        assert!(!p.pattern.is_empty() && p.pattern.len() <= 512, "{c:?}");
        // (`http` hosts may start with a `*.` label.)
        assert!(http || !body.contains('*'), "{c:?}: a '*' before the end");
        assert!(!p.pattern.chars().any(char::is_control), "{c:?}");
        assert_eq!(
            p.to_string().parse::<ResourcePattern>().ok(),
            Some(p.clone())
        );
        assert_eq!(p.prefix(), p.pattern.strip_suffix('*'));
        // A pattern admits its own prefix (or itself), and never another kind.
        assert!(http || p.matches(p.kind, body) || p.prefix().is_none());
        assert!(http || p.matches(p.kind, &p.pattern) || p.prefix().is_some());
        for kind in ResourceKind::ALL {
            for v in [value.as_str(), body, &p.pattern] {
                assert_eq!(
                    p.matches(kind, v),
                    reference_match(&p, kind, v),
                    "{p} vs {v:?}"
                );
            }
        }
        // The Datalog the token carries agrees with `matches`, minted and attenuated.
        let f = fixture();
        let spec = MintSpec {
            subject: Some(SUBJECT.into()),
            resources: vec![p.clone()],
            ..MintSpec::default()
        };
        let minted = mint(&f.key, &spec).expect("minting a parsed pattern");
        let narrowed = attenuate(
            &f.bases[0],
            None,
            &AttenuateSpec {
                resources: vec![p.clone()],
                ..AttenuateSpec::default()
            },
        )
        .expect("attenuating with a parsed pattern");
        for v in [value.as_str(), body] {
            datalog_agrees("minted", &minted, &p, v);
            datalog_agrees("attenuated", &narrowed, &p, v);
        }
        let info = inspect(&minted).expect("inspect");
        assert_eq!(info.block_count, 1);
    }
    // The same text as a `--tools` list: never a panic; what parses is well formed.
    if let Ok(grants) = parse_tools(&text) {
        for g in grants {
            match &g {
                ToolGrant::All => assert!(g.matches(&value)),
                ToolGrant::Exact(n) => {
                    assert!(g.matches(n) && !n.is_empty());
                    assert_eq!(g.matches(&value), value == *n);
                }
                ToolGrant::Family(prefix) => {
                    assert!(prefix.ends_with('.') && prefix.len() > 1);
                    assert_eq!(g.matches(&value), value.starts_with(prefix.as_str()));
                }
            }
        }
    }
}
