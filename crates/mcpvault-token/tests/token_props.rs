//! Property tests: random attenuation chains against an exact model of the semantics;
//! mint/verify round trips; no panics on arbitrary input.

mod token_common;

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use mcpvault_token::{
    self as token, decode_token, encode_token, AttenuateSpec, MintSpec, Request, RequestResource,
    ResourceKind, ResourcePattern, RevocationSet, ToolGrant,
};
use proptest::prelude::*;
use proptest::test_runner::Config;
use token_common::*;

const TOOLS: [&str; 8] = [
    "kv.read",
    "kv.write",
    "kv.list",
    "transit.encrypt",
    "transit.sign",
    "db.issue_creds",
    "ssh.sign",
    "kms.sign",
];
const FAMILIES: [&str; 5] = ["kv.", "transit.", "db.", "ssh.", "kms."];
const PATTERNS: [&str; 9] = [
    "kv:app/*",
    "kv:app/x",
    "kv:app/y",
    "kv:other/*",
    "kv:shared",
    "kv:*",
    "transit:k1",
    "transit:k2",
    "transit:k*",
];
const REQUESTS: [Option<(ResourceKind, &str)>; 9] = [
    None,
    Some((ResourceKind::Kv, "app/x")),
    Some((ResourceKind::Kv, "app/y")),
    Some((ResourceKind::Kv, "app/zz")),
    Some((ResourceKind::Kv, "other/q")),
    Some((ResourceKind::Kv, "shared")),
    Some((ResourceKind::Transit, "k1")),
    Some((ResourceKind::Transit, "k2")),
    Some((ResourceKind::Db, "role")),
];
/// Request times after minting. Far from every TTL below, so the second-resolution
/// of Biscuit dates cannot decide a case.
const OFFSETS: [u64; 4] = [0, 300, 1200, 5000];

fn grant() -> impl Strategy<Value = ToolGrant> {
    prop_oneof![
        6 => prop::sample::select(TOOLS.to_vec()).prop_map(|t| ToolGrant::Exact(t.into())),
        3 => prop::sample::select(FAMILIES.to_vec()).prop_map(|f| ToolGrant::Family(f.into())),
        1 => Just(ToolGrant::All),
    ]
}

fn grants() -> impl Strategy<Value = Option<Vec<ToolGrant>>> {
    prop::option::weighted(0.8, prop::collection::vec(grant(), 1..4))
}

fn patterns() -> impl Strategy<Value = Vec<ResourcePattern>> {
    prop::collection::vec(
        prop::sample::select(PATTERNS.to_vec()).prop_map(|p| p.parse().unwrap()),
        0..3,
    )
}

fn mint_spec() -> impl Strategy<Value = MintSpec> {
    (
        grants(),
        prop::sample::select(vec![600u64, 3600]),
        0u32..4,
        patterns(),
        patterns(),
    )
        .prop_map(|(tools, ttl, depth, resources, reveal)| MintSpec {
            tools,
            ttl: Duration::from_secs(ttl),
            max_delegation_depth: depth,
            resources,
            reveal,
            ..MintSpec::default()
        })
}

fn attenuate_spec() -> impl Strategy<Value = AttenuateSpec> {
    (
        grants(),
        prop::option::of(prop::sample::select(vec![600u64, 3600, 7200])),
        patterns(),
        prop::option::of(0u32..3),
        prop::option::of(patterns()),
    )
        .prop_map(|(tools, ttl, resources, depth, reveal)| AttenuateSpec {
            tools,
            ttl: ttl.map(Duration::from_secs),
            resources,
            max_delegation_depth: depth,
            reveal,
            confirm: Vec::new(),
        })
}

fn tools_ok(grants: &Option<Vec<ToolGrant>>, tool: &str) -> bool {
    match grants {
        None => true,
        Some(g) => g.iter().any(|g| g.matches(tool)),
    }
}

/// Kinds a list mentions admit only matching requests of that kind.
fn resources_ok(patterns: &[ResourcePattern], req: Option<(ResourceKind, &str)>) -> bool {
    match req {
        None => true,
        Some((kind, value)) => {
            let of_kind: Vec<_> = patterns.iter().filter(|p| p.kind == kind).collect();
            of_kind.is_empty() || of_kind.iter().any(|p| p.matches(kind, value))
        }
    }
}

