//! Fuzz harnesses for mcpvault. The cargo-fuzz targets (`fuzz_targets/`) call these,
//! and so does the stable regression test `tests/it/fuzz_regressions.rs`, which replays
//! every input kept under `fixtures/fuzz/<target>/`. Each harness checks properties,
//! not just "no panic":
//!
//! - `token_authorize`: arbitrary text and bytes as tokens; valid tokens with an
//!   arbitrary Datalog block appended (first-party or third-party) never gain
//!   authority their base token lacks; bit-flipped valid tokens are refused or mean
//!   exactly what the original means.
//! - `args_paths`: the path/prefix/name validators agree with a reference reading of
//!   the rules, and every resource the gate extracts is one they accept.
//! - `stdio_judge`: the stdio guard accounts for every line, answers with well-formed
//!   JSON-RPC errors only, and forwards only bounded messages rmcp can read.
// Shared with the test crate through `#[path]`; not every item is used in both.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64::Engine;
use biscuit_auth::builder::{Algorithm, BlockBuilder};
use biscuit_auth::{PrivateKey, UnverifiedBiscuit};
use mcpvault::config::Config;
use mcpvault::paths::{validate_name, validate_path, validate_prefix, MAX_NAME_LEN, MAX_PATH_LEN};
use mcpvault::server::{lease_role, resource_of};
use mcpvault::token::{
    attenuate, decode_token, mint, parse_public_keys, parse_tools, AttenuateSpec, AuthorizedFacts,
    Denial, KeyFile, MintSpec, Request, RequestResource, ResourceKind, ResourcePattern,
    RevocationSet, Verifier, VerifierConfig,
};
use rmcp::model::ClientJsonRpcMessage;
use serde_json::{json, Map, Value};

/// Fuzz-only keys (never used outside this harness).
const ROOT_PRIVATE: &str = "b9c62e9d2fe25f93b61cc44d78825c73598774bccafa2c7d7cc7054e196fa187";
const ROOT_PUBLIC: &str = "99ecefee2aabe12bd51b203446ff0af6782663f525a15630444da7a408182fe4";
const EXTERNAL_PRIVATE: &str = "7441cc91edab9925399b10cf3acb17d5acca8731b8d92ec31e09c721994258de";

const SUBJECT: &str = "agentF";

const TOOLS: &[&str] = &[
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

struct Fixture {
    verifier: Verifier,
    revoked: RevocationSet,
    /// Valid tokens to build on: all tools; narrowed by tool and resource; that one
    /// attenuated; a revoked one.
    bases: Vec<String>,
    external: PrivateKey,
}

fn fixture() -> &'static Fixture {
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

/// The rules of README/paths.rs, written out plainly: what validate_path must accept.
fn reference_path_ok(p: &str) -> bool {
    let seg_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '.' | '_' | '-' | '@' | '+' | '=' | ',' | ':' | ' ')
            })
    };
    !p.is_empty() && p.len() <= MAX_PATH_LEN && p.split('/').all(seg_ok)
}

fn check_strings(s: &str) {
    let path = validate_path(s);
    assert_eq!(
        path.is_ok(),
        reference_path_ok(s),
        "validate_path({s:?}) = {path:?}"
    );
    if path.is_ok() {
        // Nothing that could change the meaning of a URL path or escape the namespace.
        assert!(!s.starts_with('/') && !s.contains("//"));
        assert!(!s.split('/').any(|seg| seg == ".." || seg == "."));
        assert!(!s.contains(['%', '\\', '?', '#']));
        assert!(!s.chars().any(char::is_control));
        assert!(s.is_ascii());
    }
    let prefix = validate_prefix(s);
    let want = s.is_empty() || reference_path_ok(s.strip_suffix('/').unwrap_or(s));
    assert_eq!(prefix.is_ok(), want, "validate_prefix({s:?}) = {prefix:?}");
    let name = validate_name(s);
    let want = !s.contains('/') && s.len() <= MAX_NAME_LEN && reference_path_ok(s);
    assert_eq!(name.is_ok(), want, "validate_name({s:?}) = {name:?}");
}

