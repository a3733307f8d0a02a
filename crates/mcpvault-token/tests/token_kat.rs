//! Known-answer tests on committed fixtures (fixtures/keys/test.json, a TEST key,
//! and tokens it minted), and MCPVault compatibility in both directions.
//!
//! Biscuit signatures use a fresh keypair per block, so tokens are not reproducible
//! byte for byte: the fixtures pin what a token minted by this code *says* and how
//! it verifies, at fixed instants (no clock dependence, no time bomb).

mod token_common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use biscuit_auth::builder::{date, Term};
use biscuit_auth::{AuthorizerBuilder, Biscuit, KeyPair};
use mcpvault_token::{
    self as token, decode_token, encode_token, AttenuateSpec, Denial, KeyFile, MintSpec, Request,
    ResourceKind, RevocationSet,
};
use token_common::*;

const TEST_PUBLIC_KEY: &str = "f3964bc8ade9c657beace606b3fe2625a7baa8d2c41ed4c20d17b3f839dc18a4";
/// 2027-01-01T00:00:00Z: inside both fixtures' lifetimes.
const JAN_2027: u64 = 1_798_761_600;
/// The fixtures' expiries.
const AUTHORITY_EXPIRY: u64 = 1_953_004_004; // 2031-11-21T05:06:44Z
const ATTENUATED_EXPIRY: u64 = 1_952_324_004; // 2031-11-13T08:13:24Z

