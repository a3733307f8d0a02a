//! `http` resources: destinations of `http.request`, matched on parsed URL parts,
//! never as string prefixes.
//!
//! The server parses the request URL (with the same parser its HTTP client uses) and
//! names it by its canonical form, `SCHEME://HOST:PORT/PATH` ([`HttpTarget`]): scheme
//! and host lowercase, the port always written, dot segments resolved, no userinfo,
//! query or fragment. The verifier splits that back into parts and supplies them as a
//! `requested_http(scheme, host, parent, port, path)` fact; a token's `http` patterns
//! ([`HttpPattern`]) become checks on those parts. Both sides refuse what they cannot
//! read exactly, so a pattern and a request never disagree on where a part ends.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A request destination in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// `http` or `https`.
    pub scheme: String,
    /// Lowercase DNS name, dotted IPv4, or `[IPv6]`.
    pub host: String,
    pub port: u16,
    /// Starts with `/`; no dot segments; percent-escapes as the URL wrote them.
    pub path: String,
}

/// What a pattern says about the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// `*.example.com`: exactly one more label (`a.example.com`), as TLS wildcard
    /// certificates do; never `example.com` itself, never `a.b.example.com`.
    OneLabelUnder(String),
}

/// What a pattern says about the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    Exact(String),
    /// `/v1/*` (prefix `/v1/`) or `/v1*` (prefix `/v1`: the path `/v1` itself and
    /// everything under `/v1/`). Always cut at a `/` boundary: never `/v1x`.
    Prefix(String),
}

/// A parsed `SCHEME://HOST[:PORT]/PATH[*]` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPattern {
    pub scheme: String,
    pub host: HostPattern,
    pub port: u16,
    pub path: PathPattern,
}

/// Why a URL or pattern part is not usable: said plainly, without echoing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError(pub &'static str);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// A DNS name we can compare exactly: lowercase ASCII labels of letters, digits, `-`
/// and `_`, no empty label (so no trailing dot), and not something a URL parser
/// would read as an IPv4 address (`127.1`, `0x7f.0.0.1`).
fn check_domain(host: &str) -> Result<(), HttpError> {
    if host.is_empty() || host.len() > 253 {
        return Err(HttpError("host must be 1 to 253 characters"));
    }
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 || !label.chars().all(ok) {
            return Err(HttpError(
                "host must be lowercase ASCII labels of letters, digits, '-' or '_' \
                 (IDNs in punycode), with no empty label or trailing dot",
            ));
        }
    }
    let last = host.rsplit('.').next().unwrap_or("");
    let numeric = last.chars().all(|c| c.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].chars().all(|c| c.is_ascii_hexdigit()));
    if numeric {
        return Err(HttpError(
            "host looks like an IPv4 address but is not written as four decimal numbers",
        ));
    }
    Ok(())
}

/// The host in canonical form: a checked DNS name, dotted IPv4 or `[IPv6]`.
fn canonical_host(host: &str) -> Result<String, HttpError> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip: Ipv6Addr = inner
            .parse()
            .map_err(|_| HttpError("not an IPv6 address between [ ]"))?;
        return Ok(format!("[{ip}]"));
    }
    let lower = host.to_ascii_lowercase();
    if let Ok(ip) = lower.parse::<Ipv4Addr>() {
        return Ok(ip.to_string());
    }
    check_domain(&lower)?;
    Ok(lower)
}

/// The domain a host sits directly under (`api.example.com` -> `example.com`); empty
/// for IP literals and single-label names, which no `*.` pattern admits.
pub fn parent_domain(host: &str) -> &str {
    if host.starts_with('[') || host.parse::<Ipv4Addr>().is_ok() {
        return "";
    }
    host.split_once('.').map(|(_, p)| p).unwrap_or("")
}

