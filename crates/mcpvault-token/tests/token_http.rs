//! `http` resources through real tokens: the Datalog the token carries (minted and
//! attenuated) decides exactly as `ResourcePattern::matches` does, on the URL tricks
//! an agent could try, and a holder's own `requested_http` facts grant nothing.

mod token_common;

use mcpvault_token::http::HttpTarget;
use mcpvault_token::{AttenuateSpec, Denial, MintSpec, ResourceKind, ResourcePattern};
use proptest::prelude::*;
use token_common::*;

const HTTP: ResourceKind = ResourceKind::Http;

/// Canonical values for URLs as a parser leaves them; the tricks are in the hosts
/// and paths (the server refuses userinfo before it ever names a resource).
const VALUES: &[&str] = &[
    "https://api.example.com:443/",
    "https://api.example.com:443/v1",
    "https://api.example.com:443/v1/",
    "https://api.example.com:443/v1/x",
    "https://api.example.com:443/v1x",
    "https://api.example.com:443/admin",
    "https://api.example.com:443/v1%2Fx",
    "https://api.example.com:8443/v1/x",
    "http://api.example.com:80/v1/x",
    "https://api.example.com.evil.net:443/v1/x",
    "https://evil.net:443/v1/x",
    "https://example.com:443/v1/x",
    "https://a.example.com:443/v1/x",
    "https://a.b.example.com:443/v1/x",
    "https://aexample.com:443/v1/x",
    "https://127.0.0.1:443/v1/x",
    "https://[::1]:443/v1/x",
    // Not canonical: never admitted by an http pattern.
    "https://api.example.com/v1/x",
    "https://api.example.com:443/v1/../admin",
    "https://user@api.example.com:443/v1/x",
    "https://api.example.com:443/v1/x?q=1",
];

const PATTERNS: &[&str] = &[
    "http:https://api.example.com*",
    "http:https://api.example.com/v1/*",
    "http:https://api.example.com/v1*",
    "http:https://api.example.com/v1/x",
    "http:https://*.example.com/*",
    "http:https://api.example.com:8443/*",
    "http:http://api.example.com/*",
    "http:https://127.0.0.1/*",
    "http:https://[::1]/v1/*",
];

fn decide(v: &mcpvault_token::Verifier, t: &str, value: &str) -> bool {
    match check(v, t, &req_res("http.request", HTTP, value)) {
        Ok(_) => true,
        Err(Denial::ResourceNotGranted(_)) => false,
        Err(e) => panic!("{value}: {e}"),
    }
}

#[test]
fn datalog_agrees_with_matches_on_url_tricks() {
    let k = key();
    let v = verifier(&[&k]);
    let base = mint(&k, MintSpec::default());
    for text in PATTERNS {
        let p: ResourcePattern = text.parse().expect("pattern");
        let minted = mint(
            &k,
            MintSpec {
                resources: vec![p.clone()],
                ..MintSpec::default()
            },
        );
        let narrowed = attenuate(
            &base,
            AttenuateSpec {
                resources: vec![p.clone()],
                ..AttenuateSpec::default()
            },
        );
        for value in VALUES {
            let want = p.matches(HTTP, value);
            assert_eq!(decide(&v, &minted, value), want, "minted {p} on {value}");
            assert_eq!(
                decide(&v, &narrowed, value),
                want,
                "attenuated {p} on {value}"
            );
        }
    }
}

#[test]
fn the_tricks_are_refused() {
    let p: ResourcePattern = "http:https://api.example.com*".parse().expect("pattern");
    assert_eq!(p.pattern, "https://api.example.com:443/*");
    for no in [
        "https://api.example.com.evil.net:443/",
        "https://evil.net:443/",
        "https://api.example.com:443/x?q=1",
    ] {
        assert!(!p.matches(HTTP, no), "{no}");
    }
    let v1: ResourcePattern = "http:https://api.example.com/v1/*"
        .parse()
        .expect("pattern");
    for no in [
        "https://api.example.com:443/v1x",
        "https://api.example.com:443/v1/../admin",
        "https://api.example.com:443/v1/%2e%2e/admin",
        "https://api.example.com:443/v1/..%2Fadmin",
    ] {
        assert!(!v1.matches(HTTP, no), "{no}");
    }
    // Userinfo and other things a URL parser could read two ways: refused at mint.
    for bad in [
        "http:https://api.example.com@evil.net/*",
        "http:https://user@api.example.com/*",
        "http:api.example.com/*",
        "http:https://api.example.com/v1/../*",
        "http:https://*.*.example.com/*",
    ] {
        assert!(bad.parse::<ResourcePattern>().is_err(), "{bad} accepted");
    }
}

#[test]
fn a_holders_own_http_facts_grant_nothing() {
    let k = key();
    let v = verifier(&[&k]);
    let t = mint(
        &k,
        MintSpec {
            resources: res(&["http:https://api.example.com/v1/*"]),
            ..MintSpec::default()
        },
    );
    let hostile = append_raw(
        &t,
        r#"requested_http("https", "api.example.com", "example.com", 443, "/v1/x");
           requested_resource("http", "https://api.example.com:443/v1/x");"#,
    );
    assert!(!decide(&v, &hostile, "https://evil.net:443/v1/x"));
    assert!(decide(&v, &hostile, "https://api.example.com:443/v1/x"));
}

#[test]
fn reveal_on_http_is_refused() {
    let k = key();
    let spec = MintSpec {
        reveal: res(&["http:https://api.example.com/*"]),
        ..MintSpec::default()
    };
    assert!(mcpvault_token::mint(&k, &spec).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Generated hosts, ports and paths: the token's decision is `matches`.
    #[test]
    fn datalog_agrees_with_matches(
        pat in prop::sample::select(PATTERNS.to_vec()),
        host in "(api|a|b)(\\.example\\.com)(\\.evil\\.net)?",
        port in prop::sample::select(vec![443u16, 8443, 80]),
        path in "(/(v1|v1x|x|admin|%2F)){0,3}/?",
    ) {
        let path = if path.is_empty() { "/".to_string() } else { path };
        let Ok(target) = HttpTarget::new("https", &host, port, &path) else {
            return Ok(());
        };
        let value = target.canonical();
        let k = key();
        let v = verifier(&[&k]);
        let p: ResourcePattern = pat.parse().expect("pattern");
        let t = mint(&k, MintSpec { resources: vec![p.clone()], ..MintSpec::default() });
        prop_assert_eq!(decide(&v, &t, &value), p.matches(HTTP, &value));
    }
}
