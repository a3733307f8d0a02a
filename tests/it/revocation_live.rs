//! Live revocation through `MCPVAULT_REVOCATION_FILE`: changes take effect within 2 s
//! without a restart; a malformed, missing or unreadable list denies every token call
//! (fail closed) and says so on stderr, and fixing it restores service.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{dead_url, last_revocation_id, poll_until, text, token_for, Server};
use mcpvault::token::{attenuate, AttenuateSpec};
use serde_json::json;

const SUBJECT: &str = "agentV";
/// How long the server may take to notice a change (the contract: 2 s).
const NOTICE: Duration = Duration::from_secs(2);
/// How long the tests poll before giving up (then the assertion says how long it took).
const POLL: Duration = Duration::from_secs(5);

fn spawn(list: &Path) -> Server {
    let dead = dead_url();
    let list = list.to_str().expect("utf-8 path");
    let mut s = Server::spawn_bare(
        SUBJECT,
        &[
            ("VAULT_ADDR", dead.as_str()),
            ("VAULT_TOKEN", "revocation-test"),
            ("MCPVAULT_REVOCATION_FILE", list),
        ],
    );
    s.initialize();
    s
}

fn kv_read(s: &mut Server, token: &str) -> String {
    text(&s.call("kv.read", json!({"path": "app/x"}), Some(token)))
}

fn allowed(t: &str) -> bool {
    t.starts_with("vault: ")
}

/// Polls until a call with `token` gives a text for which `want` holds; returns how
/// long after `since` that was, or panics with the last text.
fn until(s: &mut Server, token: &str, since: Instant, want: impl Fn(&str) -> bool) -> Duration {
    let mut last = String::new();
    let hit = poll_until(POLL, || {
        last = kv_read(s, token);
        want(&last).then(|| since.elapsed())
    });
    hit.unwrap_or_else(|| panic!("not within {POLL:?}; last answer: {last}"))
}

fn append(path: &Path, line: &str) {
    let mut f = OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open list");
    writeln!(f, "{line}").expect("append");
}

fn child_of(token: &str) -> String {
    attenuate(token, None, &AttenuateSpec::default()).expect("attenuate")
}

#[test]
fn revoking_takes_effect_within_two_seconds_without_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("revoked.txt");
    std::fs::write(&list, "# revoked token ids\n").expect("write");
    let mut s = spawn(&list);
    let parent = token_for(SUBJECT, Some("kv.read"), &[]);
    let child = child_of(&parent);
    assert!(allowed(&kv_read(&mut s, &parent)));
    assert!(allowed(&kv_read(&mut s, &child)));

    // `mcpvault revoke --token CHILD`: the child's last block id.
    append(&list, &last_revocation_id(&child));
    let took = until(&mut s, &child, Instant::now(), |t| t == "denied: revoked");
    assert!(took <= NOTICE, "revocation took {took:?}");
    // Its parent is not revoked.
    assert!(allowed(&kv_read(&mut s, &parent)));

    // Revoking the parent revokes everything derived from it, even tokens made later.
    append(&list, &last_revocation_id(&parent));
    let took = until(&mut s, &parent, Instant::now(), |t| t == "denied: revoked");
    assert!(took <= NOTICE, "revocation took {took:?}");
    assert_eq!(kv_read(&mut s, &child_of(&parent)), "denied: revoked");
    // Other tokens are unaffected.
    assert!(allowed(&kv_read(
        &mut s,
        &token_for(SUBJECT, Some("kv.read"), &[])
    )));
}

#[test]
fn a_malformed_list_fails_closed_and_fixing_it_restores_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("revoked.txt");
    std::fs::write(&list, "").expect("write");
    let mut s = spawn(&list);
    let a = token_for(SUBJECT, Some("kv.read"), &[]);
    let b = token_for(SUBJECT, None, &[]);
    assert!(allowed(&kv_read(&mut s, &a)));

    append(&list, "this is not a hex id");
    let unavailable = |t: &str| t.starts_with("denied: revocation list unavailable");
    let took = until(&mut s, &a, Instant::now(), unavailable);
    assert!(took <= NOTICE, "took {took:?}");
    // Every token is refused, and stderr says why.
    for t in [&a, &b] {
        let text = kv_read(&mut s, t);
        assert!(unavailable(&text), "{text}");
    }
    let err = s.stderr();
    assert!(
        err.contains("revocation list") && err.contains("denying all token calls"),
        "stderr does not say the list is broken:\n{err}"
    );

    std::fs::write(&list, "# fixed\n").expect("write");
    let took = until(&mut s, &a, Instant::now(), allowed);
    assert!(took <= NOTICE, "took {took:?}");
    assert!(allowed(&kv_read(&mut s, &b)));
}

