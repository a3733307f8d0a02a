//! What a token can say about scope: tool grants and resource patterns, and the
//! Datalog checks they turn into. Values always enter Datalog as parameters, never by
//! string splicing, so a pattern cannot inject rules.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use biscuit_auth::builder::Term;

use crate::error::TokenError;
use crate::http::{HostPattern, HttpPattern, HttpTarget, PathPattern};

/// The resource kinds of the contract. The server names one per tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Kv,
    Transit,
    Db,
    Ssh,
    Kms,
    /// A principal (login name) an SSH certificate or one-time password is for.
    SshPrincipal,
    /// An `http.request` destination (`SCHEME://HOST[:PORT]/PATH`).
    Http,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 7] = [
        ResourceKind::Kv,
        ResourceKind::Transit,
        ResourceKind::Db,
        ResourceKind::Ssh,
        ResourceKind::Kms,
        ResourceKind::SshPrincipal,
        ResourceKind::Http,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Kv => "kv",
            ResourceKind::Transit => "transit",
            ResourceKind::Db => "db",
            ResourceKind::Ssh => "ssh",
            ResourceKind::Kms => "kms",
            ResourceKind::SshPrincipal => "ssh_principal",
            ResourceKind::Http => "http",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResourceKind {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResourceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| TokenError::Resource(s.to_string()))
    }
}

/// `KIND:PATTERN`; a pattern ending in `*` is a prefix, otherwise exact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    pub kind: ResourceKind,
    pub pattern: String,
}

const MAX_PATTERN_LEN: usize = 512;

impl FromStr for ResourcePattern {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, pattern) = s
            .split_once(':')
            .ok_or_else(|| TokenError::Resource(s.to_string()))?;
        let kind: ResourceKind = kind
            .trim()
            .parse()
            .map_err(|_| TokenError::Resource(s.to_string()))?;
        if pattern.is_empty()
            || pattern.len() > MAX_PATTERN_LEN
            || pattern.chars().any(char::is_control)
        {
            return Err(TokenError::Resource(s.to_string()));
        }
        if kind == ResourceKind::Http {
            // Kept in canonical form, so what the token says is what is matched.
            let parsed = HttpPattern::parse(pattern)
                .map_err(|e| TokenError::Invalid(format!("http pattern {pattern:?}: {e}")))?;
            return Ok(ResourcePattern {
                kind,
                pattern: parsed.to_string(),
            });
        }
        // Only a trailing `*` means anything: one anywhere else is refused. (Never
        // slice at a byte index here: a pattern may end in a multi-byte character.)
        let body = pattern.strip_suffix('*').unwrap_or(pattern);
        if body.contains('*') {
            return Err(TokenError::Resource(s.to_string()));
        }
        Ok(ResourcePattern {
            kind,
            pattern: pattern.to_string(),
        })
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.pattern)
    }
}

impl ResourcePattern {
    /// The prefix if this is a prefix pattern (`app/*` -> `app/`).
    pub fn prefix(&self) -> Option<&str> {
        self.pattern.strip_suffix('*')
    }

    /// The parsed URL pattern of an `http` pattern.
    pub fn http(&self) -> Option<HttpPattern> {
        (self.kind == ResourceKind::Http)
            .then(|| HttpPattern::parse(&self.pattern).ok())
            .flatten()
    }

    /// Whether the pattern admits `kind:value`. For `http` the value must be a
    /// canonical URL ([`HttpTarget::canonical`]) and is matched part by part.
    pub fn matches(&self, kind: ResourceKind, value: &str) -> bool {
        if kind == ResourceKind::Http && self.kind == kind {
            return match (self.http(), HttpTarget::from_canonical(value)) {
                (Some(p), Some(t)) => p.admits(&t),
                _ => false,
            };
        }
        self.kind == kind
            && match self.prefix() {
                Some(p) => value.starts_with(p),
                None => value == self.pattern,
            }
    }
}

