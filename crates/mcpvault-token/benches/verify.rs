//! Authorization cost: first sight vs cached, depth 1 and 5, crafted "explode" tokens,
//! and the MCPVault-style path (parse + verify + authorize, no cache) for comparison.
//!
//! `cargo bench --bench verify`

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use biscuit_auth::builder::BlockBuilder;
use biscuit_auth::{AuthorizerBuilder, Biscuit, UnverifiedBiscuit};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use mcpvault_token::{
    self as token, decode_token, encode_token, AttenuateSpec, Denial, KeyFile, MintSpec, Request,
    RequestResource, ResourceKind, RevocationSet, Verifier, VerifierConfig,
};

fn verifier(k: &KeyFile) -> Verifier {
    Verifier::new(
        token::parse_public_keys(&k.public_key).unwrap(),
        VerifierConfig::default(),
    )
    .unwrap()
}

/// A realistic chain: the authority block plus `depth` narrowing blocks (tools, TTL,
/// resources, a depth cap on the first).
fn chain(k: &KeyFile, depth: usize) -> String {
    let t = token::mint(
        k,
        &MintSpec {
            tools: Some(token::parse_tools("kv.*,transit.encrypt").unwrap()),
            subject: Some("agentA".into()),
            max_delegation_depth: 10,
            resources: vec!["kv:app/*".parse().unwrap()],
            ..MintSpec::default()
        },
    )
    .unwrap();
    (0..depth).fold(t, |t, i| narrow(&t, i))
}

/// The chain's block `i + 1`.
fn narrow(t: &str, i: usize) -> String {
    token::attenuate(
        t,
        None,
        &AttenuateSpec {
            tools: Some(token::parse_tools("kv.read,kv.list").unwrap()),
            ttl: Some(Duration::from_secs(1800)),
            resources: vec![format!("kv:app/{}*", "x/".repeat(i)).parse().unwrap()],
            max_delegation_depth: (i == 0).then_some(8),
            reveal: None,
            confirm: Vec::new(),
        },
    )
    .unwrap()
}

fn request(value: &str) -> Request<'_> {
    Request {
        tool: "kv.read",
        resource: Some(RequestResource {
            kind: ResourceKind::Kv,
            value,
        }),
        subject: Some("agentA"),
        now: SystemTime::now(),
    }
}

const VALUE: &str = "app/x/x/x/x/x/secret";