/// The semantics, written independently of the Datalog.
fn model(
    mint: &MintSpec,
    chain: &[AttenuateSpec],
    tool: &str,
    req: Option<(ResourceKind, &str)>,
    offset: u64,
) -> bool {
    let depth = chain.len() as u64;
    tools_ok(&mint.tools, tool)
        && resources_ok(&mint.resources, req)
        && offset < mint.ttl.as_secs()
        && depth <= u64::from(mint.max_delegation_depth)
        && chain.iter().enumerate().all(|(i, a)| {
            tools_ok(&a.tools, tool)
                && resources_ok(&a.resources, req)
                && a.ttl.is_none_or(|t| offset < t.as_secs())
                && a.max_delegation_depth
                    .is_none_or(|c| depth <= i as u64 + 1 + u64::from(c))
        })
}

/// Reveal, written independently of the Datalog: the call is allowed, the authority
/// block grants reveal on the target, and every block that narrows reveal admits it.
fn reveal_model(
    mint: &MintSpec,
    chain: &[AttenuateSpec],
    tool: &str,
    req: Option<(ResourceKind, &str)>,
    offset: u64,
    (kind, value): (ResourceKind, &str),
) -> bool {
    let matches = |list: &[ResourcePattern]| list.iter().any(|p| p.matches(kind, value));
    model(mint, chain, tool, req, offset)
        && matches(&mint.reveal)
        && chain
            .iter()
            .all(|a| a.reveal.as_deref().is_none_or(matches))
}