/// One entry of `--tools`: an exact tool, a family (`kv.*`) or everything (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ToolGrant {
    Exact(String),
    /// Family prefix including the dot, e.g. `kv.`.
    Family(String),
    All,
}

const MAX_TOOL_LEN: usize = 128;

impl FromStr for ToolGrant {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "*" {
            return Ok(ToolGrant::All);
        }
        let (name, family) = match s.strip_suffix(".*") {
            Some(f) => (f, true),
            None => (s, false),
        };
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':');
        if name.is_empty() || s.len() > MAX_TOOL_LEN || !name.chars().all(ok_char) {
            return Err(TokenError::ToolName(s.to_string()));
        }
        Ok(if family {
            ToolGrant::Family(format!("{name}."))
        } else {
            ToolGrant::Exact(name.to_string())
        })
    }
}

impl ToolGrant {
    pub fn matches(&self, tool: &str) -> bool {
        match self {
            ToolGrant::All => true,
            ToolGrant::Exact(t) => t == tool,
            ToolGrant::Family(p) => tool.starts_with(p.as_str()),
        }
    }
}

/// Parses a `--tools a,b,kv.*` list. An empty list is an error: "no tools" is never
/// what a user meant, and silently minting an all-tools token would be worse.
pub fn parse_tools(list: &str) -> Result<Vec<ToolGrant>, TokenError> {
    let tools = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect::<Result<Vec<ToolGrant>, _>>()?;
    if tools.is_empty() {
        return Err(TokenError::ToolName(list.to_string()));
    }
    Ok(tools)
}

/// Datalog source + params for a check that admits only the listed tools. It is
/// written on `requested_tool`, the fact the verifier supplies, never on the token's
/// `tool` grants (a check on grants would pass as soon as any listed grant exists).
/// `None` when the list contains `*` (no narrowing).
pub(crate) fn tools_check(tools: &[ToolGrant]) -> Option<(String, HashMap<String, Term>)> {
    if tools.contains(&ToolGrant::All) {
        return None;
    }
    let mut params = HashMap::new();
    let mut alternatives = Vec::new();
    let exact: BTreeSet<Term> = tools
        .iter()
        .filter_map(|t| match t {
            ToolGrant::Exact(n) => Some(Term::Str(n.clone())),
            _ => None,
        })
        .collect();
    if !exact.is_empty() {
        params.insert("exact".to_string(), Term::Set(exact));
        alternatives.push("requested_tool($t), {exact}.contains($t)".to_string());
    }
    for (i, t) in tools.iter().enumerate() {
        if let ToolGrant::Family(prefix) = t {
            let p = format!("fam{i}");
            params.insert(p.clone(), Term::Str(prefix.clone()));
            alternatives.push(format!("requested_tool($t), $t.starts_with({{{p}}})"));
        }
    }
    Some((format!("check if {}", alternatives.join(" or ")), params))
}

/// Datalog checks restricting resources: one per kind mentioned. A request of another
/// kind (or without a resource) passes that check: kinds a token does not mention stay
/// as they were.
pub(crate) fn resource_checks(
    patterns: &[ResourcePattern],
) -> Vec<(String, HashMap<String, Term>)> {
    let kinds: BTreeSet<ResourceKind> = patterns.iter().map(|p| p.kind).collect();
    kinds
        .into_iter()
        .map(|kind| {
            let mut params = HashMap::new();
            params.insert("kind".to_string(), Term::Str(kind.as_str().to_string()));
            let mut alternatives = vec!["request_kind($k), $k != {kind}".to_string()];
            let exact: BTreeSet<Term> = patterns
                .iter()
                .filter(|p| p.kind == kind && p.prefix().is_none())
                .map(|p| Term::Str(p.pattern.clone()))
                .collect();
            if !exact.is_empty() {
                params.insert("exact".to_string(), Term::Set(exact));
                alternatives.push("requested_resource({kind}, $v), {exact}.contains($v)".into());
            }
            if kind == ResourceKind::Http {
                // Matched on the parts the verifier supplies, never on the string.
                for (i, p) in patterns.iter().enumerate().filter(|(_, p)| p.kind == kind) {
                    alternatives.extend(http_alternatives(i, p, &mut params));
                }
                return (format!("check if {}", alternatives.join(" or ")), params);
            }
            for (i, p) in patterns.iter().enumerate() {
                if let (true, Some(prefix)) = (p.kind == kind, p.prefix()) {
                    let name = format!("pre{i}");
                    params.insert(name.clone(), Term::Str(prefix.to_string()));
                    alternatives.push(format!(
                        "requested_resource({{kind}}, $v), $v.starts_with({{{name}}})"
                    ));
                }
            }
            (format!("check if {}", alternatives.join(" or ")), params)
        })
        .collect()
}