fn fixture(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures") // the repository's fixtures/
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn fixture_verifier() -> mcpvault_token::Verifier {
    let kf = KeyFile::from_json(&fixture("keys/test.json")).unwrap();
    assert_eq!(kf.public_key, TEST_PUBLIC_KEY);
    verifier(&[&kf])
}

fn as_agent<'a>(tool: &'a str, resource: Option<(ResourceKind, &'a str)>, now: u64) -> Request<'a> {
    Request {
        tool,
        resource: resource.map(|(kind, value)| token::RequestResource { kind, value }),
        subject: Some("agentA"),
        now: at(now),
    }
}

#[test]
fn test_key_file_is_consistent() {
    let kf = KeyFile::from_json(&fixture("keys/test.json")).unwrap();
    let kp = kf.keypair().unwrap();
    assert_eq!(hex::encode(kp.public().to_bytes()), TEST_PUBLIC_KEY);
    // A key file whose halves disagree, or that is not JSON, is refused without
    // echoing its content.
    let other = token::generate_keypair();
    let mixed = format!(
        r#"{{"private_key": "{}", "public_key": "{}"}}"#,
        kf.private_key, other.public_key
    );
    assert!(KeyFile::from_json(&mixed).is_err());
    let broken = format!(r#"{{"private_key": {}}}"#, kf.private_key);
    let err = KeyFile::from_json(&broken).unwrap_err().to_string();
    assert!(!err.contains(&kf.private_key[..16]), "{err}");
    assert!(!format!("{kf:?}").contains(&kf.private_key));
}

#[test]
fn authority_fixture_says_what_it_was_minted_with() {
    let t = fixture("tokens/authority.b64");
    let info = token::inspect(&t).unwrap();
    assert_eq!(info.block_count, 1);
    assert_eq!(
        info.blocks[0].facts,
        [
            r#"tool("kv.read")"#,
            r#"tool("kv.list")"#,
            r#"tool("transit.*")"#,
            r#"tool_prefix("transit.")"#,
            r#"issuer("mcpvault-test")"#,
            r#"subject("agentA")"#,
            "delegation_depth(0)",
            "max_delegation_depth(2)",
            r#"resource("kv", "app/*")"#,
            r#"resource("transit", "app-key")"#,
        ]
    );
    assert_eq!(
        info.blocks[0].checks,
        [
            r#"check if request_kind($k), $k != "kv" or requested_resource("kv", $v), $v.starts_with("app/")"#,
            r#"check if request_kind($k), $k != "transit" or requested_resource("transit", $v), {"app-key"}.contains($v)"#,
            "check if time($t), $t < 2031-11-21T05:06:44Z",
        ]
    );
    assert!(info.blocks[0].rules.is_empty());
    assert_eq!(
        info.revocation_ids,
        ["e1b031dc4d5e870bfb7fc9b6dc81ac05dbb77736a1c8a4eed42d9b247a242a11e4511b6f1f0b60908e122f744ff8b6d3958ebec0099803c1d65fd2c53d4d5901"]
    );

    let v = fixture_verifier();
    let none = RevocationSet::empty();
    let facts = v
        .authorize(
            &t,
            &as_agent("kv.read", Some((ResourceKind::Kv, "app/db")), JAN_2027),
            &none,
        )
        .unwrap();
    assert_eq!(facts.tools, ["kv.list", "kv.read", "transit.*"]);
    assert!(!facts.tool_wildcard);
    assert_eq!(facts.issuer.as_deref(), Some("mcpvault-test"));
    assert_eq!(facts.subject.as_deref(), Some("agentA"));
    assert_eq!(facts.delegation_depth, 0);
    assert_eq!(facts.max_delegation_depth, 2);
    assert_eq!(facts.expires_at.as_deref(), Some("2031-11-21T05:06:44Z"));
    assert_eq!(facts.resources, ["kv:app/*", "transit:app-key"]);
    assert_eq!(facts.revocation_ids, info.revocation_ids);

    let ok = |tool, r, now| v.authorize(&t, &as_agent(tool, r, now), &none).is_ok();
    assert!(ok(
        "transit.sign",
        Some((ResourceKind::Transit, "app-key")),
        JAN_2027
    ));
    assert!(!ok(
        "transit.sign",
        Some((ResourceKind::Transit, "other")),
        JAN_2027
    ));
    assert!(!ok("kv.write", None, JAN_2027));
    assert!(ok("kv.list", None, AUTHORITY_EXPIRY - 1));
    assert_eq!(
        v.authorize(&t, &as_agent("kv.list", None, AUTHORITY_EXPIRY), &none),
        Err(Denial::Expired)
    );
    // Another root key does not accept it.
    let stranger = verifier(&[&key()]);
    assert_eq!(
        stranger.authorize(&t, &as_agent("kv.read", None, JAN_2027), &none),
        Err(Denial::BadSignature)
    );
}

#[test]
fn attenuated_fixture_narrows_as_written() {
    let t = fixture("tokens/attenuated.b64");
    let info = token::inspect(&t).unwrap();
    assert_eq!(info.block_count, 2);
    assert!(info.blocks[1].facts.is_empty());
    assert_eq!(
        info.blocks[1].checks,
        [
            r#"check if requested_tool($t), {"kv.read"}.contains($t)"#,
            "check if time($t), $t < 2031-11-13T08:13:24Z",
            r#"check if request_kind($k), $k != "kv" or requested_resource("kv", $v), $v.starts_with("app/public/")"#,
            "check if depth($d), $d <= 1",
        ]
    );
    assert_eq!(
        info.revocation_ids[0],
        token::inspect(&fixture("tokens/authority.b64"))
            .unwrap()
            .revocation_ids[0]
    );

    let v = fixture_verifier();
    let none = RevocationSet::empty();
    let kv = |p| Some((ResourceKind::Kv, p));
    let facts = v
        .authorize(
            &t,
            &as_agent("kv.read", kv("app/public/readme"), JAN_2027),
            &none,
        )
        .unwrap();
    assert_eq!(facts.delegation_depth, 1);
    assert_eq!(facts.expires_at.as_deref(), Some("2031-11-13T08:13:24Z"));
    assert_eq!(
        v.authorize(&t, &as_agent("kv.list", kv("app/public/"), JAN_2027), &none),
        Err(Denial::ToolNotGranted(
            "kv.list (token admits kv.list, kv.read, transit.*; narrowed further by block 1)"
                .into()
        ))
    );
    assert_eq!(
        v.authorize(&t, &as_agent("kv.read", kv("app/private"), JAN_2027), &none),
        Err(Denial::ResourceNotGranted(
            "kv:app/private (token admits kv:app/*; narrowed further by block 1)".into()
        ))
    );
    assert_eq!(
        v.authorize(
            &t,
            &as_agent("kv.read", kv("app/public/x"), ATTENUATED_EXPIRY),
            &none
        ),
        Err(Denial::Expired)
    );
    // Its own cap of 0 further blocks.
    let deeper = plain_block(&t);
    assert!(matches!(
        v.authorize(
            &deeper,
            &as_agent("kv.read", kv("app/public/x"), JAN_2027),
            &none
        ),
        Err(Denial::DelegationTooDeep(_))
    ));
    // Revoking the attenuated block leaves the parent usable.
    let revoked = RevocationSet::parse(&info.revocation_ids[1]).unwrap();
    assert_eq!(
        v.authorize(
            &t,
            &as_agent("kv.read", kv("app/public/x"), JAN_2027),
            &revoked
        ),
        Err(Denial::Revoked)
    );
    assert!(v
        .authorize(
            &fixture("tokens/authority.b64"),
            &as_agent("kv.read", kv("app/public/x"), JAN_2027),
            &revoked
        )
        .is_ok());
}

// ---------------------------------------------------------------------------
// MCPVault compatibility
// ---------------------------------------------------------------------------

fn str_param(name: &str, v: &str) -> HashMap<String, Term> {
    HashMap::from([(name.to_string(), Term::Str(v.to_string()))])
}

/// A token built the way MCPVault's `BiscuitProvider::mint` builds one: tool facts
/// (or `tool_wildcard("*")`), `operation` facts, `delegation_depth(0)`, `issuer`,
/// `subject`, the TTL check, and its delegation cap check.
fn mcpvault_mint(kp: &KeyPair, tools: Option<&[&str]>, expiry: SystemTime, cap: i64) -> String {
    let mut b = Biscuit::builder();
    match tools {
        None => b = b.code(r#"tool_wildcard("*")"#).unwrap(),
        Some(tools) => {
            for t in tools {
                b = b
                    .code_with_params("tool({name})", str_param("name", t), HashMap::new())
                    .unwrap();
                let mut p = str_param("tool", t);
                p.insert("op".into(), Term::Str("read".into()));
                b = b
                    .code_with_params("operation({tool}, {op})", p, HashMap::new())
                    .unwrap();
            }
        }
    }
    b = b.code("delegation_depth(0)").unwrap();
    let mut ids = str_param("id", "mcpvault-cli");
    ids.insert("sub".into(), Term::Str("agentA".into()));
    b = b
        .code_with_params("issuer({id});\nsubject({sub})", ids, HashMap::new())
        .unwrap();
    let secs = expiry.duration_since(UNIX_EPOCH).unwrap().as_secs();
    b = b
        .code_with_params(
            "check if time($t), $t < {expiry}",
            HashMap::from([("expiry".to_string(), Term::Date(secs))]),
            HashMap::new(),
        )
        .unwrap();
    b = b
        .code_with_params(
            "check if delegation_depth($d), $d < {max}",
            HashMap::from([("max".to_string(), Term::Integer(cap))]),
            HashMap::new(),
        )
        .unwrap();
    encode_token(&b.build(kp).unwrap().to_vec().unwrap())
}

/// MCPVault's attenuation: one `check if requested_tool($n), $n == {name}` per tool.
fn mcpvault_attenuate(t: &str, tools: &[&str]) -> String {
    let mut block = biscuit_auth::builder::BlockBuilder::new();
    for name in tools {
        block = block
            .code_with_params(
                "check if requested_tool($n), $n == {name}",
                str_param("name", name),
                HashMap::new(),
            )
            .unwrap();
    }
    append_builder(t, block)
}

/// What MCPVault's verifier decides: it supplies `time` and `requested_tool` only,
/// with allow on `tool`/`tool_wildcard`, else deny.
fn mcpvault_allows(t: &str, root: &KeyPair, tool: &str) -> bool {
    let Ok(b) = Biscuit::from(decode_token(t).unwrap(), root.public()) else {
        return false;
    };
    let builder = AuthorizerBuilder::new()
        .fact(biscuit_auth::builder::fact(
            "time",
            &[date(&SystemTime::now())],
        ))
        .unwrap()
        .fact(biscuit_auth::builder::fact(
            "requested_tool",
            &[biscuit_auth::builder::string(tool)],
        ))
        .unwrap()
        .code(
            r#"allow if tool($name), requested_tool($name);
               allow if tool_wildcard("*");
               deny if true;"#,
        )
        .unwrap();
    // Biscuit's default 1 ms time limit, which MCPVault keeps, trips on a loaded test
    // machine; what is compared here is the logic, not the clock.
    builder
        .set_limits(biscuit_auth::AuthorizerLimits {
            max_time: Duration::from_secs(2),
            ..Default::default()
        })
        .build(&b)
        .and_then(|mut a| a.authorize())
        .is_ok()
}

fn key_file(kp: &KeyPair) -> KeyFile {
    KeyFile {
        private_key: hex::encode(kp.private().to_bytes()),
        public_key: hex::encode(kp.public().to_bytes()),
    }
}

#[test]
fn mcpvault_tokens_verify_here() {
    let kp = KeyPair::new();
    let v = verifier(&[&key_file(&kp)]);
    let hour = SystemTime::now() + Duration::from_secs(3600);
    let t = mcpvault_mint(&kp, Some(&["db_query", "kv.read"]), hour, 3);
    for tool in ["db_query", "kv.read"] {
        let facts = v
            .authorize(
                &t,
                &Request {
                    subject: Some("agentA"),
                    ..req(tool)
                },
                &RevocationSet::empty(),
            )
            .unwrap();
        assert_eq!(facts.tools, ["db_query", "kv.read"]);
        assert_eq!(facts.issuer.as_deref(), Some("mcpvault-cli"));
        assert_eq!(facts.subject.as_deref(), Some("agentA"));
        assert_eq!(facts.delegation_depth, 0);
        // No max_delegation_depth fact: the server default applies.
        assert_eq!(
            facts.max_delegation_depth,
            mcpvault_token::DEFAULT_MAX_DELEGATION_DEPTH
        );
        assert!(facts.expires_at.is_some());
    }
    for tool in ["kv.write", "db_query2", ""] {
        assert_eq!(
            check(&v, &t, &req(tool)),
            Err(Denial::ToolNotGranted(tool.into()))
        );
    }
    assert_eq!(
        check(
            &v,
            &t,
            &Request {
                now: hour + Duration::from_secs(5),
                ..req("kv.read")
            }
        ),
        Err(Denial::Expired)
    );
    // Wildcard.
    let w = mcpvault_mint(&kp, None, hour, 3);
    assert!(allowed(&v, &w, "anything"));
    // Their single-tool attenuation narrows here too.
    let one = mcpvault_attenuate(&t, &["kv.read"]);
    assert!(allowed(&v, &one, "kv.read"));
    assert!(!allowed(&v, &one, "db_query"));
    // Their multi-tool attenuation demands the request be every tool at once: it
    // denies everything, there and here (fail closed, never wider).
    let both = mcpvault_attenuate(&t, &["kv.read", "db_query"]);
    assert!(!allowed(&v, &both, "kv.read"));
    assert!(!allowed(&v, &both, "db_query"));
    assert!(!mcpvault_allows(&both, &kp, "kv.read"));
    // Our attenuation of their token.
    let ours = attenuate(
        &t,
        AttenuateSpec {
            tools: tools("db_query"),
            ..AttenuateSpec::default()
        },
    );
    assert!(allowed(&v, &ours, "db_query"));
    assert!(!allowed(&v, &ours, "kv.read"));
    // A cap of 0 in their check denies everything (their depth fact is 0 < 0).
    let zero = mcpvault_mint(&kp, Some(&["kv.read"]), hour, 0);
    assert!(matches!(
        check(&v, &zero, &req("kv.read")),
        Err(Denial::DelegationTooDeep(_))
    ));
}

#[test]
fn our_tokens_verify_in_mcpvault_unless_they_need_our_facts() {
    let kp = KeyPair::new();
    let k = key_file(&kp);
    let plain = mint(
        &k,
        MintSpec {
            tools: tools("kv.read,db_query"),
            subject: Some("agentA".into()),
            ..MintSpec::default()
        },
    );
    assert!(mcpvault_allows(&plain, &kp, "kv.read"));
    assert!(mcpvault_allows(&plain, &kp, "db_query"));
    assert!(!mcpvault_allows(&plain, &kp, "kv.write"));
    let all = mint(&k, MintSpec::default());
    assert!(mcpvault_allows(&all, &kp, "anything"));
    // Tool and TTL attenuation use only `requested_tool` and `time`: works there.
    let narrowed = attenuate(
        &plain,
        AttenuateSpec {
            tools: tools("db_query"),
            ttl: Some(Duration::from_secs(60)),
            ..AttenuateSpec::default()
        },
    );
    assert!(mcpvault_allows(&narrowed, &kp, "db_query"));
    assert!(!mcpvault_allows(&narrowed, &kp, "kv.read"));
    // A family grant is ours: MCPVault has no `tool_prefix` and denies family members.
    let family = mint(
        &k,
        MintSpec {
            tools: tools("kv.*"),
            ..MintSpec::default()
        },
    );
    assert!(!mcpvault_allows(&family, &kp, "kv.read"));
    // Resource restrictions and depth caps use facts MCPVault never supplies
    // (`request_kind`, `depth`): it denies those tokens. Fail closed, never wider.
    let scoped = mint(
        &k,
        MintSpec {
            resources: res(&["kv:app/*"]),
            ..MintSpec::default()
        },
    );
    assert!(!mcpvault_allows(&scoped, &kp, "kv.read"));
    let capped = attenuate(
        &all,
        AttenuateSpec {
            max_delegation_depth: Some(1),
            ..AttenuateSpec::default()
        },
    );
    assert!(!mcpvault_allows(&capped, &kp, "kv.read"));
    let res_att = attenuate(
        &all,
        AttenuateSpec {
            resources: res(&["transit:k1"]),
            ..AttenuateSpec::default()
        },
    );
    assert!(!mcpvault_allows(&res_att, &kp, "kv.read"));
}

#[test]
fn mcpvault_key_files_load() {
    // MCPVault writes `{"private_key": hex, "public_key": hex}` with serde_json pretty.
    let kp = KeyPair::new();
    let text = format!(
        "{{\n  \"private_key\": \"{}\",\n  \"public_key\": \"{}\"\n}}",
        hex::encode(kp.private().to_bytes()),
        hex::encode(kp.public().to_bytes())
    );
    let kf = KeyFile::from_json(&text).unwrap();
    let t = token::mint(&kf, &MintSpec::default()).unwrap();
    assert!(mcpvault_allows(&t, &kp, "x"));
    // And ours parse as theirs would (same two fields).
    let ours = token::generate_keypair().to_json();
    let v: serde_json::Value = serde_json::from_str(&ours).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 2);
    assert_eq!(v["private_key"].as_str().unwrap().len(), 64);
    assert_eq!(v["public_key"].as_str().unwrap().len(), 64);
}
