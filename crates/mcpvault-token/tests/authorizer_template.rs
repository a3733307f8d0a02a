//! The vendored biscuit-auth addition `Authorizer::add_fact` (vendor/README.md): an
//! authorizer built once per token and cloned per request, with the request's facts
//! added, must decide exactly as one built with those facts. Checked here on tokens
//! with rules, checks in several blocks and policies that read the request's facts,
//! against every combination of request facts; a template that has already run
//! refuses new facts, and a fact with an unset parameter is refused as the builder
//! refuses it.

use std::time::Duration;

use biscuit_auth::builder::{fact, string, Fact};
use biscuit_auth::{AuthorizerBuilder, AuthorizerLimits, Biscuit, KeyPair};

const POLICY: &str = r#"
allow if tool($t), requested_tool($t);
allow if derived_ok($r);
deny if true;
"#;

fn token() -> Biscuit {
    let root = KeyPair::new();
    let b = Biscuit::builder()
        .code(
            r#"
            tool("read");
            tool("list");
            owner("alice", "doc1");
            derived_ok($r) <- requested_resource($r), owner("alice", $r);
            check if requested_resource($r), ["doc1", "doc2"].contains($r);
            "#,
        )
        .and_then(|b| b.build(&root))
        .expect("mint");
    b.append(
        biscuit_auth::builder::BlockBuilder::new()
            .code(r#"check if requested_tool($t), $t != "list"; check if requested_resource($r), $r.starts_with("doc");"#)
            .expect("block"),
    )
    .expect("append")
}

fn requests() -> Vec<Vec<Fact>> {
    let mut out = Vec::new();
    for tool in [None, Some("read"), Some("list"), Some("write")] {
        for res in [None, Some("doc1"), Some("doc2"), Some("doc3"), Some("x")] {
            let mut facts = Vec::new();
            if let Some(t) = tool {
                facts.push(fact("requested_tool", &[string(t)]));
            }
            if let Some(r) = res {
                facts.push(fact("requested_resource", &[string(r)]));
            }
            out.push(facts);
        }
    }
    out
}

#[test]
fn a_cloned_template_with_added_facts_decides_like_a_fresh_build() {
    let token = token();
    // A time bound no debug build on a loaded host reaches: a timeout on one side
    // only would be a difference in load, not in logic.
    let policy = AuthorizerBuilder::new()
        .code(POLICY)
        .expect("policy")
        .set_limits(AuthorizerLimits {
            max_time: Duration::from_secs(5),
            ..AuthorizerLimits::default()
        });
    let template = policy.clone().build(&token).expect("template");
    let mut allowed = 0;
    for facts in requests() {
        let mut fresh = facts
            .iter()
            .try_fold(policy.clone(), |b, f| b.fact(f.clone()))
            .and_then(|b| b.build(&token))
            .expect("fresh build");
        let mut cloned = template.clone();
        for f in &facts {
            cloned.add_fact(f.clone()).expect("add_fact");
        }
        let (want, got) = (fresh.authorize(), cloned.authorize());
        // The same outcome, the same failed checks and matched policy.
        assert_eq!(format!("{want:?}"), format!("{got:?}"), "request {facts:?}");
        allowed += usize::from(want.is_ok());
    }
    // Both outcomes occur, so the comparison says something.
    assert!(
        allowed > 0 && allowed < requests().len(),
        "allowed {allowed}"
    );
}

#[test]
fn a_template_that_has_run_refuses_new_facts() {
    let token = token();
    let mut a = AuthorizerBuilder::new()
        .code(POLICY)
        .and_then(|b| b.build(&token))
        .expect("build");
    let _ = a.authorize();
    assert!(a
        .add_fact(fact("requested_tool", &[string("read")]))
        .is_err());
}

#[test]
fn add_fact_refuses_a_fact_with_an_unset_parameter() {
    let token = token();
    let mut a = AuthorizerBuilder::new()
        .code(POLICY)
        .and_then(|b| b.build(&token))
        .expect("build");
    // As `AuthorizerBuilder::fact` does (the same validation).
    let f: Fact = "requested_tool({t})".try_into().expect("parse");
    assert!(AuthorizerBuilder::new().fact(f.clone()).is_err());
    assert!(a.add_fact(f).is_err());
}
