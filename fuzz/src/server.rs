//! The harnesses that need the server crate (`mcpvault`):
//!
//! - `args_paths`: the path/prefix/name validators agree with a reference reading of
//!   the rules, and every resource the gate extracts is one they accept.
//! - `stdio_judge`: the stdio guard accounts for every line, answers with well-formed
//!   JSON-RPC errors only, and forwards only bounded messages rmcp can read.
//! - `cli_args`: arbitrary argument vectors through the token CLI's clap definition
//!   and flag parsers (`mcpvault::cli`), then into minting and attenuation: never a
//!   panic; usage errors render, and their redacted form holds no token-like word.
// Shared with the test crate through `#[path]`; not every item is used in both.
#![allow(dead_code)]

use std::ffi::OsString;
use std::sync::OnceLock;

use mcpvault::cli::{self, Cli, Command};
use mcpvault::config::Config;
use mcpvault::paths::{validate_name, validate_path, validate_prefix, MAX_NAME_LEN, MAX_PATH_LEN};
use mcpvault::server::{lease_role, scope_of, Scope};
use mcpvault_token::{attenuate, inspect, mint, parse_public_keys, ResourceKind};
use rmcp::model::ClientJsonRpcMessage;
use serde_json::{json, Map, Value};

use super::token::{fixture, ROOT_PUBLIC, SUBJECT, TOOLS};

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
    C.get_or_init(|| {
        Config::from_vars(&|k: &str| match k {
            "SUBJECT" => Some(SUBJECT.into()),
            "MCPVAULT_PUBLIC_KEY" => Some(ROOT_PUBLIC.into()),
            "AWS_KMS_DEFAULT_KEY_ID" => Some("alias/default".into()),
            _ => None,
        })
        .expect("config")
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
        if let Ok(role) = lease_role(&cfg.db_mount, lease) {
            assert!(validate_path(lease).is_ok());
            assert!(
                !role.is_empty() && !role.contains('/'),
                "lease role {role:?}"
            );
            assert!(lease.starts_with(&format!("{}/creds/{role}/", cfg.db_mount)));
        }
    }
    for tool in TOOLS {
        let Ok(found) = scope_of(tool, &args, cfg) else {
            continue;
        };
        let parts = match found {
            Scope::All(parts) => parts,
            one => vec![one],
        };
        for part in parts {
            let (kind, value) = match part {
                Scope::One(kind, value) => (kind, value),
                Scope::Nothing => {
                    assert!(*tool == "transit.random", "{tool} named no resource");
                    continue;
                }
                // Only principals may be left unnamed (the role's default user).
                Scope::Kind(kind) => {
                    assert_eq!(
                        kind,
                        ResourceKind::SshPrincipal,
                        "{tool}: whole {kind} kind"
                    );
                    continue;
                }
                Scope::All(_) => panic!("{tool}: nested scope"),
            };
            check_resource(tool, kind, &value);
        }
    }
}

fn check_resource(tool: &str, kind: ResourceKind, value: &str) {
    {
        match kind {
            ResourceKind::Kv if tool == "kv.list" => {
                assert!(validate_prefix(value).is_ok(), "{tool}: {value:?}")
            }
            ResourceKind::Kv => assert!(validate_path(value).is_ok(), "{tool}: {value:?}"),
            ResourceKind::Transit | ResourceKind::Ssh => {
                assert!(validate_name(value).is_ok(), "{tool}: {value:?}")
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
            ResourceKind::Http => assert!(
                !value.is_empty() && !value.chars().any(char::is_control),
                "{tool}: {value:?}"
            ),
            ResourceKind::SshPrincipal => assert!(
                !value.is_empty()
                    && value.len() <= 256
                    && !value.contains(',')
                    && !value.chars().any(char::is_control),
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

/// `data`: arguments separated by NUL bytes (not necessarily UTF-8); the first
/// byte's low bits may put a subcommand in front, so most inputs reach one.
pub fn cli_args(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    const SUBCOMMANDS: &[&str] = &[
        "mint",
        "attenuate",
        "verify",
        "inspect",
        "revoke",
        "keygen",
        "audit",
    ];
    let mut args: Vec<OsString> = vec!["mcpvault".into()];
    if let Some(sub) = SUBCOMMANDS.get(usize::from(sel % 8)) {
        args.push((*sub).into());
    }
    args.extend(rest.split(|&b| b == 0).map(os_string));
    let cli = match Cli::parse_args(args) {
        Ok(cli) => cli,
        Err(e) => {
            let shown = cli::one_line(&cli::redact(&e.render().to_string()));
            assert!(!shown.chars().any(char::is_control), "{shown:?}");
            for word in shown.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=-_".contains(c))) {
                assert!(
                    word.len() < 32,
                    "a token-like word survived redaction: {shown:?}"
                );
            }
            return;
        }
    };
    let f = fixture();
    match cli.command {
        Command::Mint {
            tools,
            ttl,
            issuer,
            subject,
            max_delegation_depth,
            resources,
            reveal,
            confirm,
            ..
        } => {
            let Ok(spec) = cli::mint_spec(
                tools.as_deref(),
                ttl,
                issuer,
                subject,
                max_delegation_depth,
                &resources,
                &reveal,
                confirm.as_deref(),
            ) else {
                return;
            };
            assert_eq!(spec.resources.len(), resources.len());
            if let Ok(t) = mint(&f.key, &spec) {
                let info = inspect(&t).expect("a minted token inspects");
                assert_eq!(info.block_count, 1);
            }
        }
        Command::Attenuate {
            tools,
            ttl,
            resources,
            max_delegation_depth,
            reveal,
            confirm,
            ..
        } => {
            let Ok(spec) = cli::attenuate_spec(
                tools.as_deref(),
                ttl,
                &resources,
                max_delegation_depth,
                &reveal,
                confirm.as_deref(),
            ) else {
                return;
            };
            if let Ok(t) = attenuate(&f.bases[1], None, &spec) {
                let info = inspect(&t).expect("an attenuated token inspects");
                assert_eq!(info.block_count, 2);
            }
        }
        Command::Verify {
            pubkey, resource, ..
        } => {
            let _ = parse_public_keys(&pubkey);
            if let Some(r) = resource.as_deref() {
                if let Ok(rr) = cli::request_resource(r) {
                    assert_eq!(format!("{}:{}", rr.kind, rr.value), r);
                }
            }
        }
        Command::Policy {
            tools, resources, ..
        } => {
            // The policy's inputs parse or are refused; the HCL never panics.
            let grants = tools.as_deref().map(mcpvault_token::parse_tools);
            let Ok(patterns) = cli::patterns(&resources) else {
                return;
            };
            if let Some(Ok(grants)) = grants {
                let catalog = mcpvault::server::tool_catalog();
                let granted = mcpvault::policy::granted_tools(Some(&grants), &catalog);
                let m = mcpvault::policy::Mounts::default();
                let h = mcpvault::policy::hcl(SUBJECT, &granted, &patterns, &m);
                assert!(h.contains("auth/token/lookup-self"));
            }
        }
        Command::Keygen { .. }
        | Command::Inspect { .. }
        | Command::Revoke { .. }
        | Command::Audit { .. } => {}
    }
}

#[cfg(unix)]
fn os_string(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(bytes.to_vec())
}

#[cfg(not(unix))]
fn os_string(bytes: &[u8]) -> OsString {
    String::from_utf8_lossy(bytes).into_owned().into()
}
