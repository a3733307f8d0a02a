//! Rate limits at the gate: per token and per subject, with a clear `rate limited`
//! tool error. The refill is so slow (0.01 calls/s) that the outcome does not depend
//! on how fast the calls run.

use crate::harness::{dead_url, text, token_for, Server};
use mcpvault::token::{attenuate, parse_tools, AttenuateSpec};
use serde_json::json;

const SUBJECT: &str = "agentR";

fn spawn(extra: &[(&str, &str)]) -> Server {
    let dead = dead_url();
    let mut env = vec![
        ("VAULT_ADDR", dead.as_str()),
        ("VAULT_TOKEN", "ratelimit-test"),
    ];
    env.extend_from_slice(extra);
    let mut s = Server::spawn_bare(SUBJECT, &env);
    s.initialize();
    s
}

/// The call's text: a `vault:` error means it passed the gate.
fn kv_read(s: &mut Server, token: &str) -> String {
    text(&s.call("kv.read", json!({"path": "app/x"}), Some(token)))
}

fn assert_allowed(t: &str) {
    assert!(t.starts_with("vault: "), "should pass the gate: {t}");
}

#[test]
fn a_token_over_its_burst_is_rate_limited_and_others_are_not() {
    let mut s = spawn(&[("MCPVAULT_RATE_LIMIT", "0.01/3")]);
    let a = token_for(SUBJECT, Some("kv.read"), &[]);
    let b = token_for(SUBJECT, Some("kv.read"), &[]);
    for _ in 0..3 {
        assert_allowed(&kv_read(&mut s, &a));
    }
    let t = kv_read(&mut s, &a);
    assert!(t.starts_with("denied: rate limited (token)"), "{t}");
    assert!(t.contains("retry in"), "{t}");
    // Another token has its own bucket.
    assert_allowed(&kv_read(&mut s, &b));
    // A denial at the gate does not spend the bucket: b still has two calls.
    let t = text(&s.call("kv.write", json!({"path": "p", "data": {}}), Some(&b)));
    assert!(t.starts_with("denied: tool not granted"), "{t}");
    assert_allowed(&kv_read(&mut s, &b));
    assert_allowed(&kv_read(&mut s, &b));
    assert!(kv_read(&mut s, &b).starts_with("denied: rate limited (token)"));
}

#[test]
fn attenuating_a_limited_token_does_not_refill_its_bucket() {
    // Anyone holding a token can attenuate it offline into as many new tokens as they
    // like: each has a new last-block id, so a bucket per last block would be no limit.
    let mut s = spawn(&[("MCPVAULT_RATE_LIMIT", "0.01/3")]);
    let parent = token_for(SUBJECT, Some("kv.read"), &[]);
    for _ in 0..3 {
        assert_allowed(&kv_read(&mut s, &parent));
    }
    for i in 0..3 {
        let child = attenuate(
            &parent,
            None,
            &AttenuateSpec {
                tools: Some(parse_tools("kv.read").expect("tools")),
                ..AttenuateSpec::default()
            },
        )
        .expect("attenuate");
        let t = kv_read(&mut s, &child);
        assert!(
            t.starts_with("denied: rate limited (token)"),
            "child {i} of an exhausted token: {t}"
        );
    }
}

#[test]
fn the_subject_limit_covers_all_tokens() {
    let mut s = spawn(&[
        ("MCPVAULT_RATE_LIMIT", "0"),
        ("MCPVAULT_SUBJECT_RATE_LIMIT", "0.01/4"),
    ]);
    for _ in 0..4 {
        let fresh = token_for(SUBJECT, Some("kv.read"), &[]);
        assert_allowed(&kv_read(&mut s, &fresh));
    }
    let fresh = token_for(SUBJECT, Some("kv.read"), &[]);
    let t = kv_read(&mut s, &fresh);
    assert!(t.starts_with("denied: rate limited (subject)"), "{t}");
}

#[test]
fn a_bad_rate_limit_setting_stops_the_server_at_start() {
    let mut s = Server::spawn_bare(SUBJECT, &[("MCPVAULT_RATE_LIMIT", "fast")]);
    let code = {
        s.send_raw(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
        s.close()
    };
    assert_eq!(code, Some(2));
}

#[test]
fn a_runaway_token_does_not_drain_the_subject_budget() {
    let mut s = spawn(&[
        ("MCPVAULT_RATE_LIMIT", "0.01/1"),
        ("MCPVAULT_SUBJECT_RATE_LIMIT", "0.01/3"),
    ]);
    let runaway = token_for(SUBJECT, Some("kv.read"), &[]);
    assert_allowed(&kv_read(&mut s, &runaway));
    for _ in 0..10 {
        let t = kv_read(&mut s, &runaway);
        assert!(t.starts_with("denied: rate limited (token)"), "{t}");
    }
    // The ten refused calls cost the subject nothing: two calls are left.
    for _ in 0..2 {
        assert_allowed(&kv_read(&mut s, &token_for(SUBJECT, Some("kv.read"), &[])));
    }
    let t = kv_read(&mut s, &token_for(SUBJECT, Some("kv.read"), &[]));
    assert!(t.starts_with("denied: rate limited (subject)"), "{t}");
}
