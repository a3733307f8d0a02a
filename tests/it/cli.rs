//! The `mcpvault` token CLI end to end: keygen -> mint -> attenuate -> verify ->
//! revoke, exit codes, file modes, stdin, and what never appears on stderr.
//! Expiry is tested through the library (tests/token_rules.rs): the CLI cannot make
//! a token that is already expired, and tests do not sleep.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;

fn cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mcpvault"));
    // Backtraces on, so a panic would show; no ambient key.
    c.env("RUST_BACKTRACE", "1")
        .env_remove("MCPVAULT_PUBLIC_KEY")
        .env_remove("RUST_LOG");
    c
}

/// Runs, checks the exit code and that stderr never shows a panic or a backtrace.
fn run_with<S: AsRef<str>>(
    mut c: Command,
    args: &[S],
    stdin: Option<&str>,
    code: i32,
) -> (String, String) {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    c.args(&args);
    if let Some(s) = stdin {
        c.write_stdin(s.to_string());
    }
    let out: Output = c.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    for bad in [
        "panicked",
        "internal error",
        "RUST_BACKTRACE",
        "stack backtrace",
        "note: run with",
    ] {
        assert!(!stderr.contains(bad), "{args:?}: {stderr}");
    }
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

fn run<S: AsRef<str>>(args: &[S], code: i32) -> (String, String) {
    run_with(cmd(), args, None, code)
}

fn ok<S: AsRef<str>>(args: &[S]) -> String {
    run(args, 0).0.trim().to_string()
}

/// Exit 1 with exactly one stderr line `denied: <reason>`; returns the reason.
fn denied<S: AsRef<str>>(args: &[S]) -> String {
    let (stdout, stderr) = run(args, 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
        .trim_end()
        .strip_prefix("denied: ")
        .unwrap_or_else(|| panic!("{stderr}"))
        .to_string()
}

/// Exit 2 with a message; returns stderr.
fn usage<S: AsRef<str>>(args: &[S]) -> String {
    let (stdout, stderr) = run(args, 2);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!stderr.trim().is_empty());
    stderr
}

struct Setup {
    dir: TempDir,
    key: PathBuf,
    pk: String,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("keys/root.json");
        let pk = ok(&["keygen", "--output", s(&key)]);
        Setup { dir, key, pk }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn mint(&self, extra: &[&str]) -> String {
        let mut args = vec!["mint", "--key", s(&self.key)];
        args.extend_from_slice(extra);
        ok(&args)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn keygen_writes_0600_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("a/b/key.json");
    let pk = ok(&["keygen", "--output", s(&key)]);
    assert_eq!(pk.len(), 64);
    assert!(pk.chars().all(|c| c.is_ascii_hexdigit()));
    let body = json(&std::fs::read_to_string(&key).unwrap());
    assert_eq!(body["public_key"], pk.as_str());
    assert_eq!(body["private_key"].as_str().unwrap().len(), 64);
    #[cfg(unix)]
    assert_eq!(mode(&key), 0o600);

    let before = std::fs::read_to_string(&key).unwrap();
    let err = usage(&["keygen", "--output", s(&key)]);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), before);

    let pk2 = ok(&["keygen", "--output", s(&key), "--force"]);
    assert_ne!(pk, pk2);
    assert_eq!(
        json(&std::fs::read_to_string(&key).unwrap())["public_key"],
        pk2.as_str()
    );
    #[cfg(unix)]
    assert_eq!(mode(&key), 0o600);
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(key.parent().unwrap()).unwrap().count(), 1);
    // The private key is never printed.
    assert!(!pk2.contains(body["private_key"].as_str().unwrap()));
}

#[test]
fn keygen_default_path_is_under_home() {
    let home = tempfile::tempdir().unwrap();
    let mut c = cmd();
    c.env("HOME", home.path());
    let (pk, _) = run_with(c, &["keygen"], None, 0);
    let key = home.path().join(".mcpvault/keys/default.json");
    assert_eq!(
        json(&std::fs::read_to_string(&key).unwrap())["public_key"],
        pk.trim()
    );
    #[cfg(unix)]
    assert_eq!(mode(&key), 0o600);
}