fn fuzz_config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| Config {
        subject: SUBJECT.into(),
        public_keys: parse_public_keys(ROOT_PUBLIC).expect("root key"),
        default_token: None,
        revocation_file: None,
        audit_log: None,
        kv_mount: "secret".into(),
        default_prefix: "mcp".into(),
        transit_mount: "transit".into(),
        db_mount: "database".into(),
        ssh_mount: "ssh".into(),
        kms_default_key: Some("alias/default".into()),
    })
}

/// Arbitrary input as a path string and as tool arguments.
pub fn args_paths(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    check_strings(&s);
    let cfg = fuzz_config();
    let args: Map<String, Value> = match serde_json::from_slice(data) {
        Ok(Value::Object(m)) => m,
        _ => ["path", "prefix", "key", "role", "lease_id", "key_id"]
            .iter()
            .map(|k| (k.to_string(), json!(s)))
            .collect(),
    };
    for (k, v) in &args {
        if let Value::String(v) = v {
            check_strings(v);
        }
        let _ = k;
    }
    if let Some(Value::String(lease)) = args.get("lease_id") {
        if let Ok(role) = lease_role(cfg, lease) {
            assert!(validate_path(lease).is_ok());
            assert!(
                !role.is_empty() && !role.contains('/'),
                "lease role {role:?}"
            );
            assert!(lease.starts_with(&format!("{}/creds/{role}/", cfg.db_mount)));
        }
    }
    for tool in TOOLS {
        let Ok(found) = resource_of(cfg, tool, &args) else {
            continue;
        };
        let Some((kind, value)) = found else {
            assert!(
                matches!(*tool, "transit.random" | "no.such"),
                "{tool} named no resource"
            );
            continue;
        };
        match kind {
            ResourceKind::Kv if *tool == "kv.list" => {
                assert!(validate_prefix(&value).is_ok(), "{tool}: {value:?}")
            }
            ResourceKind::Kv => assert!(validate_path(&value).is_ok(), "{tool}: {value:?}"),
            ResourceKind::Transit | ResourceKind::Ssh => {
                assert!(validate_name(&value).is_ok(), "{tool}: {value:?}")
            }
            ResourceKind::Db => {
                assert!(
                    !value.is_empty() && !value.contains('/'),
                    "{tool}: {value:?}"
                )
            }
            ResourceKind::Kms => assert!(
                !value.is_empty() && value.len() <= 2048 && !value.chars().any(char::is_control),
                "{tool}: {value:?}"
            ),
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

/// Arbitrary bytes as what a client writes to the server's stdin.
pub fn stdio_judge(data: &[u8]) {
    let Some((&bound, input)) = data.split_first() else {
        return;
    };
    let max = 16 + usize::from(bound) * 8;
    let trace = runtime()
        .block_on(mcpvault::server::stdio::replay(input, max))
        .expect("reading memory cannot fail");
    let mut lines = input.split(|&b| b == b'\n').count();
    if input.is_empty() || input.ends_with(b"\n") {
        lines -= 1;
    }
    assert_eq!(
        trace.replies.len() + trace.forwarded.len() + trace.skipped,
        lines,
        "a line was neither answered, forwarded nor skipped"
    );
    for r in &trace.replies {
        let v: Value = serde_json::from_str(r).expect("replies are JSON");
        assert_eq!(v["jsonrpc"], "2.0", "{r}");
        let id = v.get("id").expect("replies carry an id");
        assert!(id.is_null() || id.is_string() || id.is_i64(), "{r}");
        let code = v["error"]["code"].as_i64().expect("an error code");
        assert!(matches!(code, -32700 | -32600 | -32602), "{r}");
        assert!(
            v["error"]["message"].is_string() && v.get("result").is_none(),
            "{r}"
        );
        let id_len = id.to_string().len();
        assert!(r.len() <= 600 + id_len, "reply echoes too much: {r:.300}");
    }
    for f in &trace.forwarded {
        let body = f.strip_suffix(b"\n").unwrap_or(f);
        assert!(
            body.len() <= max,
            "forwarded {} bytes over {max}",
            body.len()
        );
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let v: Value = serde_json::from_slice(body).expect("forwarded lines are JSON");
        if v.get("id").is_some() && v.get("method").is_some() {
            assert!(
                serde_json::from_slice::<ClientJsonRpcMessage>(body).is_ok(),
                "forwarded a request rmcp cannot read"
            );
        }
    }
}