/// The check alternatives for one `http` pattern, over the verifier's
/// `requested_http(scheme, host, parent, port, path)` fact. Only equality and
/// `starts_with`: cheap, and accepted in a holder's block. A pattern that does not
/// parse (it was parsed when the token was made, so never) admits nothing.
fn http_alternatives(
    i: usize,
    p: &ResourcePattern,
    params: &mut HashMap<String, Term>,
) -> Vec<String> {
    let Some(h) = p.http() else {
        return Vec::new();
    };
    params.insert(format!("hs{i}"), Term::Str(h.scheme.clone()));
    params.insert(format!("hn{i}"), Term::Integer(i64::from(h.port)));
    let host = match &h.host {
        HostPattern::Exact(x) => {
            params.insert(format!("hh{i}"), Term::Str(x.clone()));
            format!("$h == {{hh{i}}}")
        }
        HostPattern::OneLabelUnder(base) => {
            params.insert(format!("hh{i}"), Term::Str(base.clone()));
            format!("$d == {{hh{i}}}")
        }
    };
    let head =
        format!("requested_http($s, $h, $d, $n, $p), $s == {{hs{i}}}, $n == {{hn{i}}}, {host}");
    let mut paths = Vec::new();
    match &h.path {
        PathPattern::Exact(x) => {
            params.insert(format!("hp{i}"), Term::Str(x.clone()));
            paths.push(format!("$p == {{hp{i}}}"));
        }
        PathPattern::Prefix(x) if x.ends_with('/') => {
            params.insert(format!("hp{i}"), Term::Str(x.clone()));
            paths.push(format!("$p.starts_with({{hp{i}}})"));
        }
        PathPattern::Prefix(x) => {
            // `/v1*`: `/v1` itself, or under `/v1/`; never `/v1x`.
            params.insert(format!("hp{i}"), Term::Str(x.clone()));
            params.insert(format!("hq{i}"), Term::Str(format!("{x}/")));
            paths.push(format!("$p == {{hp{i}}}"));
            paths.push(format!("$p.starts_with({{hq{i}}})"));
        }
    }
    paths.into_iter().map(|p| format!("{head}, {p}")).collect()
}