/// Whether `path` is free of `.` and `..` segments, also when percent-encoded
/// (`%2e%2e`) or hidden behind an encoded separator (`..%2f`, `..%5c`): servers
/// differ on decoding those, so no path under a prefix may climb out of it.
fn dot_free(path: &str) -> bool {
    path.split('/').all(|segment| {
        let decoded = percent_decode(segment);
        decoded
            .split(|b| *b == b'/' || *b == b'\\')
            .all(|piece| piece != b"." && piece != b"..")
    })
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let v = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(v as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// A path as a URL parser leaves it: printable ASCII (others percent-encoded), no
/// `?`, `#` or `\`, no dot segments.
fn check_path(path: &str) -> Result<(), HttpError> {
    if !path.starts_with('/') {
        return Err(HttpError("path must start with '/'"));
    }
    if path.chars().any(|c| {
        !c.is_ascii_graphic() || matches!(c, '?' | '#' | '\\' | '"' | '<' | '>' | '`' | '{' | '}')
    }) {
        return Err(HttpError(
            "path must be printable ASCII without spaces, '?', '#', '\\', quotes, '<', '>', \
             '`', '{' or '}' (percent-encode them)",
        ));
    }
    if !dot_free(path) {
        return Err(HttpError(
            "path has a '.' or '..' segment (perhaps percent-encoded or behind an encoded '/')",
        ));
    }
    Ok(())
}

/// `HOST[:PORT]` with the scheme's default port when none is written.
fn split_authority(authority: &str, scheme: &str) -> Result<(String, u16), HttpError> {
    if authority.contains('@') {
        return Err(HttpError("userinfo (user@host) is not accepted"));
    }
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(i) => {
                let (h, rest) = authority.split_at(i + 1);
                match rest {
                    "" => (h, None),
                    r => (h, Some(r.strip_prefix(':').ok_or(HttpError("bad port"))?)),
                }
            }
            None => return Err(HttpError("unclosed '[' in host")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => default_port(scheme).ok_or(HttpError("scheme must be http or https"))?,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(HttpError("port must be 1 to 65535")),
            }
        }
        Some(_) => return Err(HttpError("port must be 1 to 65535")),
    };
    Ok((host.to_string(), port))
}

fn split_scheme(s: &str) -> Result<(String, &str), HttpError> {
    let (scheme, rest) = s
        .split_once("://")
        .ok_or(HttpError("expected SCHEME://HOST[:PORT]/PATH"))?;
    let scheme = scheme.to_ascii_lowercase();
    if default_port(&scheme).is_none() {
        return Err(HttpError("scheme must be http or https"));
    }
    Ok((scheme, rest))
}

impl HttpTarget {
    /// Checks parts a URL parser produced and puts them in canonical form.
    pub fn new(scheme: &str, host: &str, port: u16, path: &str) -> Result<Self, HttpError> {
        let scheme = scheme.to_ascii_lowercase();
        if default_port(&scheme).is_none() {
            return Err(HttpError("scheme must be http or https"));
        }
        if port == 0 {
            return Err(HttpError("port must be 1 to 65535"));
        }
        check_path(path)?;
        Ok(HttpTarget {
            scheme,
            host: canonical_host(host)?,
            port,
            path: path.to_string(),
        })
    }

    /// `https://api.example.com:443/v1/x`: the resource value the server authorizes.
    pub fn canonical(&self) -> String {
        format!("{}://{}:{}{}", self.scheme, self.host, self.port, self.path)
    }

    /// Reads a canonical value back; `None` unless it is exactly canonical (a value
    /// in any other spelling matches no `http` pattern: fail closed).
    pub fn from_canonical(s: &str) -> Option<Self> {
        let (scheme, rest) = split_scheme(s).ok()?;
        let slash = rest.find('/')?;
        let (authority, path) = rest.split_at(slash);
        // The canonical form always writes the port.
        if !authority.ends_with(|c: char| c.is_ascii_digit()) || authority.ends_with(']') {
            return None;
        }
        let (host, port) = split_authority(authority, &scheme).ok()?;
        let t = HttpTarget::new(&scheme, &host, port, path).ok()?;
        (t.canonical() == s).then_some(t)
    }

    /// The domain one label up (see [`parent_domain`]).
    pub fn parent(&self) -> &str {
        parent_domain(&self.host)
    }
}