fn bench_depths(c: &mut Criterion) {
    let k = token::generate_keypair();
    let none = RevocationSet::empty();
    for depth in [1usize, 5] {
        let parent = chain(&k, depth - 1);
        let t = narrow(&parent, depth - 1);
        let v = verifier(&k);
        assert!(v.authorize(&t, &request(VALUE), &none).is_ok());

        // First sight: a fresh verifier each time (decode, parse, cost bound,
        // signature chain, fact extraction, Datalog).
        c.bench_function(&format!("first_sight/depth{depth}"), |b| {
            b.iter_batched(
                || verifier(&k),
                |v| black_box(v.authorize(black_box(&t), &request(VALUE), &none)).is_ok(),
                BatchSize::SmallInput,
            )
        });

        // First sight of a token whose parent was verified before (the common case
        // for delegation): only the new block's signature is checked.
        if depth > 1 {
            c.bench_function(&format!("first_sight_parent_seen/depth{depth}"), |b| {
                b.iter_batched(
                    || {
                        let v = verifier(&k);
                        assert!(v.authorize(&parent, &request(VALUE), &none).is_ok());
                        v
                    },
                    |v| black_box(v.authorize(black_box(&t), &request(VALUE), &none)).is_ok(),
                    BatchSize::SmallInput,
                )
            });
        }

        // Token seen before, request not: Datalog runs, the signature chain does not.
        let values: Vec<String> = (0..100_000).map(|i| format!("app/x/x/x/x/x/{i}")).collect();
        let mut i = 0;
        c.bench_function(&format!("seen_token_new_request/depth{depth}"), |b| {
            b.iter(|| {
                i = (i + 1) % values.len();
                black_box(v.authorize(&t, &request(&values[i]), &none)).is_ok()
            })
        });

        // The path before the per-token template (what `seen_token_new_request` cost
        // up to 2a3fa76): the policy, the request's facts, a fresh `build` of the
        // parsed token (every block decoded and translated again), authorize.
        let root = token::parse_public_keys(&k.public_key).unwrap()[0];
        let parsed = Biscuit::from(decode_token(&t).unwrap(), root).unwrap();
        let policy = AuthorizerBuilder::new()
            .code(token::VERIFIER_POLICY)
            .unwrap()
            .set_limits(VerifierConfig::default().limits);
        let mut j = 0;
        c.bench_function(&format!("rebuilt_per_request/depth{depth}"), |b| {
            b.iter(|| {
                use biscuit_auth::builder::{date, fact, int, string};
                j = (j + 1) % values.len();
                let mut a = policy
                    .clone()
                    .fact(fact("time", &[date(&SystemTime::now())]))
                    .and_then(|b| b.fact(fact("requested_tool", &[string("kv.read")])))
                    .and_then(|b| b.fact(fact("request_kind", &[string("kv")])))
                    .and_then(|b| b.fact(fact("depth", &[int(depth as i64)])))
                    .and_then(|b| {
                        b.fact(fact(
                            "requested_resource",
                            &[string("kv"), string(&values[j])],
                        ))
                    })
                    .and_then(|b| b.fact(fact("request_purpose", &[string("call")])))
                    .and_then(|b| b.build(&parsed))
                    .unwrap();
                black_box(a.authorize()).is_ok()
            })
        });

        // Same token, same request, same second: the decision cache.
        c.bench_function(&format!("cached/depth{depth}"), |b| {
            b.iter(|| black_box(v.authorize(black_box(&t), &request(VALUE), &none)).is_ok())
        });
    }
}

