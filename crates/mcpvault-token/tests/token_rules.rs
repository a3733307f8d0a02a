//! Token semantics: attenuation only narrows, depth, revocation, bounded evaluation,
//! every denial reason, key rotation, encodings.

mod token_common;

use std::collections::HashMap;
use std::time::Duration;

use biscuit_auth::builder::{BlockBuilder, Term};
use biscuit_auth::{KeyPair, UnverifiedBiscuit};
use mcpvault_token::{
    self as token, decode_token, encode_token, AttenuateSpec, Denial, MintSpec, Request,
    ResourceKind, RevocationSet, Verifier, VerifierConfig, DEFAULT_MAX_DELEGATION_DEPTH,
    HARD_MAX_DELEGATION_DEPTH, MAX_TOKEN_BYTES,
};
use token_common::*;

const KV: ResourceKind = ResourceKind::Kv;
const TRANSIT: ResourceKind = ResourceKind::Transit;

#[test]
fn facts_and_rules_in_later_blocks_never_grant() {
    let k = key();
    let v = verifier(&[&k]);
    let t = mint(
        &k,
        MintSpec {
            tools: tools("kv.read"),
            subject: Some("agentA".into()),
            max_delegation_depth: 3,
            resources: res(&["kv:app/*"]),
            ..MintSpec::default()
        },
    );
    let hostile = append_raw(
        &t,
        r#"
        tool("kv.write"); tool("transit.encrypt"); tool_wildcard("*"); tool_prefix("");
        subject("agentB"); issuer("evil"); max_delegation_depth(100); delegation_depth(0);
        resource("kv", "*"); resource("transit", "*");
        tool($x) <- requested_tool($x);
        tool_wildcard("*") <- requested_tool($x);
        tool_prefix("") <- requested_tool($x);
        subject("agentB") <- requested_tool($x);
        "#,
    );
    for tool in ["kv.write", "transit.encrypt", "anything"] {
        assert_eq!(
            check(&v, &hostile, &req(tool)),
            Err(Denial::ToolNotGranted(tool.into())),
            "{tool}"
        );
    }
    assert!(matches!(
        check(&v, &hostile, &req_res("kv.read", KV, "other/x")),
        Err(Denial::ResourceNotGranted(_))
    ));
    let subject_b = Request {
        subject: Some("agentB"),
        ..req("kv.read")
    };
    assert!(matches!(
        check(&v, &hostile, &subject_b),
        Err(Denial::WrongSubject(_))
    ));
    // What the token grants is unchanged and still readable.
    let facts = check(&v, &hostile, &req_res("kv.read", KV, "app/x")).unwrap();
    assert_eq!(facts.tools, vec!["kv.read"]);
    assert!(!facts.tool_wildcard);
    assert_eq!(facts.subject.as_deref(), Some("agentA"));
    assert_eq!(facts.issuer.as_deref(), Some("mcpvault"));
    assert_eq!(facts.max_delegation_depth, 3);
    assert_eq!(facts.resources, vec!["kv:app/*"]);
    assert_eq!(facts.delegation_depth, 1);
}

#[test]
fn later_blocks_cannot_satisfy_earlier_checks() {
    let k = key();
    let v = verifier(&[&k]);
    let t = mint(
        &k,
        MintSpec {
            ttl: Duration::from_secs(60),
            ..MintSpec::default()
        },
    );
    // Narrowed to one tool and no further delegation.
    let narrowed = attenuate(
        &t,
        AttenuateSpec {
            tools: tools("kv.read"),
            max_delegation_depth: Some(0),
            ..AttenuateSpec::default()
        },
    );
    // A later block brings the facts those checks look at.
    let hostile = append_raw(
        &narrowed,
        r#"time(1970-01-01T00:00:00Z); requested_tool("kv.write"); depth(0); request_kind("none");"#,
    );
    assert!(matches!(
        check(&v, &hostile, &req("kv.read")),
        Err(Denial::DelegationTooDeep(_))
    ));
    let late = Request {
        now: later(3600),
        ..req("kv.read")
    };
    assert_eq!(check(&v, &narrowed, &late), Err(Denial::Expired));
    let one_block = append_raw(&t, "time(1970-01-01T00:00:00Z);");
    assert_eq!(check(&v, &one_block, &late), Err(Denial::Expired));
    let tool_block = append_raw(
        &attenuate(
            &t,
            AttenuateSpec {
                tools: tools("kv.read"),
                ..AttenuateSpec::default()
            },
        ),
        r#"requested_tool("kv.write");"#,
    );
    assert_eq!(
        check(&v, &tool_block, &req("kv.write")),
        Err(Denial::ToolNotGranted("kv.write".into()))
    );
    assert!(allowed(&v, &tool_block, "kv.read"));
}