impl HttpPattern {
    /// Parses `SCHEME://HOST[:PORT]/PATH` with an optional trailing `*` (path prefix)
    /// and an optional leading `*.` on the host. `https://api.example.com*` means
    /// every path on that origin (`https://api.example.com/*`); without a path and
    /// without `*` the path is `/`.
    pub fn parse(s: &str) -> Result<Self, HttpError> {
        let (scheme, rest) = split_scheme(s)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => match rest.strip_suffix('*') {
                Some(a) => (a, "/*"),
                None => (rest, "/"),
            },
        };
        if authority.contains(['?', '#', '\\', '*']) && !authority.starts_with("*.") {
            return Err(HttpError(
                "host may hold '*' only as a leading '*.' label; no '?', '#' or '\\'",
            ));
        }
        let (host, port) = split_authority(authority, &scheme)?;
        let host = match host.strip_prefix("*.") {
            Some(base) => {
                let base = base.to_ascii_lowercase();
                check_domain(&base)?;
                HostPattern::OneLabelUnder(base)
            }
            None => HostPattern::Exact(canonical_host(&host)?),
        };
        if path.strip_suffix('*').unwrap_or(path).contains('*') {
            return Err(HttpError("'*' may only end the path"));
        }
        let path = match path.strip_suffix('*') {
            Some(prefix) => {
                check_path(prefix)?;
                PathPattern::Prefix(prefix.to_string())
            }
            None => {
                check_path(path)?;
                PathPattern::Exact(path.to_string())
            }
        };
        Ok(HttpPattern {
            scheme,
            host,
            port,
            path,
        })
    }

    /// Whether the pattern admits the target.
    pub fn admits(&self, t: &HttpTarget) -> bool {
        let host = match &self.host {
            HostPattern::Exact(h) => *h == t.host,
            HostPattern::OneLabelUnder(base) => t.parent() == base,
        };
        let path = match &self.path {
            PathPattern::Exact(p) => *p == t.path,
            PathPattern::Prefix(p) if p.ends_with('/') => t.path.starts_with(p.as_str()),
            PathPattern::Prefix(p) => {
                t.path == *p
                    || t.path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        };
        self.scheme == t.scheme && self.port == t.port && host && path
    }
}