/// What MCPVault's `BiscuitProvider::verify` does per call (parse + signature chain,
/// revocation scan, authorizer with `time` and `requested_tool`, authorize, then seven
/// fact queries; no cache), on a token shaped like its bench's (five empty
/// attenuation blocks). Our first sight of the same token is measured beside it.
fn bench_mcpvault_style(c: &mut Criterion) {
    use std::collections::{HashMap, HashSet};
    let k = token::generate_keypair();
    let root = token::parse_public_keys(&k.public_key).unwrap()[0];
    let mut t = token::mint(
        &k,
        &MintSpec {
            tools: Some(token::parse_tools("bench_tool").unwrap()),
            subject: Some("bench-agent".into()),
            max_delegation_depth: 10,
            ..MintSpec::default()
        },
    )
    .unwrap();
    for _ in 0..5 {
        t = token::attenuate(&t, None, &AttenuateSpec::default()).unwrap();
    }
    let bytes = decode_token(&t).unwrap();
    let revoked: HashSet<Vec<u8>> = HashSet::new();
    c.bench_function("mcpvault_style_no_cache/depth5", |b| {
        b.iter(|| {
            use biscuit_auth::builder::Term;
            let biscuit = Biscuit::from(black_box(&bytes), root).unwrap();
            for id in biscuit.revocation_identifiers() {
                assert!(!revoked.contains(&id));
            }
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let mut a = AuthorizerBuilder::new()
                .code_with_params(
                    "time({t});",
                    HashMap::from([("t".to_string(), Term::Date(now))]),
                    HashMap::new(),
                )
                .unwrap()
                .code_with_params(
                    "requested_tool({tool});",
                    HashMap::from([("tool".to_string(), Term::Str("bench_tool".into()))]),
                    HashMap::new(),
                )
                .unwrap()
                .code(r#"allow if tool($name), requested_tool($name); allow if tool_wildcard("*"); deny if true;"#)
                .unwrap()
                .build(&biscuit)
                .unwrap();
            a.authorize().unwrap();
            let tools: Vec<(String,)> = a.query("q($n) <- tool($n)").unwrap_or_default();
            let w: Vec<(String,)> = a.query("q($w) <- tool_wildcard($w)").unwrap_or_default();
            let ops: Vec<(String, String)> =
                a.query("q($t, $o) <- operation($t, $o)").unwrap_or_default();
            let limits: Vec<(String, String, i64)> = a
                .query("q($t, $k, $m) <- resource_limit($t, $k, $m)")
                .unwrap_or_default();
            let depths: Vec<(i64,)> = a.query("q($d) <- delegation_depth($d)").unwrap_or_default();
            let issuers: Vec<(String,)> = a.query("q($i) <- issuer($i)").unwrap_or_default();
            let subjects: Vec<(String,)> = a.query("q($s) <- subject($s)").unwrap_or_default();
            black_box((tools, w, ops, limits, depths, issuers, subjects))
        })
    });
    // One list for the whole run: a new list is a new generation, which (by design)
    // invalidates cached decisions.
    let none = RevocationSet::empty();
    let req = Request {
        tool: "bench_tool",
        resource: None,
        subject: Some("bench-agent"),
        now: SystemTime::now(),
    };
    c.bench_function("first_sight/mcpvault_shape_depth5", |b| {
        b.iter_batched(
            || verifier(&k),
            |v| black_box(v.authorize(&t, &req, &none)).is_ok(),
            BatchSize::SmallInput,
        )
    });
    let v = verifier(&k);
    c.bench_function("cached/mcpvault_shape_depth5", |b| {
        b.iter(|| black_box(v.authorize(&t, &req, &none)).is_ok())
    });
}

fn append_raw(t: &str, code: &str) -> String {
    let u = UnverifiedBiscuit::from(decode_token(t).unwrap()).unwrap();
    encode_token(
        &u.append(BlockBuilder::new().code(code).unwrap())
            .unwrap()
            .to_vec()
            .unwrap(),
    )
}

fn facts(name: &str, n: usize) -> String {
    (0..n).map(|i| format!("{name}({i});")).collect()
}

/// Crafted tokens: each would cost seconds to minutes (and gigabytes) if evaluated;
/// measured here from first sight (fresh verifier, so no cached rejection).
fn bench_explode(c: &mut Criterion) {
    let k = token::generate_keypair();
    let base = token::mint(&k, &MintSpec::default()).unwrap();
    let cases = [
        (
            "explode/3000_facts_cross_join",
            append_raw(&base, &(facts("f", 3000) + "x($a, $b) <- f($a), f($b);")),
        ),
        (
            "explode/600_facts_cross_join",
            append_raw(&base, &(facts("f", 600) + "x($a, $b) <- f($a), f($b);")),
        ),
        (
            "explode/400_facts_3way_check",
            append_raw(
                &base,
                &(facts("f", 400) + "check if f($a), f($b), f($c), $a == -1;"),
            ),
        ),
        (
            "explode/regex",
            append_raw(
                &base,
                r#"check if requested_tool($t), $t.matches("^(a+)+$");"#,
            ),
        ),
        (
            "explode/runtime_fact_limit",
            append_raw(
                &base,
                &(facts("f", 45) + &facts("g", 30) + "x($a, $b) <- f($a), g($b);"),
            ),
        ),
        // The most a token can cost while passing the static bound: a 3 600-fact join
        // in one rule iteration (then the run limit on facts), and a check scanning
        // 1 225 combinations with 3 ops each.
        (
            "explode/at_budget_rule",
            append_raw(
                &base,
                &(facts("f", 60) + &facts("g", 60) + "x($a, $b) <- f($a), g($b);"),
            ),
        ),
        (
            "explode/at_budget_check",
            append_raw(
                &base,
                &(facts("f", 34) + &facts("g", 34) + "check if f($a), g($b), $a < 0;"),
            ),
        ),
    ];
    let none = RevocationSet::empty();
    let r = Request {
        tool: "x",
        resource: None,
        subject: None,
        now: SystemTime::now(),
    };
    for (name, t) in &cases {
        let d = verifier(&k).authorize(t, &r, &none);
        // Refused, or (at_budget_check) evaluated in full and denied by its check.
        assert!(
            matches!(
                d,
                Err(Denial::LimitExceeded | Denial::Malformed(_) | Denial::ToolNotGranted(_))
            ),
            "{name}: {d:?}"
        );
        eprintln!("{name}: {} bytes, {d:?}", t.len());
        c.bench_function(name, |b| {
            b.iter_batched(
                || verifier(&k),
                |v| black_box(v.authorize(t, &r, &none)).is_err(),
                BatchSize::SmallInput,
            )
        });
    }
    // Replaying a rejected token to the same verifier: the rejection is cached.
    let v = verifier(&k);
    let t = &cases[0].1;
    let _ = v.authorize(t, &r, &none);
    c.bench_function("explode/3000_facts_cross_join_replayed", |b| {
        b.iter(|| black_box(v.authorize(t, &r, &none)).is_err())
    });
}

/// Where a depth-5 first sight goes: the static shape walk, biscuit's parse, the
/// signature chain (one Ed25519 `verify_strict` per block plus the proof), and the
/// per-token authorizer template. The rest is one authorization.
fn bench_first_sight_parts(c: &mut Criterion) {
    let k = token::generate_keypair();
    let root = token::parse_public_keys(&k.public_key).unwrap()[0];
    let bytes = decode_token(&chain(&k, 5)).unwrap();
    let limits = VerifierConfig::default().limits;
    c.bench_function("first_sight_parts/depth5/shape_walk", |b| {
        b.iter(|| token::bounds::check(black_box(&bytes), limits.max_facts).is_ok())
    });
    c.bench_function("first_sight_parts/depth5/parse", |b| {
        b.iter(|| UnverifiedBiscuit::from(black_box(&bytes)).is_ok())
    });
    let unverified = UnverifiedBiscuit::from(&bytes).unwrap();
    c.bench_function("first_sight_parts/depth5/signature_chain", |b| {
        b.iter(|| unverified.clone().verify(root).is_ok())
    });
    let parsed = unverified.verify(root).unwrap();
    let policy = AuthorizerBuilder::new()
        .code(token::VERIFIER_POLICY)
        .unwrap()
        .set_limits(limits);
    c.bench_function("first_sight_parts/depth5/template_build", |b| {
        b.iter(|| policy.clone().build(black_box(&parsed)).is_ok())
    });
}

/// Why the chain is not batch-verified: for six signatures, ed25519-dalek's batch
/// costs about half of six `verify_strict`, but the batch equation accepts what
/// `verify_strict` rejects unless every R and key is checked torsion-free, and that
/// check costs most of a verification per point (twelve points for six blocks).
fn bench_why_not_batch(c: &mut Criterion) {
    use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
    let keys: Vec<SigningKey> = (1..=6u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect();
    let msgs: Vec<Vec<u8>> = (1..=6u8).map(|i| vec![i; 400]).collect();
    let sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let vks: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    c.bench_function("why_not_batch/6x_verify_strict", |b| {
        b.iter(|| (0..6).all(|i| vks[i].verify_strict(black_box(&msgs[i]), &sigs[i]).is_ok()))
    });
    c.bench_function("why_not_batch/verify_batch_6", |b| {
        b.iter(|| ed25519_dalek::verify_batch(black_box(&refs), &sigs, &vks).is_ok())
    });
    let point = vks[0].to_edwards();
    c.bench_function("why_not_batch/is_torsion_free_1_point", |b| {
        b.iter(|| black_box(point).is_torsion_free())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_depths, bench_first_sight_parts, bench_why_not_batch, bench_mcpvault_style, bench_explode
}
criterion_main!(benches);