/// Datalog check an attenuation block adds to narrow reveal to `patterns` (empty:
/// drop reveal). It passes every ordinary call (`request_purpose("call")`) and, on a
/// reveal question, only a target that matches one of the patterns. Like the other
/// checks it can only take away: what may be revealed at all comes from the authority
/// block's `reveal` facts.
pub(crate) fn reveal_check(patterns: &[ResourcePattern]) -> (String, HashMap<String, Term>) {
    let mut params = HashMap::new();
    let mut alternatives = vec![r#"request_purpose("call")"#.to_string()];
    for (i, p) in patterns.iter().enumerate() {
        let k = format!("rk{i}");
        let v = format!("rv{i}");
        params.insert(k.clone(), Term::Str(p.kind.as_str().to_string()));
        match p.prefix() {
            Some(prefix) => {
                params.insert(v.clone(), Term::Str(prefix.to_string()));
                alternatives.push(format!(
                    "reveal_request({{{k}}}, $v), $v.starts_with({{{v}}})"
                ));
            }
            None => {
                params.insert(v.clone(), Term::Str(p.pattern.clone()));
                alternatives.push(format!("reveal_request({{{k}}}, $v), $v == {{{v}}}"));
            }
        }
    }
    (format!("check if {}", alternatives.join(" or ")), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tools() {
        assert_eq!(
            "kv.*".parse::<ToolGrant>().unwrap(),
            ToolGrant::Family("kv.".into())
        );
        assert_eq!("*".parse::<ToolGrant>().unwrap(), ToolGrant::All);
        assert_eq!(
            "db_query".parse::<ToolGrant>().unwrap(),
            ToolGrant::Exact("db_query".into())
        );
        for bad in ["", "a b", "a\"b", "kv.*.x", "*x", ".*"] {
            assert!(bad.parse::<ToolGrant>().is_err(), "{bad:?} accepted");
        }
        assert!(parse_tools(" , ").is_err());
    }

    #[test]
    fn parses_resources() {
        let p: ResourcePattern = "kv:app/*".parse().unwrap();
        assert_eq!(p.prefix(), Some("app/"));
        assert!(p.matches(ResourceKind::Kv, "app/x"));
        assert!(!p.matches(ResourceKind::Kv, "apx"));
        assert!(!p.matches(ResourceKind::Transit, "app/x"));
        let e: ResourcePattern = "transit:app-aes".parse().unwrap();
        assert!(e.matches(ResourceKind::Transit, "app-aes"));
        assert!(!e.matches(ResourceKind::Transit, "app-aes2"));
        for bad in ["kv", "vault:x", "kv:", "kv:a*b", "kv:a\nb"] {
            assert!(bad.parse::<ResourcePattern>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn non_ascii_patterns_never_panic() {
        // Regression: `kv:é` used to slice the pattern inside its last character.
        for ok in ["kv:é", "kv:é*", "transit:ключ", "kv:🔑", "kv:a/é/*"] {
            let p: ResourcePattern = ok.parse().unwrap_or_else(|e| panic!("{ok:?}: {e}"));
            assert_eq!(p.to_string(), ok);
        }
        let e: ResourcePattern = "kv:é".parse().expect("pattern");
        assert!(e.matches(ResourceKind::Kv, "é") && !e.matches(ResourceKind::Kv, "éé"));
        let pre: ResourcePattern = "kv:é*".parse().expect("pattern");
        assert!(pre.matches(ResourceKind::Kv, "éa") && !pre.matches(ResourceKind::Kv, "e"));
        for bad in ["kv:é*é", "kv:*é", "kv:**", "é:x", "kv\u{e9}"] {
            assert!(bad.parse::<ResourcePattern>().is_err(), "{bad:?} accepted");
        }
        for tools in ["é", "kv.é", "é.*", "kv.read,é"] {
            assert!(parse_tools(tools).is_err(), "{tools:?} accepted");
        }
    }

    proptest::proptest! {
        /// Any text: parsing never panics; what parses prints back to itself and
        /// matches exactly what its definition says.
        #[test]
        fn patterns_parse_and_match_without_panicking(
            kind in "kv|transit|db|ssh|kms|x|",
            sep in ":|",
            pat in proptest::prop_oneof!["\\PC{0,16}", "[aé🔑/*]{0,8}"],
            v in proptest::prop_oneof!["\\PC{0,16}", "[aé🔑/*]{0,8}"],
        ) {
            let s = format!("{kind}{sep}{pat}");
            if let Ok(p) = s.parse::<ResourcePattern>() {
                proptest::prop_assert_eq!(p.to_string().parse::<ResourcePattern>().ok(), Some(p.clone()));
                let want = match p.pattern.strip_suffix('*') {
                    Some(prefix) => v.starts_with(prefix),
                    None => v == p.pattern,
                };
                proptest::prop_assert_eq!(p.matches(p.kind, &v), want);
            }
            let _ = parse_tools(&s);
            let _ = s.parse::<ToolGrant>();
        }
    }
}