/// The canonical pattern text: scheme and host lowercase, the port always written.
impl fmt::Display for HttpPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostPattern::Exact(h) => h.clone(),
            HostPattern::OneLabelUnder(b) => format!("*.{b}"),
        };
        let path = match &self.path {
            PathPattern::Exact(p) => p.clone(),
            PathPattern::Prefix(p) => format!("{p}*"),
        };
        write!(f, "{}://{}:{}{}", self.scheme, host, self.port, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> HttpTarget {
        HttpTarget::from_canonical(s).unwrap_or_else(|| panic!("{s} not canonical"))
    }

    fn p(s: &str) -> HttpPattern {
        HttpPattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn canonical_targets_round_trip_and_others_do_not() {
        for ok in [
            "https://api.example.com:443/v1/x",
            "http://127.0.0.1:8080/",
            "https://[::1]:443/a%2Fb",
            "https://[::ffff:127.0.0.1]:443/",
        ] {
            assert_eq!(t(ok).canonical(), ok);
        }
        for bad in [
            "https://api.example.com/v1",
            "https://API.example.com:443/",
            "https://api.example.com:443",
            "https://u@api.example.com:443/",
            "https://api.example.com:443/v1/../admin",
            "https://api.example.com:443/v1/%2e%2e/admin",
            "https://api.example.com:443/v1/..%2fadmin",
            "https://api.example.com:443/x?q",
            "https://127.1:443/",
            "https://0x7f.0.0.1:443/",
            "https://example.com.:443/",
            "ftp://example.com:21/",
            "https://[::0001]:443/",
            "https://example.com:0443/",
        ] {
            assert!(HttpTarget::from_canonical(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn patterns_normalise() {
        assert_eq!(
            p("HTTPS://API.Example.com/v1/*").to_string(),
            "https://api.example.com:443/v1/*"
        );
        assert_eq!(
            p("https://api.example.com*").to_string(),
            "https://api.example.com:443/*"
        );
        assert_eq!(
            p("http://api.example.com").to_string(),
            "http://api.example.com:80/"
        );
        assert_eq!(
            p("https://*.example.com:8443/*").to_string(),
            "https://*.example.com:8443/*"
        );
        assert_eq!(p("http://[::1]:8080/x").to_string(), "http://[::1]:8080/x");
        for bad in [
            "api.example.com/v1",
            "ftp://example.com/",
            "https://user@example.com/",
            "https://example.com@evil.net/",
            "https://ex*ample.com/",
            "https://*example.com/",
            "https://a.*.example.com/",
            "https://*.127.0.0.1/",
            "https://example.com/v1/*/x",
            "https://example.com/v1/../admin*",
            "https://example.com/%2e%2e/*",
            "https://example.com/a b",
            "https://example.com:0/",
            "https://example.com:65536/",
            "https://example.com:/",
            "https://127.1/",
            "https://example.com./",
            "https://example.com?x=1",
            "https://example.com/x?y",
            "https://exämple.com/",
        ] {
            assert!(HttpPattern::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn url_tricks_are_not_admitted() {
        let origin = p("https://api.example.com*");
        assert!(origin.admits(&t("https://api.example.com:443/")));
        assert!(origin.admits(&t("https://api.example.com:443/anything/x")));
        for no in [
            "https://api.example.com.evil.net:443/",
            "https://evil.net:443/",
            "http://api.example.com:80/",
            "https://api.example.com:8443/",
            "https://xapi.example.com:443/",
        ] {
            assert!(!origin.admits(&t(no)), "{no}");
        }
        let v1 = p("https://api.example.com/v1/*");
        assert!(v1.admits(&t("https://api.example.com:443/v1/x")));
        assert!(v1.admits(&t("https://api.example.com:443/v1/")));
        assert!(!v1.admits(&t("https://api.example.com:443/v1")));
        assert!(!v1.admits(&t("https://api.example.com:443/v1x")));
        assert!(!v1.admits(&t("https://api.example.com:443/admin")));
        let v1b = p("https://api.example.com/v1*");
        assert!(v1b.admits(&t("https://api.example.com:443/v1")));
        assert!(v1b.admits(&t("https://api.example.com:443/v1/x")));
        assert!(!v1b.admits(&t("https://api.example.com:443/v1x")));
        let exact = p("https://api.example.com/v1/x");
        assert!(exact.admits(&t("https://api.example.com:443/v1/x")));
        assert!(!exact.admits(&t("https://api.example.com:443/v1/x/")));
        let wild = p("https://*.example.com/*");
        assert!(wild.admits(&t("https://a.example.com:443/")));
        assert!(!wild.admits(&t("https://example.com:443/")));
        assert!(!wild.admits(&t("https://a.b.example.com:443/")));
        assert!(!wild.admits(&t("https://a.example.com.evil.net:443/")));
        assert!(!wild.admits(&t("https://aexample.com:443/")));
        let ip = p("http://127.0.0.1:8080/*");
        assert!(ip.admits(&t("http://127.0.0.1:8080/x")));
        assert!(!ip.admits(&t("http://127.0.0.1:8081/x")));
    }

    proptest::proptest! {
        /// A pattern's `admits` agrees with a plain reading of the canonical strings:
        /// same origin, and the path equal or under the prefix at a '/' boundary.
        #[test]
        fn admits_agrees_with_plain_reading(
            host in "(a|b|api)(\\.example\\.com|\\.example\\.com\\.evil\\.net|)",
            port in proptest::sample::select(vec![443u16, 8443]),
            path in "(/(v1|v1x|admin|x|%2F|\\.\\.|%2e|a\\.)){0,3}/?",
            pat_path in "(/(v1|x)){0,2}/?\\*?",
        ) {
            let url = format!("https://{host}:{port}{}", if path.is_empty() { "/" } else { &path });
            let pat = format!("https://{host}{pat_path}");
            let (Some(target), Ok(pattern)) = (HttpTarget::from_canonical(&url), HttpPattern::parse(&pat)) else {
                return Ok(());
            };
            let want_path = match pattern.path.clone() {
                PathPattern::Exact(x) => x == target.path,
                PathPattern::Prefix(x) => {
                    let base = x.trim_end_matches('/');
                    target.path == x || target.path == base && !x.ends_with('/')
                        || target.path.starts_with(&format!("{base}/"))
                }
            };
            proptest::prop_assert_eq!(pattern.admits(&target), port == 443 && want_path);
        }
    }
}