#[test]
fn multi_tool_attenuation_keeps_exactly_the_listed_tools() {
    let k = key();
    let v = verifier(&[&k]);
    let t = mint(&k, MintSpec::default());
    let ab = attenuate(
        &t,
        AttenuateSpec {
            tools: tools("kv.read,kv.write"),
            ..AttenuateSpec::default()
        },
    );
    assert!(allowed(&v, &ab, "kv.read"));
    assert!(allowed(&v, &ab, "kv.write"));
    assert!(!allowed(&v, &ab, "kv.list"));
    assert!(!allowed(&v, &ab, "kv.rea"));
    let b = attenuate(
        &ab,
        AttenuateSpec {
            tools: tools("kv.write,kv.list"),
            ..AttenuateSpec::default()
        },
    );
    assert!(!allowed(&v, &b, "kv.read"));
    assert!(allowed(&v, &b, "kv.write"));
    assert!(!allowed(&v, &b, "kv.list"), "attenuation widened the grant");

    // The same on a token granting several exact tools (the trap in MCPVault's design:
    // a check on the token's `tool` facts passes as soon as one listed tool exists).
    let exact = mint(
        &k,
        MintSpec {
            tools: tools("a,b,c"),
            ..MintSpec::default()
        },
    );
    let only_a = attenuate(
        &exact,
        AttenuateSpec {
            tools: tools("a"),
            ..AttenuateSpec::default()
        },
    );
    assert!(allowed(&v, &only_a, "a"));
    assert!(!allowed(&v, &only_a, "b"));
    assert!(!allowed(&v, &only_a, "c"));
}

#[test]
fn family_grants() {
    let k = key();
    let v = verifier(&[&k]);
    let kv = mint(
        &k,
        MintSpec {
            tools: tools("kv.*,transit.encrypt"),
            ..MintSpec::default()
        },
    );
    for ok in ["kv.read", "kv.write", "kv.destroy", "transit.encrypt"] {
        assert!(allowed(&v, &kv, ok), "{ok}");
    }
    for no in [
        "kv",
        "kvx.read",
        "kv-read",
        "transit.decrypt",
        "db.issue_creds",
        "x.kv.read",
    ] {
        assert_eq!(
            check(&v, &kv, &req(no)),
            Err(Denial::ToolNotGranted(no.into())),
            "{no}"
        );
    }
    let facts = check(&v, &kv, &req("kv.read")).unwrap();
    assert_eq!(facts.tools, vec!["kv.*", "transit.encrypt"]);

    // Attenuating a family to one member, and a wildcard to a family.
    let one = attenuate(
        &kv,
        AttenuateSpec {
            tools: tools("kv.read"),
            ..AttenuateSpec::default()
        },
    );
    assert!(allowed(&v, &one, "kv.read"));
    assert!(!allowed(&v, &one, "kv.write"));
    assert!(!allowed(&v, &one, "transit.encrypt"));
    let all = mint(&k, MintSpec::default());
    let fam = attenuate(
        &all,
        AttenuateSpec {
            tools: tools("transit.*,db.issue_creds"),
            ..AttenuateSpec::default()
        },
    );
    assert!(allowed(&v, &fam, "transit.sign"));
    assert!(allowed(&v, &fam, "db.issue_creds"));
    assert!(!allowed(&v, &fam, "db.revoke"));
    assert!(!allowed(&v, &fam, "kv.read"));
    assert!(!allowed(&v, &fam, "transit"));
    // A family attenuation of an exact grant does not add the family.
    let narrow_then_family = attenuate(
        &one,
        AttenuateSpec {
            tools: tools("kv.*"),
            ..AttenuateSpec::default()
        },
    );
    assert!(allowed(&v, &narrow_then_family, "kv.read"));
    assert!(!allowed(&v, &narrow_then_family, "kv.write"));
}

#[test]
fn depth_is_counted_and_capped() {
    let k = key();
    let v = verifier(&[&k]);
    let mut t = mint(
        &k,
        MintSpec {
            max_delegation_depth: 2,
            ..MintSpec::default()
        },
    );
    for depth in 0..=2u32 {
        let facts = check(&v, &t, &req("x")).unwrap();
        assert_eq!(facts.delegation_depth, depth);
        assert_eq!(facts.max_delegation_depth, 2);
        t = plain_block(&t);
    }
    assert!(matches!(
        check(&v, &t, &req("x")),
        Err(Denial::DelegationTooDeep(_))
    ));

    // Cap 0: the minted token itself only.
    let zero = mint(
        &k,
        MintSpec {
            max_delegation_depth: 0,
            ..MintSpec::default()
        },
    );
    assert!(allowed(&v, &zero, "x"));
    assert!(matches!(
        check(&v, &plain_block(&zero), &req("x")),
        Err(Denial::DelegationTooDeep(_))
    ));

    // An attenuation cap of N admits exactly N further blocks.
    let roomy = mint(
        &k,
        MintSpec {
            max_delegation_depth: 10,
            ..MintSpec::default()
        },
    );
    let capped = attenuate(
        &plain_block(&roomy),
        AttenuateSpec {
            max_delegation_depth: Some(2),
            ..AttenuateSpec::default()
        },
    ); // depth 2
    let d3 = plain_block(&capped);
    let d4 = plain_block(&d3);
    assert!(allowed(&v, &capped, "x"));
    assert!(allowed(&v, &d3, "x"));
    assert!(allowed(&v, &d4, "x"));
    assert!(matches!(
        check(&v, &plain_block(&d4), &req("x")),
        Err(Denial::DelegationTooDeep(_))
    ));
    // A later block cannot loosen it.
    let loosened = attenuate(
        &d4,
        AttenuateSpec {
            max_delegation_depth: Some(5),
            ..AttenuateSpec::default()
        },
    );
    assert!(matches!(
        check(&v, &loosened, &req("x")),
        Err(Denial::DelegationTooDeep(_))
    ));

    // Minting above the hard cap is refused.
    assert!(token::mint(
        &k,
        &MintSpec {
            max_delegation_depth: HARD_MAX_DELEGATION_DEPTH + 1,
            ..MintSpec::default()
        }
    )
    .is_err());
}