#[test]
fn keygen_mint_attenuate_verify_revoke() {
    let st = Setup::new();
    let t = st.mint(&[
        "--tools",
        "kv.read,kv.list,transit.*",
        "--subject",
        "agentA",
        "--issuer",
        "ops",
        "--resource",
        "kv:app/*",
        "--max-delegation-depth",
        "2",
    ]);
    assert_eq!(t.lines().count(), 1);
    assert!(t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)));

    let info = json(&ok(&["inspect", "--token", &t]));
    assert_eq!(info["block_count"], 1);
    assert_eq!(info["revocation_ids"].as_array().unwrap().len(), 1);
    assert!(info["blocks"][0]["facts"]
        .as_array()
        .unwrap()
        .contains(&r#"subject("agentA")"#.into()));

    let child = ok(&[
        "attenuate",
        "--token",
        &t,
        "--pubkey",
        &st.pk,
        "--tools",
        "kv.read,kv.list",
        "--ttl",
        "600",
        "--resource",
        "kv:app/public/*",
    ]);
    let v = |token: &str, tool: &str, extra: &[&str]| -> Vec<String> {
        let mut a = vec![
            "verify", "--token", token, "--pubkey", &st.pk, "--tool", tool,
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect()
    };
    let facts = json(&ok(&v(
        &child,
        "kv.read",
        &["--resource", "kv:app/public/a", "--subject", "agentA"],
    )));
    assert_eq!(
        facts["tools"],
        serde_json::json!(["kv.list", "kv.read", "transit.*"])
    );
    assert_eq!(facts["tool_wildcard"], false);
    assert_eq!(facts["issuer"], "ops");
    assert_eq!(facts["subject"], "agentA");
    assert_eq!(facts["delegation_depth"], 1);
    assert_eq!(facts["max_delegation_depth"], 2);
    assert!(facts["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(facts["revocation_ids"].as_array().unwrap().len(), 2);

    let deny = |a: Vec<String>| denied(&a);
    assert_eq!(
        deny(v(&child, "transit.encrypt", &[])),
        "tool not granted: transit.encrypt \
         (token admits kv.list, kv.read, transit.*; narrowed to kv.read, kv.list)"
    );
    assert_eq!(
        deny(v(&child, "kv.read", &["--resource", "kv:app/private"])),
        "resource not granted: kv:app/private (token admits kv:app/*; narrowed to kv:app/public/*)"
    );
    assert!(deny(v(&child, "kv.read", &["--subject", "agentB"])).starts_with("wrong subject"));
    // The parent still reaches what the child cannot.
    ok(&v(&t, "transit.encrypt", &[]));

    // Revoke the child: it dies, the parent lives.
    let list = st.path("revoked.txt");
    let id = ok(&["revoke", "--token", &child, "--list", s(&list)]);
    let child_ids = json(&ok(&["inspect", "--token", &child]))["revocation_ids"].clone();
    assert_eq!(id, child_ids[1]);
    assert_eq!(std::fs::read_to_string(&list).unwrap(), format!("{id}\n"));
    let with_list = |token: &str| v(token, "kv.read", &["--revocation-list", s(&list)]);
    assert_eq!(deny(with_list(&child)), "revoked");
    let grandchild = ok(&["attenuate", "--token", &child]);
    assert_eq!(deny(with_list(&grandchild)), "revoked");
    ok(&with_list(&t));
    // Revoking again does not duplicate the line.
    ok(&["revoke", "--token", &child, "--list", s(&list)]);
    assert_eq!(std::fs::read_to_string(&list).unwrap().lines().count(), 1);
    // --all takes the whole chain down.
    let all = ok(&["revoke", "--token", &child, "--list", s(&list), "--all"]);
    assert_eq!(all.lines().count(), 2);
    assert_eq!(std::fs::read_to_string(&list).unwrap().lines().count(), 2);
    assert_eq!(deny(with_list(&t)), "revoked");

    // Depth: the minted cap of 2.
    let d2 = ok(&["attenuate", "--token", &ok(&["attenuate", "--token", &t])]);
    ok(&v(&d2, "kv.read", &[]));
    let d3 = ok(&["attenuate", "--token", &d2]);
    assert!(deny(v(&d3, "kv.read", &[])).starts_with("delegation too deep"));
    // An attenuation cap.
    let capped = ok(&["attenuate", "--token", &t, "--max-delegation-depth", "0"]);
    let below = ok(&["attenuate", "--token", &capped]);
    assert!(deny(v(&below, "kv.read", &[])).starts_with("delegation too deep"));
}

#[test]
fn stdin_tokens_and_encodings() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let st = Setup::new();
    let t = st.mint(&["--tools", "kv.read"]);
    let input = format!("{t}\n");
    let (out, _) = run_with(cmd(), &["inspect", "--token", "-"], Some(&input), 0);
    assert_eq!(json(&out)["block_count"], 1);
    let (child, _) = run_with(
        cmd(),
        &["attenuate", "--token", "-", "--tools", "kv.read"],
        Some(&input),
        0,
    );
    let (facts, _) = run_with(
        cmd(),
        &[
            "verify", "--token", "-", "--pubkey", &st.pk, "--tool", "kv.read",
        ],
        Some(&child),
        0,
    );
    assert_eq!(json(&facts)["delegation_depth"], 1);
    let list = st.path("r.txt");
    run_with(
        cmd(),
        &["revoke", "--token", "-", "--list", s(&list)],
        Some(&child),
        0,
    );
    assert_eq!(std::fs::read_to_string(&list).unwrap().lines().count(), 1);
    // Empty stdin is "no token".
    let (_, err) = run_with(
        cmd(),
        &[
            "verify", "--token", "-", "--pubkey", &st.pk, "--tool", "kv.read",
        ],
        Some(""),
        1,
    );
    assert_eq!(err, "denied: no token\n");

    // URL-safe, unpadded: accepted; output is standard base64.
    let url = URL_SAFE_NO_PAD.encode(STANDARD.decode(&t).unwrap());
    ok(&[
        "verify", "--token", &url, "--pubkey", &st.pk, "--tool", "kv.read",
    ]);
    let again = ok(&["attenuate", "--token", &url]);
    assert!(STANDARD.decode(&again).is_ok());
    // A token that starts with '-' (URL-safe alphabet) is still a value.
    let dash = format!("-{}", &url[1..]);
    let r = denied(&[
        "verify", "--token", &dash, "--pubkey", &st.pk, "--tool", "kv.read",
    ]);
    assert!(
        r.starts_with("malformed token") || r == "bad signature",
        "{r}"
    );
}

#[test]
fn key_rotation_and_env_public_key() {
    let old = Setup::new();
    let new = Setup::new();
    let both = format!("{},{}", old.pk, new.pk);
    for st in [&old, &new] {
        let t = st.mint(&[]);
        ok(&["verify", "--token", &t, "--pubkey", &both, "--tool", "x"]);
        let mut c = cmd();
        c.env("MCPVAULT_PUBLIC_KEY", &both);
        run_with(c, &["verify", "--token", &t, "--tool", "x"], None, 0);
    }
    let t = old.mint(&[]);
    assert_eq!(
        denied(&["verify", "--token", &t, "--pubkey", &new.pk, "--tool", "x"]),
        "bad signature"
    );
    // attenuate --pubkey checks the signature first.
    assert_eq!(
        denied(&["attenuate", "--token", &t, "--pubkey", &new.pk]),
        "bad signature"
    );
    ok(&["attenuate", "--token", &t, "--pubkey", &both]);
}

#[test]
fn bad_usage_and_unreadable_input_exit_2() {
    let st = Setup::new();
    let t = st.mint(&["--subject", "agentA"]);
    let truncated = &t[..t.len() / 2];
    let private = json(&std::fs::read_to_string(&st.key).unwrap())["private_key"]
        .as_str()
        .unwrap()
        .to_string();

    let missing = st.path("nope.json");
    let e = usage(&["mint", "--key", s(&missing)]);
    assert!(e.contains("cannot read key file"), "{e}");
    // A damaged key file: the message gives a position, not the content.
    let broken = st.path("broken.json");
    std::fs::write(&broken, format!("{{\"private_key\": {private}}}")).unwrap();
    let e = usage(&["mint", "--key", s(&broken)]);
    assert!(!e.contains(&private[..16]), "{e}");
    let e = usage(&["verify", "--token", &t, "--pubkey", "zz", "--tool", "x"]);
    assert!(e.contains("not hex"), "{e}");
    usage(&["verify", "--token", &t, "--pubkey", "abcd", "--tool", "x"]);
    usage(&["verify", "--token", &t, "--pubkey", &st.pk]); // --tool missing
    usage(&[
        "verify",
        "--token",
        &t,
        "--pubkey",
        &st.pk,
        "--tool",
        "x",
        "--resource",
        "vault:x",
    ]);
    let e = usage(&[
        "verify",
        "--token",
        &t,
        "--pubkey",
        &st.pk,
        "--tool",
        "x",
        "--revocation-list",
        s(&st.path("absent.txt")),
    ]);
    assert!(e.contains("revocation list"), "{e}");
    let bad_list = st.path("bad.txt");
    std::fs::write(&bad_list, "not-hex\n").unwrap();
    usage(&[
        "verify",
        "--token",
        &t,
        "--pubkey",
        &st.pk,
        "--tool",
        "x",
        "--revocation-list",
        s(&bad_list),
    ]);
    usage(&["mint", "--key", s(&st.key), "--tools", ""]);
    usage(&["mint", "--key", s(&st.key), "--tools", "a b"]);
    usage(&["mint", "--key", s(&st.key), "--resource", "kv"]);
    usage(&["mint", "--key", s(&st.key), "--resource", "nosuch:x"]);
    usage(&["mint", "--key", s(&st.key), "--ttl", "0"]);
    usage(&["mint", "--key", s(&st.key), "--ttl", "soon"]);
    usage(&[
        "mint",
        "--key",
        s(&st.key),
        "--max-delegation-depth",
        "1000",
    ]);
    usage(&["attenuate", "--token", &t, "--resource", "kv:a*b"]);
    usage(&["frobnicate"]);
    usage::<&str>(&[]);

    // A truncated token: unreadable for inspect/attenuate/revoke, a denial for verify.
    for sub in [
        vec!["inspect", "--token", truncated],
        vec!["attenuate", "--token", truncated],
        vec![
            "revoke",
            "--token",
            truncated,
            "--list",
            s(&st.path("r.txt")),
        ],
    ] {
        let e = usage(&sub);
        assert!(e.contains("unreadable token"), "{e}");
        assert!(!e.contains(truncated), "{e}");
    }
    assert!(!st.path("r.txt").exists());
    let r = denied(&[
        "verify", "--token", truncated, "--pubkey", &st.pk, "--tool", "x",
    ]);
    assert!(r.starts_with("malformed token"), "{r}");
    assert_eq!(
        denied(&["verify", "--token", "", "--pubkey", &st.pk, "--tool", "x"]),
        "no token"
    );

    // A token pasted without --token is not echoed by the usage error.
    let e = usage(&["verify", &t, "--pubkey", &st.pk, "--tool", "x"]);
    assert!(!e.contains(&t[..40]), "{e}");
    assert!(e.contains("<redacted>"), "{e}");
}

/// Regression: `mint --resource 'kv:é'` sliced the pattern inside its last character
/// and aborted with "internal error". Non-ASCII (and non-UTF-8) input anywhere is a
/// value or a usage error, never a panic.
#[test]
fn non_ascii_input_never_panics() {
    let st = Setup::new();
    let t = st.mint(&[
        "--subject",
        "agént",
        "--resource",
        "kv:é",
        "--resource",
        "transit:ключ*",
    ]);
    let verify = |resource: &str| {
        vec![
            "verify".to_string(),
            "--token".into(),
            t.clone(),
            "--pubkey".into(),
            st.pk.clone(),
            "--tool".into(),
            "kv.read".into(),
            "--subject".into(),
            "agént".into(),
            "--resource".into(),
            resource.into(),
        ]
    };
    let facts = json(&ok(&verify("kv:é")));
    assert_eq!(facts["subject"], "agént");
    assert_eq!(
        facts["resources"],
        serde_json::json!(["kv:é", "transit:ключ*"])
    );
    ok(&verify("transit:ключ-1"));
    assert_eq!(
        denied(&verify("kv:éé")),
        "resource not granted: kv:éé (token admits kv:é)"
    );
    assert_eq!(
        denied(&verify("kv:e")),
        "resource not granted: kv:e (token admits kv:é)"
    );
    let narrowed = ok(&[
        "attenuate",
        "--token",
        &t,
        "--resource",
        "kv:é*",
        "--tools",
        "kv.*",
    ]);
    assert!(!narrowed.is_empty());

    for bad in ["kv:é*é", "kv:*é", "é:x", "kv:\u{7f}é", "é"] {
        let e = usage(&["mint", "--key", s(&st.key), "--resource", bad]);
        assert!(e.contains("invalid resource"), "{bad}: {e}");
        let e = usage(&["attenuate", "--token", &t, "--resource", bad]);
        assert!(e.contains("invalid resource"), "{bad}: {e}");
    }
    for bad in ["é", "kv.é", "é.*", "kv.read,ü"] {
        let e = usage(&["mint", "--key", s(&st.key), "--tools", bad]);
        assert!(e.contains("invalid tool name"), "{bad}: {e}");
    }
    usage(&[
        "verify",
        "--token",
        &t,
        "--pubkey",
        &st.pk,
        "--tool",
        "x",
        "--resource",
        "é:x",
    ]);
    usage(&["verify", "--token", &t, "--pubkey", "é", "--tool", "x"]);
    usage(&["inspect", "--token", "é"]);
    usage(&["inspect", "--token", "ééééééééééééééééééééééééééééééééé"]);
    usage(&["revoke", "--token", "é", "--list", s(&st.path("ids.txt"))]);
    usage(&["mint", "--key", s(&st.key), "--subject", &"é".repeat(129)]);
    usage(&["mint", "--key", s(&st.key), "--ttl", "١٢"]);

    // Arguments that are not UTF-8 at all: clap refuses them (exit 2).
    #[cfg(unix)]
    {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let out = cmd()
            .args(["mint", "--key", s(&st.key), "--resource"])
            .arg(OsStr::from_bytes(b"kv:\xff\xfe"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            !stderr.contains("internal error") && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
}

#[test]
fn never_echoes_tokens_or_keys() {
    let st = Setup::new();
    let t = st.mint(&["--subject", "agentA", "--tools", "kv.read"]);
    let private = json(&std::fs::read_to_string(&st.key).unwrap())["private_key"]
        .as_str()
        .unwrap()
        .to_string();
    // (args, accepted exit codes): a private key used as a public key is either not a
    // curve point (2) or the wrong key (1).
    let cases: Vec<(Vec<&str>, &[i32])> = vec![
        (
            vec![
                "verify", "--token", &t, "--pubkey", &st.pk, "--tool", "kv.write",
            ],
            &[1],
        ),
        (
            vec![
                "verify",
                "--token",
                &t,
                "--pubkey",
                &st.pk,
                "--tool",
                "kv.read",
                "--subject",
                "b",
            ],
            &[1],
        ),
        (
            vec![
                "verify", "--token", &t, "--pubkey", &private, "--tool", "kv.read",
            ],
            &[1, 2],
        ),
        (
            vec!["attenuate", "--token", &t, "--tools", "bad tool"],
            &[2],
        ),
        (vec!["inspect", "--token", &t[5..]], &[2]),
        (vec!["mint", "--key", s(&st.key), "--subject", ""], &[0]),
    ];
    for (args, codes) in cases {
        let out = cmd().args(&args).output().unwrap();
        let code = out.status.code().unwrap();
        assert!(codes.contains(&code), "{args:?}: {out:?}");
        let (_, err) = run(&args, code);
        assert!(!err.contains(&t[..40]), "{args:?}: {err}");
        assert!(!err.contains(&private), "{args:?}: {err}");
    }
}

#[test]
fn help_says_what_it_does() {
    let help = ok(&["revoke", "--help"]);
    assert!(help.contains("no signature check"), "{help}");
    let top = ok(&["--help"]);
    for sub in ["keygen", "mint", "attenuate", "inspect", "verify", "revoke"] {
        assert!(top.contains(sub), "{top}");
    }
    assert!(top.contains("Exit status"), "{top}");
}

#[test]
fn exposed_key_file_warns_but_works() {
    let st = Setup::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&st.key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (out, err) = run(&["mint", "--key", s(&st.key)], 0);
        assert!(!out.trim().is_empty());
        assert!(err.contains("readable by other users"), "{err}");
    }
}

#[test]
fn audit_verify_accepts_an_intact_chain_and_names_the_first_broken_line() {
    use mcpvault::audit::{AuditLog, Event};
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path).unwrap();
    for (tool, decision) in [
        ("kv.read", "allow"),
        ("kv.write", "deny"),
        ("kv.list", "allow"),
    ] {
        log.record(&Event {
            subject: "agentA",
            tool,
            resource: Some("kv:app/x".into()),
            decision,
            reason: None,
            token_id: None,
            phase: None,
            outcome: None,
            backend_ms: None,
            request_id: "1".into(),
        })
        .unwrap();
    }
    drop(log);
    let p = path.to_str().unwrap();
    let out = ok(&["audit", "verify", p]);
    assert!(out.contains("3 entries"), "{out}");

    // Turning a deny into an allow is exactly what the chain must catch.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"deny\"", "\"allow\"", 1)).unwrap();
    let (_, err) = run(&["audit", "verify", p], 1);
    assert!(err.contains("line 2"), "{err}");

    let (_, err) = run(&["audit", "verify", "/nonexistent/audit.log"], 2);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn reveal_is_minted_shown_narrowed_and_never_added() {
    let st = Setup::new();
    let t = st.mint(&[
        "--subject",
        "a",
        "--reveal",
        "kv:app/*",
        "--reveal",
        "db:ro",
    ]);
    let facts = json(&ok(&[
        "verify", "--token", &t, "--pubkey", &st.pk, "--tool", "kv.read",
    ]));
    assert_eq!(facts["reveal"], serde_json::json!(["db:ro", "kv:app/*"]));
    let info = json(&ok(&["inspect", "--token", &t]));
    assert!(
        info["blocks"][0]["facts"]
            .as_array()
            .expect("facts")
            .iter()
            .any(|f| f == "reveal(\"kv\", \"app/*\")"),
        "{info}"
    );
    // A token without reveal prints no `reveal` field (MCPVault's shape).
    let plain = st.mint(&["--subject", "a"]);
    let facts = json(&ok(&[
        "verify", "--token", &plain, "--pubkey", &st.pk, "--tool", "kv.read",
    ]));
    assert!(facts.get("reveal").is_none(), "{facts}");
    // attenuate --reveal: a list narrows, `none` drops; both append one check.
    for arg in ["kv:app/public/*", "none"] {
        let n = ok(&["attenuate", "--token", &t, "--reveal", arg]);
        let info = json(&ok(&["inspect", "--token", &n]));
        assert_eq!(info["block_count"], 2);
        let checks = info["blocks"][1]["checks"].to_string();
        assert!(checks.contains("request_purpose"), "{checks}");
    }
    let bad = usage(&["mint", "--key", s(&st.key), "--reveal", "vault:x"]);
    assert!(bad.contains("invalid resource"), "{bad}");
}

#[test]
fn confirm_is_minted_added_by_attenuation_and_never_removed() {
    let st = Setup::new();
    let t = st.mint(&["--subject", "a", "--confirm", "kv.delete"]);
    let verify = |tok: &str| {
        json(&ok(&[
            "verify", "--token", tok, "--pubkey", &st.pk, "--tool", "kv.read",
        ]))
    };
    assert_eq!(verify(&t)["confirm"], serde_json::json!(["kv.delete"]));
    let info = json(&ok(&["inspect", "--token", &t]));
    assert!(
        info["blocks"][0]["facts"]
            .to_string()
            .contains("confirm(\\\"kv.delete\\\")"),
        "{info}"
    );
    // Attenuation adds (a family here); a later attenuation without it keeps both.
    let more = ok(&["attenuate", "--token", &t, "--confirm", "transit.*"]);
    let quiet = ok(&["attenuate", "--token", &more, "--ttl", "60"]);
    assert_eq!(
        verify(&quiet)["confirm"],
        serde_json::json!(["kv.delete", "transit.*"])
    );
    // No requirement, no field (MCPVault's shape).
    let plain = st.mint(&["--subject", "a"]);
    assert!(verify(&plain).get("confirm").is_none());
    let bad = usage(&["mint", "--key", s(&st.key), "--confirm", "kv read"]);
    assert!(bad.contains("invalid tool name"), "{bad}");
}