fn request<'a>(tool: &'a str, r: Option<(ResourceKind, &'a str)>, offset: u64) -> Request<'a> {
    Request {
        tool,
        resource: r.map(|(kind, value)| RequestResource { kind, value }),
        subject: None,
        now: SystemTime::now() + Duration::from_secs(offset),
    }
}

proptest! {
    #![proptest_config(Config { cases: 64, ..Config::default() })]

    /// Random chains decide exactly as the model says: never broader than the
    /// authority block (soundness), never narrower than the chain (the multi-tool bug).
    #[test]
    fn chains_match_the_model(
        mint_spec in mint_spec(),
        chain in prop::collection::vec(attenuate_spec(), 0..4),
        offset in prop::sample::select(OFFSETS.to_vec()),
    ) {
        let k = key();
        let v = verifier(&[&k]);
        let mut t = token::mint(&k, &mint_spec).unwrap();
        for a in &chain {
            t = token::attenuate(&t, None, a).unwrap();
        }
        let none = RevocationSet::empty();
        for tool in TOOLS.iter().copied().chain(["kv", "kvx.read", "other"]) {
            for r in REQUESTS {
                let want = model(&mint_spec, &chain, tool, r, offset);
                let got = v.authorize(&t, &request(tool, r, offset), &none);
                prop_assert_eq!(got.is_ok(), want, "tool {} resource {:?} at +{}s: {:?}", tool, r, offset, got);
                if got.is_ok() {
                    prop_assert!(tools_ok(&mint_spec.tools, tool));
                    prop_assert!(resources_ok(&mint_spec.resources, r));
                }
            }
        }
    }

    /// Reveal is a grant of the authority block that attenuation narrows or drops
    /// and never adds: random chains decide exactly as the model says, for every call
    /// and every target.
    #[test]
    fn reveal_matches_the_model(
        mint_spec in mint_spec(),
        chain in prop::collection::vec(attenuate_spec(), 0..4),
        offset in prop::sample::select(OFFSETS.to_vec()),
    ) {
        let k = key();
        let v = verifier(&[&k]);
        let mut t = token::mint(&k, &mint_spec).unwrap();
        for a in &chain {
            t = token::attenuate(&t, None, a).unwrap();
        }
        let none = RevocationSet::empty();
        for tool in ["kv.read", "transit.encrypt", "db.issue_creds"] {
            for r in REQUESTS {
                for (kind, value) in REQUESTS.iter().flatten().copied() {
                    let want = reveal_model(&mint_spec, &chain, tool, r, offset, (kind, value));
                    let target = RequestResource { kind, value };
                    let got = v.may_reveal(&t, &request(tool, r, offset), &none, target);
                    prop_assert_eq!(got, want, "call {} {:?} at +{}s, reveal {}:{}", tool, r, offset, kind, value);
                    if got {
                        prop_assert!(mint_spec.reveal.iter().any(|p| p.matches(kind, value)));
                    }
                }
            }
        }
    }

    /// verify(mint(x)) returns x's facts.
    #[test]
    fn mint_verify_round_trip(
        tools in grants(),
        issuer in prop::option::of("[A-Za-z0-9 _.@:-]{1,24}"),
        subject in prop::option::of("[A-Za-z0-9 _.@:-]{1,24}"),
        max_depth in 0u32..=32,
        resources in patterns(),
        ttl in 1u64..100_000,
    ) {
        let k = key();
        let v = verifier(&[&k]);
        let spec = MintSpec {
            tools: tools.clone(),
            ttl: Duration::from_secs(ttl),
            issuer: issuer.clone(),
            subject: subject.clone(),
            max_delegation_depth: max_depth,
            resources: resources.clone(),
            reveal: Vec::new(),
            confirm: Vec::new(),
        };
        let t = token::mint(&k, &spec).unwrap();
        let wildcard = tools.as_ref().is_none_or(|g| g.contains(&ToolGrant::All));
        let probe = match tools.as_ref().and_then(|g| g.first()) {
            Some(ToolGrant::Exact(n)) => n.clone(),
            Some(ToolGrant::Family(p)) => format!("{p}anything"),
            _ => "anything".to_string(),
        };
        let req = Request { subject: subject.as_deref(), ..req(&probe) };
        let facts = v.authorize(&t, &req, &RevocationSet::empty()).unwrap();
        let mut names: Vec<String> = if wildcard {
            Vec::new()
        } else {
            tools.unwrap().iter().map(|g| match g {
                ToolGrant::Exact(n) => n.clone(),
                ToolGrant::Family(p) => format!("{p}*"),
                ToolGrant::All => unreachable!(),
            }).collect()
        };
        names.sort();
        names.dedup();
        let mut res: Vec<String> = resources.iter().map(ToString::to_string).collect();
        res.sort();
        res.dedup();
        prop_assert_eq!(facts.tools, names);
        prop_assert_eq!(facts.tool_wildcard, wildcard);
        prop_assert_eq!(facts.issuer.as_deref(), Some(issuer.as_deref().unwrap_or("mcpvault")));
        prop_assert_eq!(facts.subject, subject);
        prop_assert_eq!(facts.max_delegation_depth, max_depth);
        prop_assert_eq!(facts.delegation_depth, 0);
        prop_assert_eq!(facts.resources, res);
        prop_assert_eq!(facts.revocation_ids, token::inspect(&t).unwrap().revocation_ids);
        prop_assert!(facts.expires_at.is_some());
    }

    /// Arbitrary bytes: inspect and authorize answer, never panic, never allow.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        let k = key();
        let v = verifier(&[&k]);
        let text = STANDARD.encode(&bytes);
        let _ = token::inspect(&text);
        prop_assert!(v.authorize(&text, &req("kv.read"), &RevocationSet::empty()).is_err());
        let _ = token::attenuate(&text, None, &AttenuateSpec::default());
    }

    /// Arbitrary strings: the same.
    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,400}") {
        let k = key();
        let v = verifier(&[&k]);
        let _ = token::inspect(&s);
        prop_assert!(v.authorize(&s, &req("kv.read"), &RevocationSet::empty()).is_err());
        let _ = token::attenuate(&s, None, &AttenuateSpec::default());
    }

    /// A valid token with one byte changed never authorizes more than the original.
    #[test]
    fn mutated_tokens_never_escalate(index in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let k = key();
        let v = verifier(&[&k]);
        let t = token::mint(&k, &MintSpec { tools: tools("kv.read"), ..MintSpec::default() }).unwrap();
        let t = token::attenuate(&t, None, &AttenuateSpec { tools: tools("kv.read"), ..AttenuateSpec::default() }).unwrap();
        let mut bytes = decode_token(&t).unwrap();
        let i = index.index(bytes.len());
        bytes[i] ^= xor;
        let mutated = encode_token(&bytes);
        let _ = token::inspect(&mutated);
        for tool in ["kv.write", "transit.encrypt"] {
            prop_assert!(v.authorize(&mutated, &req(tool), &RevocationSet::empty()).is_err());
        }
        if let Ok(facts) = v.authorize(&mutated, &req("kv.read"), &RevocationSet::empty()) {
            prop_assert_eq!(facts.tools, vec!["kv.read".to_string()]);
        }
    }
}