/// A token without `max_delegation_depth` (as MCPVault mints them) gets the default.
#[test]
fn default_depth_cap_for_tokens_without_one() {
    let kp = KeyPair::new();
    let k = mcpvault_token::KeyFile {
        private_key: hex::encode(kp.private().to_bytes()),
        public_key: hex::encode(kp.public().to_bytes()),
    };
    let v = verifier(&[&k]);
    let b = biscuit_auth::Biscuit::builder()
        .code(r#"tool_wildcard("*"); delegation_depth(0);"#)
        .unwrap()
        .build(&kp)
        .unwrap();
    let mut t = encode_token(&b.to_vec().unwrap());
    for _ in 0..DEFAULT_MAX_DELEGATION_DEPTH {
        t = plain_block(&t);
    }
    let facts = check(&v, &t, &req("x")).unwrap();
    assert_eq!(facts.max_delegation_depth, DEFAULT_MAX_DELEGATION_DEPTH);
    assert_eq!(facts.delegation_depth, DEFAULT_MAX_DELEGATION_DEPTH);
    assert!(matches!(
        check(&v, &plain_block(&t), &req("x")),
        Err(Denial::DelegationTooDeep(_))
    ));
    // The server's default is configurable.
    let strict = Verifier::new(
        token::parse_public_keys(&k.public_key).unwrap(),
        VerifierConfig {
            default_max_depth: 1,
            ..VerifierConfig::default()
        },
    )
    .unwrap();
    assert!(matches!(
        check(&strict, &t, &req("x")),
        Err(Denial::DelegationTooDeep(_))
    ));
}

#[test]
fn hard_block_cap_is_checked_before_signatures() {
    let k = key();
    let other = key();
    let v = verifier(&[&other]); // wrong key: the signature would fail too
    let mut t = mint(&k, MintSpec::default());
    for _ in 0..=HARD_MAX_DELEGATION_DEPTH {
        t = plain_block(&t);
    }
    match check(&v, &t, &req("x")) {
        Err(Denial::DelegationTooDeep(m)) => assert!(m.contains("33"), "{m}"),
        other => panic!("{other:?}"),
    }
}

fn revocation_list(ids: &[String]) -> RevocationSet {
    RevocationSet::parse(&(ids.join("\n") + "\n")).unwrap()
}

#[test]
fn revocation_of_last_block_and_all() {
    let k = key();
    let v = verifier(&[&k]);
    let parent = mint(&k, MintSpec::default());
    let child = plain_block(&parent);
    let grandchild = attenuate(
        &child,
        AttenuateSpec {
            tools: tools("kv.read"),
            ..AttenuateSpec::default()
        },
    );
    let sibling = plain_block(&parent);
    let child_ids = token::inspect(&child).unwrap().revocation_ids;
    assert_eq!(child_ids.len(), 2);
    let last = revocation_list(&child_ids[1..]);
    let r = req("kv.read");
    assert_eq!(v.authorize(&child, &r, &last), Err(Denial::Revoked));
    assert_eq!(v.authorize(&grandchild, &r, &last), Err(Denial::Revoked));
    assert!(v.authorize(&parent, &r, &last).is_ok());
    assert!(v.authorize(&sibling, &r, &last).is_ok());

    let all = revocation_list(&child_ids);
    for t in [&parent, &child, &grandchild, &sibling] {
        assert_eq!(v.authorize(t, &r, &all), Err(Denial::Revoked));
    }
    // A fresh list takes effect at once, even for decisions cached a moment ago.
    assert!(v.authorize(&child, &r, &RevocationSet::empty()).is_ok());
    assert_eq!(v.authorize(&child, &r, &last), Err(Denial::Revoked));
    assert!(v.authorize(&child, &r, &RevocationSet::empty()).is_ok());
    // Comments, blank lines; a malformed line fails the whole list.
    let parsed = RevocationSet::parse(&format!("# revoked\n\n{}\n", child_ids[1])).unwrap();
    assert_eq!(parsed.len(), 1);
    assert!(RevocationSet::parse("zz\n").is_err());
}

#[test]
fn every_denial_reason_is_precise() {
    let k = key();
    let other = key();
    let v = verifier(&[&k]);
    let t = mint(
        &k,
        MintSpec {
            tools: tools("kv.read,transit.*"),
            subject: Some("agentA".into()),
            resources: res(&["kv:app/*", "kv:shared", "transit:app-key"]),
            max_delegation_depth: 1,
            ..MintSpec::default()
        },
    );
    let no_subject = mint(&k, MintSpec::default());
    let forged = mint(&other, MintSpec::default());
    let too_deep = plain_block(&plain_block(&t));
    let ids = token::inspect(&t).unwrap().revocation_ids;
    let revoked = revocation_list(&ids);
    let empty = RevocationSet::empty();
    let for_a = |r: Request<'static>| Request {
        subject: Some("agentA"),
        ..r
    };
    let cases: Vec<(&str, &String, Request<'static>, &RevocationSet, Denial)> = vec![
        (
            "expired",
            &t,
            Request {
                now: later(7200),
                ..for_a(req("kv.read"))
            },
            &empty,
            Denial::Expired,
        ),
        (
            "revoked",
            &t,
            for_a(req("kv.read")),
            &revoked,
            Denial::Revoked,
        ),
        (
            "bad signature",
            &forged,
            req("kv.read"),
            &empty,
            Denial::BadSignature,
        ),
        (
            "wrong subject",
            &t,
            Request {
                subject: Some("agentB"),
                ..req("kv.read")
            },
            &empty,
            Denial::WrongSubject("token is for \"agentA\", this server serves \"agentB\"".into()),
        ),
        (
            "no subject",
            &no_subject,
            for_a(req("kv.read")),
            &empty,
            Denial::WrongSubject("token names no subject".into()),
        ),
        (
            "tool",
            &t,
            for_a(req("kv.write")),
            &empty,
            Denial::ToolNotGranted("kv.write".into()),
        ),
        (
            "resource prefix",
            &t,
            for_a(req_res("kv.read", KV, "apps/x")),
            &empty,
            Denial::ResourceNotGranted("kv:apps/x".into()),
        ),
        (
            "resource exact",
            &t,
            for_a(req_res("kv.read", KV, "shared/x")),
            &empty,
            Denial::ResourceNotGranted("kv:shared/x".into()),
        ),
        (
            "resource other kind",
            &t,
            for_a(req_res("transit.encrypt", TRANSIT, "app-key2")),
            &empty,
            Denial::ResourceNotGranted("transit:app-key2".into()),
        ),
        (
            "depth",
            &too_deep,
            for_a(req("kv.read")),
            &empty,
            Denial::DelegationTooDeep("depth 2 exceeds the cap of 1".into()),
        ),
    ];
    let mut codes = std::collections::HashSet::new();
    for (name, token, request, list, want) in &cases {
        let got = v.authorize(token, request, list).map_err(bare);
        assert_eq!(got.as_ref().err(), Some(want), "{name}");
        let text = want.to_string();
        assert!(!text.contains(token.as_str()), "{name}: token in message");
        assert!(!text.contains(&token[..24]), "{name}: token in message");
        codes.insert(want.code());
    }
    // Allowed counterparts of the resource cases.
    assert!(v
        .authorize(
            &t,
            &for_a(req_res("kv.read", KV, "app/x")),
            &RevocationSet::empty()
        )
        .is_ok());
    assert!(v
        .authorize(
            &t,
            &for_a(req_res("kv.read", KV, "shared")),
            &RevocationSet::empty()
        )
        .is_ok());
    assert!(v
        .authorize(
            &t,
            &for_a(req_res("transit.encrypt", TRANSIT, "app-key")),
            &RevocationSet::empty()
        )
        .is_ok());

    // No token, malformed, oversized.
    assert_eq!(check(&v, "", &req("x")), Err(Denial::NoToken));
    assert_eq!(check(&v, "  \n", &req("x")), Err(Denial::NoToken));
    for bad in ["!!!!", "aGVsbG8gd29ybGQ=", &t[..t.len() / 2]] {
        match check(&v, bad, &req("x")) {
            Err(Denial::Malformed(m)) => assert!(!m.contains(bad), "{m}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    let huge = "A".repeat(MAX_TOKEN_BYTES + 1);
    assert!(matches!(
        check(&v, &huge, &req("x")),
        Err(Denial::Malformed(m)) if m.contains("larger")
    ));
    codes.extend(["no_token", "malformed", "limit_exceeded"]);
    assert_eq!(codes.len(), 10, "{codes:?}");
}

#[test]
fn kinds_a_token_does_not_mention_stay_open() {
    let k = key();
    let v = verifier(&[&k]);
    let t = mint(
        &k,
        MintSpec {
            resources: res(&["kv:app/*"]),
            ..MintSpec::default()
        },
    );
    assert!(check(&v, &t, &req_res("transit.encrypt", TRANSIT, "any")).is_ok());
    assert!(check(&v, &t, &req("transit.random")).is_ok());
    assert!(check(&v, &t, &req_res("kv.read", KV, "app/deep/x")).is_ok());
    assert!(check(&v, &t, &req_res("kv.read", KV, "app")).is_err());

    // Attenuation narrows inside the kind; a pattern outside the grant admits nothing.
    let narrow = attenuate(
        &t,
        AttenuateSpec {
            resources: res(&["kv:app/x", "transit:k1"]),
            ..AttenuateSpec::default()
        },
    );
    assert!(check(&v, &narrow, &req_res("kv.read", KV, "app/x")).is_ok());
    assert!(check(&v, &narrow, &req_res("kv.read", KV, "app/y")).is_err());
    assert!(check(&v, &narrow, &req_res("transit.encrypt", TRANSIT, "k1")).is_ok());
    assert!(check(&v, &narrow, &req_res("transit.encrypt", TRANSIT, "k2")).is_err());
    let outside = attenuate(
        &t,
        AttenuateSpec {
            resources: res(&["kv:other/*"]),
            ..AttenuateSpec::default()
        },
    );
    assert!(check(&v, &outside, &req_res("kv.read", KV, "other/x")).is_err());
    assert!(check(&v, &outside, &req_res("kv.read", KV, "app/x")).is_err());
}

#[test]
fn attenuated_ttl_and_expiry_without_waiting() {
    let k = key();
    let v = verifier(&[&k]);
    let t = mint(&k, MintSpec::default()); // 1 h
    let short = attenuate(
        &t,
        AttenuateSpec {
            ttl: Some(Duration::from_secs(60)),
            ..AttenuateSpec::default()
        },
    );
    let at = |secs| Request {
        now: later(secs),
        ..req("x")
    };
    assert!(check(&v, &short, &at(30)).is_ok());
    assert_eq!(check(&v, &short, &at(120)), Err(Denial::Expired));
    assert!(check(&v, &t, &at(120)).is_ok());
    assert_eq!(check(&v, &t, &at(3700)), Err(Denial::Expired));
    // A longer TTL in a later block does not extend the token.
    let longer = attenuate(
        &short,
        AttenuateSpec {
            ttl: Some(Duration::from_secs(7200)),
            ..AttenuateSpec::default()
        },
    );
    assert_eq!(check(&v, &longer, &at(120)), Err(Denial::Expired));
    let facts = check(&v, &longer, &at(0)).unwrap();
    let inspected = token::inspect(&short).unwrap();
    assert!(inspected.blocks[1].checks[0].contains(facts.expires_at.as_deref().unwrap()));
    // Zero TTL is refused.
    assert!(token::mint(
        &k,
        &MintSpec {
            ttl: Duration::ZERO,
            ..MintSpec::default()
        }
    )
    .is_err());
}

#[test]
fn key_rotation_and_encodings() {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let old = key();
    let new = key();
    let stranger = key();
    let v = verifier(&[&old, &new]);
    for k in [&old, &new] {
        assert!(allowed(&v, &mint(k, MintSpec::default()), "x"));
    }
    assert_eq!(
        check(&v, &mint(&stranger, MintSpec::default()), &req("x")),
        Err(Denial::BadSignature)
    );
    // The comma list parses with spaces; junk is refused.
    let list = format!(" {} , {} ", old.public_key, new.public_key);
    assert_eq!(token::parse_public_keys(&list).unwrap().len(), 2);
    assert!(token::parse_public_keys("zz").is_err());
    assert!(token::parse_public_keys("abcd").is_err());
    assert!(token::parse_public_keys(" , ").is_err());

    // Tokens with '+' or '/' in standard base64 show the difference.
    let mut t = mint(&new, MintSpec::default());
    while !t.contains(['+', '/']) {
        t = mint(&new, MintSpec::default());
    }
    let bytes = decode_token(&t).unwrap();
    for encoded in [
        t.clone(),
        STANDARD_NO_PAD.encode(&bytes),
        URL_SAFE.encode(&bytes),
        URL_SAFE_NO_PAD.encode(&bytes),
        format!("  {t}\n"),
    ] {
        assert!(allowed(&v, &encoded, "x"), "{encoded}");
        assert!(token::inspect(&encoded).is_ok());
        assert!(token::attenuate(&encoded, None, &AttenuateSpec::default()).is_ok());
    }
    assert!(encode_token(&bytes) == t, "tokens print as standard base64");
}

#[test]
fn attenuate_checks_the_signature_when_asked() {
    let k = key();
    let other = key();
    let t = mint(&k, MintSpec::default());
    let keys = token::parse_public_keys(&format!("{},{}", other.public_key, k.public_key)).unwrap();
    assert!(token::attenuate(&t, Some(&keys), &AttenuateSpec::default()).is_ok());
    let wrong = token::parse_public_keys(&other.public_key).unwrap();
    assert!(matches!(
        token::attenuate(&t, Some(&wrong), &AttenuateSpec::default()),
        Err(token::TokenError::Denied(Denial::BadSignature))
    ));
    // Without keys it needs none.
    assert!(token::attenuate(&t, None, &AttenuateSpec::default()).is_ok());
}

#[test]
fn third_party_blocks_are_rejected() {
    let k = key();
    let v = verifier(&[&k]);
    let t = mint(&k, MintSpec::default());
    let root = token::parse_public_keys(&k.public_key).unwrap()[0];
    let biscuit = biscuit_auth::Biscuit::from(decode_token(&t).unwrap(), root).unwrap();
    let third = KeyPair::new();
    let request = biscuit.third_party_request().unwrap();
    let block = request
        .create_block(
            &third.private(),
            BlockBuilder::new().code(r#"tool("x")"#).unwrap(),
        )
        .unwrap();
    let with_third = biscuit.append_third_party(third.public(), block).unwrap();
    let encoded = encode_token(&with_third.to_vec().unwrap());
    assert!(matches!(
        check(&v, &encoded, &req("x")),
        Err(Denial::Malformed(m)) if m.contains("third-party")
    ));
}

// ---------------------------------------------------------------------------
// Bounded evaluation. Timings are measured in benches/verify.rs, not asserted.
// ---------------------------------------------------------------------------

fn facts(name: &str, n: usize) -> String {
    (0..n).map(|i| format!("{name}({i});")).collect()
}

fn assert_limited(v: &Verifier, t: &str) {
    assert!(t.len() <= MAX_TOKEN_BYTES, "{} bytes", t.len());
    match check(v, t, &req("x")) {
        Err(Denial::LimitExceeded) | Err(Denial::Malformed(_)) => {}
        other => panic!("not bounded: {other:?}"),
    }
}

#[test]
fn cross_join_rule_over_thousands_of_facts_is_refused() {
    let k = key();
    let v = verifier(&[&k]);
    let t = mint(&k, MintSpec::default());
    // 3 000 facts: over the fact limit before anything runs.
    let many = append_raw(&t, &(facts("f", 3000) + "x($a, $b) <- f($a), f($b);"));
    assert_eq!(check(&v, &many, &req("x")), Err(Denial::LimitExceeded));
    // 600 facts, within the fact limit; the join alone would make 360 000 facts in
    // one Datalog iteration, before Biscuit's own limits look.
    let join = append_raw(&t, &(facts("f", 600) + "x($a, $b) <- f($a), f($b);"));
    assert_eq!(check(&v, &join, &req("x")), Err(Denial::LimitExceeded));
    // Built with BlockBuilder calls rather than source text.
    let mut b = BlockBuilder::new();
    for i in 0..900 {
        b = b
            .code_with_params(
                "f({i})",
                HashMap::from([("i".to_string(), Term::Integer(i))]),
                HashMap::new(),
            )
            .unwrap();
    }
    b = b.code("x($a, $b, $c) <- f($a), f($b), f($c)").unwrap();
    assert_eq!(
        check(&v, &append_builder(&t, b), &req("x")),
        Err(Denial::LimitExceeded)
    );
    // No rules, a three-way join in one check query.
    let check_join = append_raw(
        &t,
        &(facts("f", 400) + "check if f($a), f($b), f($c), $a == -1;"),
    );
    assert_eq!(
        check(&v, &check_join, &req("x")),
        Err(Denial::LimitExceeded)
    );
    // Rules feeding rules: the derived predicate counts at the fact limit.
    let chained = append_raw(
        &t,
        "g($a) <- requested_tool($a); check if g($a), g($b), $a == $b;",
    );
    assert_eq!(check(&v, &chained, &req("x")), Err(Denial::LimitExceeded));
}

#[test]
fn run_limits_still_apply_inside_the_budget() {
    let k = key();
    let v = verifier(&[&k]);
    let t = mint(&k, MintSpec::default());
    // 45 x 30 = 1 350 derived facts: small enough to pass the static bound, over the
    // fact limit at run time.
    let code = facts("f", 45) + &facts("g", 30) + "x($a, $b) <- f($a), g($b);";
    let derived = append_raw(&t, &code);
    assert_eq!(check(&v, &derived, &req("x")), Err(Denial::LimitExceeded));
    // A modest rule runs fine and grants nothing.
    let fine = append_raw(&t, &(facts("f", 20) + "x($a) <- f($a); check if x(3);"));
    assert_eq!(check(&v, &fine, &req("x")).map(|_| ()), Ok(()));
    let failing = append_raw(&t, &(facts("f", 20) + "x($a) <- f($a); check if x(30);"));
    assert!(!allowed(&v, &failing, "x"));
}

#[test]
fn expensive_operations_are_refused_in_attenuation_blocks() {
    let k = key();
    let v = verifier(&[&k]);
    let t = mint(&k, MintSpec::default());
    let big_set: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    let long = "a".repeat(2000);
    for code in [
        r#"check if requested_tool($t), $t.matches("^(a+)+$");"#.to_string(),
        r#"check if requested_tool($t), $t + $t + $t == "xxx";"#.to_string(),
        "check if [1, 2].union([3]).length() == 3;".to_string(),
        "check if {1, 2}.intersection({2}).length() == 1;".to_string(),
        "check if {1, 2, 3}.all($x -> {1, 2, 3}.all($y -> $x != 7));".to_string(),
        "check if {1, 2, 3}.any($x -> $x == 1);".to_string(),
        format!("check if {{{}}}.contains(1);", big_set.join(", ")),
        format!(r#"check if requested_tool("{long}");"#),
    ] {
        let hostile = append_raw(&t, &code);
        assert_limited(&v, &hostile);
        assert!(
            matches!(check(&v, &hostile, &req("x")), Err(Denial::Malformed(m)) if m.contains("attenuation block")),
            "{code}"
        );
    }
    // The same operations in the authority block (the issuer's own) are allowed.
    let kp = KeyPair::new();
    let issuer = mcpvault_token::KeyFile {
        private_key: hex::encode(kp.private().to_bytes()),
        public_key: hex::encode(kp.public().to_bytes()),
    };
    let own = biscuit_auth::Biscuit::builder()
        .code(r#"tool_wildcard("*"); check if requested_tool($t), $t.matches("^[a-z.]+$");"#)
        .unwrap()
        .build(&kp)
        .unwrap();
    let own = encode_token(&own.to_vec().unwrap());
    let vi = verifier(&[&issuer]);
    assert!(allowed(&vi, &own, "kv.read"));
    assert!(!allowed(&vi, &own, "KV"));
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let k = key();
    let v = verifier(&[&k]);
    let t = mint(&k, MintSpec::default());
    // Fill an attenuation block with facts until the token passes 64 KiB.
    let big = append_raw(&t, &facts("f", 7000));
    assert!(big.len() > MAX_TOKEN_BYTES, "{}", big.len());
    assert!(matches!(
        check(&v, &big, &req("x")),
        Err(Denial::Malformed(m)) if m.contains("larger")
    ));
    assert!(token::inspect(&big).is_err());
    // attenuate refuses to produce one.
    let near = append_raw(&t, &facts("f", 3000));
    assert!(near.len() <= MAX_TOKEN_BYTES);
    let spec = AttenuateSpec {
        resources: res(&[&format!("kv:{}*", "p".repeat(500))]),
        ..AttenuateSpec::default()
    };
    let mut cur = near;
    let mut refused = false;
    for _ in 0..200 {
        match token::attenuate(&cur, None, &spec) {
            Ok(next) => cur = next,
            Err(e) => {
                assert!(e.to_string().contains("larger"), "{e}");
                refused = true;
                break;
            }
        }
    }
    assert!(refused);
}

/// A denial says what the token admits instead, from the authority block's grants
/// and what each attenuation declares it narrowed to; never the token.
#[test]
fn denials_explain_what_the_token_admits() {
    let k = key();
    let v = verifier(&[&k]);
    let t = mint(
        &k,
        MintSpec {
            tools: tools("kv.*,transit.encrypt"),
            subject: Some("agentA".into()),
            resources: res(&["kv:team/*", "kv:shared", "transit:app-*"]),
            ..MintSpec::default()
        },
    );
    let denied = |t: &str, r: &Request<'_>| {
        v.authorize(t, r, &RevocationSet::empty())
            .err()
            .map(|d| d.to_string())
    };
    let a = |r: Request<'static>| Request {
        subject: Some("agentA"),
        ..r
    };
    assert_eq!(
        denied(&t, &a(req_res("kv.read", ResourceKind::Kv, "other/a"))).as_deref(),
        Some("resource not granted: kv:other/a (token admits kv:shared, kv:team/*)")
    );
    assert_eq!(
        denied(&t, &a(req("db.issue_creds"))).as_deref(),
        Some("tool not granted: db.issue_creds (token admits kv.*, transit.encrypt)")
    );
    let narrowed = attenuate(
        &t,
        AttenuateSpec {
            tools: tools("kv.read"),
            resources: res(&["kv:team/a/*"]),
            ..AttenuateSpec::default()
        },
    );
    assert_eq!(
        denied(&narrowed, &a(req_res("kv.read", ResourceKind::Kv, "team/b"))).as_deref(),
        Some("resource not granted: kv:team/b (token admits kv:shared, kv:team/*; narrowed to kv:team/a/*)")
    );
    assert_eq!(
        denied(
            &narrowed,
            &a(req_res("kv.write", ResourceKind::Kv, "team/a/x"))
        )
        .as_deref(),
        Some(
            "tool not granted: kv.write (token admits kv.*, transit.encrypt; narrowed to kv.read)"
        )
    );
    // Kinds are explained on their own: the transit grant, not the KV one.
    assert_eq!(
        denied(
            &t,
            &a(req_res("transit.encrypt", ResourceKind::Transit, "k"))
        )
        .as_deref(),
        Some("resource not granted: transit:k (token admits transit:app-*)")
    );
}

#[test]
fn inspect_lists_blocks_without_verifying() {
    let k = key();
    let t = mint(
        &k,
        MintSpec {
            tools: tools("kv.read"),
            subject: Some("agentA".into()),
            ..MintSpec::default()
        },
    );
    let t2 = attenuate(
        &t,
        AttenuateSpec {
            tools: tools("kv.read"),
            max_delegation_depth: Some(1),
            ..AttenuateSpec::default()
        },
    );
    let t3 = append_raw(&t2, "f(\"a\nb\"); x($a) <- f($a);");
    let info = token::inspect(&t3).unwrap();
    assert_eq!(info.block_count, 3);
    assert_eq!(info.revocation_ids.len(), 3);
    assert!(info.blocks[0]
        .facts
        .contains(&"tool(\"kv.read\")".to_string()));
    assert!(info.blocks[0]
        .facts
        .contains(&"subject(\"agentA\")".to_string()));
    // Only the display fact saying what `--tools` narrowed to.
    assert_eq!(info.blocks[1].facts, ["narrow_tool(\"kv.read\")"]);
    assert_eq!(info.blocks[1].checks.len(), 2);
    assert!(info.blocks[1].checks[1].contains("depth($d), $d <= 2"));
    assert_eq!(info.blocks[2].facts.len(), 1, "{:?}", info.blocks[2]);
    assert_eq!(info.blocks[2].rules, vec!["x($a) <- f($a)"]);
    // Another key's token inspects just the same: no signature check.
    let other = mint(&key(), MintSpec::default());
    assert_eq!(token::inspect(&other).unwrap().block_count, 1);
    let bytes = decode_token(&t3).unwrap();
    assert_eq!(UnverifiedBiscuit::from(&bytes).unwrap().block_count(), 3);
}

/// An issuer's own rules in the authority block are honoured (their facts are read
/// by running Datalog rather than by the protobuf walk).
#[test]
fn authority_rules_are_evaluated() {
    let kp = KeyPair::new();
    let issuer = mcpvault_token::KeyFile {
        private_key: hex::encode(kp.private().to_bytes()),
        public_key: hex::encode(kp.public().to_bytes()),
    };
    let b = biscuit_auth::Biscuit::builder()
        .code(
            r#"tool("kv.read"); subject("agentA"); max_delegation_depth(1);
               tool("kv.list") <- tool("kv.read");"#,
        )
        .unwrap()
        .build(&kp)
        .unwrap();
    let t = encode_token(&b.to_vec().unwrap());
    let v = verifier(&[&issuer]);
    let facts = check(&v, &t, &req("kv.list")).unwrap();
    assert_eq!(facts.tools, vec!["kv.list", "kv.read"]);
    assert_eq!(facts.subject.as_deref(), Some("agentA"));
    assert_eq!(facts.max_delegation_depth, 1);
    assert!(!allowed(&v, &t, "kv.write"));
    assert!(matches!(
        check(&v, &plain_block(&plain_block(&t)), &req("kv.read")),
        Err(Denial::DelegationTooDeep(_))
    ));
}

/// `confirm` requirements: minted, added by attenuation (never removed), read from
/// every block (a holder's plain fact adds one too), and an unreadable one refuses
/// the token rather than being dropped.
#[test]
fn confirm_requirements_only_accumulate() {
    let k = key();
    let v = verifier(&[&k]);
    let confirm = |list: &str| token::parse_tools(list).unwrap();
    let t = mint(
        &k,
        MintSpec {
            subject: Some("agentA".into()),
            confirm: confirm("kv.delete"),
            ..MintSpec::default()
        },
    );
    let facts = check(&v, &t, &req("kv.read")).unwrap();
    assert_eq!(facts.confirm, vec!["kv.delete"]);
    assert!(facts.requires_confirmation("kv.delete"));
    assert!(!facts.requires_confirmation("kv.read"));
    // Attenuation adds a family; an attenuation that says nothing keeps both.
    let wider = attenuate(
        &t,
        AttenuateSpec {
            confirm: confirm("transit.*"),
            ..AttenuateSpec::default()
        },
    );
    let quiet = attenuate(&wider, AttenuateSpec::default());
    let facts = check(&v, &quiet, &req("kv.read")).unwrap();
    assert_eq!(facts.confirm, vec!["kv.delete", "transit.*"]);
    assert!(facts.requires_confirmation("transit.decrypt"));
    assert!(facts.requires_confirmation("kv.delete"));
    assert!(!facts.requires_confirmation("kv.write"));
    // A holder's raw block adds `*`; nothing a block says takes a requirement away.
    let all = append_raw(&quiet, r#"confirm("*"); tool_wildcard("*");"#);
    let facts = check(&v, &all, &req("kv.read")).unwrap();
    assert!(facts.requires_confirmation("kv.read"));
    // A requirement that cannot be read refuses the token.
    let odd = append_raw(&t, "confirm(1);");
    assert!(matches!(
        check(&v, &odd, &req("kv.read")),
        Err(Denial::Malformed(_))
    ));
    // Without any, nothing is printed (MCPVault-shaped output unchanged).
    let plain = mint(
        &k,
        MintSpec {
            subject: Some("agentA".into()),
            ..MintSpec::default()
        },
    );
    let facts = check(&v, &plain, &req("kv.read")).unwrap();
    let json = serde_json::to_value(&facts).unwrap();
    assert!(json.get("confirm").is_none(), "{json}");
}