#[test]
fn a_missing_or_unreadable_list_fails_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("revoked.txt");
    // Missing at start.
    let mut s = spawn(&list);
    let a = token_for(SUBJECT, Some("kv.read"), &[]);
    let unavailable = |t: &str| t.starts_with("denied: revocation list unavailable");
    let t = kv_read(&mut s, &a);
    assert!(unavailable(&t), "{t}");
    assert!(s.stderr().contains("unreadable"), "{}", s.stderr());

    std::fs::write(&list, "").expect("write");
    until(&mut s, &a, Instant::now(), allowed);

    // Deleted while running.
    std::fs::remove_file(&list).expect("remove");
    let took = until(&mut s, &a, Instant::now(), unavailable);
    assert!(took <= NOTICE, "took {took:?}");

    // Present but unreadable as a file (a directory; chmod does not stop root).
    std::fs::create_dir(&list).expect("mkdir");
    // Every call for longer than a re-check period stays denied.
    let until = Instant::now() + NOTICE;
    while Instant::now() < until {
        let t = kv_read(&mut s, &a);
        assert!(unavailable(&t), "a directory must not count as a list: {t}");
    }
}

#[test]
fn a_same_size_rewrite_with_the_old_mtime_is_still_noticed() {
    // Tools that copy with `-p`/`-t` keep the source's mtime; ids are all the same
    // length. Size plus mtime cannot see such a change; the status change time can.
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("revoked.txt");
    let decoy = last_revocation_id(&token_for(SUBJECT, None, &[]));
    std::fs::write(&list, format!("{decoy}\n")).expect("write");
    let mtime = std::fs::metadata(&list)
        .and_then(|m| m.modified())
        .expect("mtime");
    let mut s = spawn(&list);
    let a = token_for(SUBJECT, Some("kv.read"), &[]);
    assert!(allowed(&kv_read(&mut s, &a)));

    let id = last_revocation_id(&a);
    assert_eq!(id.len(), decoy.len());
    let f = OpenOptions::new().write(true).open(&list).expect("open");
    (&f).write_all(format!("{id}\n").as_bytes()).expect("write");
    f.set_modified(mtime).expect("set mtime");
    drop(f);
    let took = until(&mut s, &a, Instant::now(), |t| t == "denied: revoked");
    assert!(took <= NOTICE, "took {took:?}");
}

/// The list shared through Vault (`MCPVAULT_REVOCATION_KV`): a revocation written by
/// `mcpvault revoke --vault-kv` reaches two running servers (replicas) within 5 s
/// while the parent keeps working; two revokers at once both land (check-and-set).
#[test]
fn a_revocation_shared_through_vault_reaches_every_replica() {
    use crate::devstack::{bao, unique};
    let list = format!("mcpvault/revoked-{}", unique("t"));
    let env = [("MCPVAULT_REVOCATION_KV", list.as_str())];
    let mut replicas = [Server::start(SUBJECT, &env), Server::start(SUBJECT, &env)];
    let parent = token_for(SUBJECT, None, &[]);
    let child = |n: u64| {
        attenuate(
            &parent,
            None,
            &AttenuateSpec {
                ttl: Some(Duration::from_secs(600 + n)),
                ..AttenuateSpec::default()
            },
        )
        .expect("attenuate")
    };
    let (c1, c2) = (child(1), child(2));
    let kv = |s: &mut Server, t: &str| {
        text(&s.call("kv.list", json!({"prefix": "none-here/"}), Some(t)))
    };
    for s in replicas.iter_mut() {
        assert!(!kv(s, &c1).starts_with("denied"), "before: {}", kv(s, &c1));
    }
    // Two revokers at once, each from its own process.
    let (a, b) = (revoke_shared(&c1, &list), revoke_shared(&c2, &list));
    for p in [a, b] {
        let out = p.wait_with_output().expect("revoke");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (code, body) = bao("GET", &format!("secret/data/{list}"), None);
    assert_eq!(code, 200, "{body}");
    let ids = body["data"]["data"]["ids"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for t in [&c1, &c2] {
        assert!(
            ids.contains(&last_revocation_id(t)),
            "an id was lost: {ids}"
        );
    }
    let started = Instant::now();
    for s in replicas.iter_mut() {
        for t in [&c1, &c2] {
            let seen = poll_until(POLL, || (kv(s, t) == "denied: revoked").then_some(()));
            assert!(seen.is_some(), "not revoked after {:?}", started.elapsed());
        }
        assert!(
            !kv(s, &parent).starts_with("denied"),
            "the parent was revoked too"
        );
    }
}

/// Starts `mcpvault revoke --token TOKEN --vault-kv LIST` against the dev stack's
/// OpenBao (stderr piped, for the caller's assertion).
pub(crate) fn revoke_shared(token: &str, list: &str) -> std::process::Child {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mcpvault"));
    for (k, v) in crate::devstack::stack() {
        cmd.env(k, v);
    }
    cmd.args(["revoke", "--token", token, "--vault-kv", list])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn mcpvault revoke")
}

/// A shared list that cannot be read at start: every token call is refused (there is
/// no last good list to fall back on), and the reason is given.
#[test]
fn an_unreadable_shared_list_fails_closed() {
    let dead = dead_url();
    let mut s = Server::spawn_bare(
        SUBJECT,
        &[
            ("VAULT_ADDR", dead.as_str()),
            ("VAULT_TOKEN", "revocation-test"),
            ("MCPVAULT_REVOCATION_KV", "mcpvault/revoked"),
        ],
    );
    s.initialize();
    let t = kv_read(&mut s, &token_for(SUBJECT, None, &[]));
    assert!(
        t.starts_with(
            "denied: revocation list unavailable, failing closed \
             (shared revocation list mcpvault/revoked: unreachable"
        ),
        "{t}"
    );
}
