//! `http.request`: an HTTP(S) call to a destination the token grants (resource kind
//! `http`, matched on the parsed URL's parts), with secrets passed by handle.
//!
//! The URL is parsed once, with the parser the client uses; what is authorized is its
//! canonical form without query or fragment (so the query never reaches the audit
//! log or a denial), and what is sent is that same parsed URL. Handle placeholders in
//! header values and the body are replaced server-side; every substituted value, and
//! its common encodings, is replaced by `[redacted]` in what comes back.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::schemars::{self, JsonSchema};
use rmcp::{tool, tool_router, Json};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::backend::http::check_addr;
use crate::config::Config;
use crate::error::CallError;
use crate::token::http::HttpTarget;
use crate::token::ResourceKind;

use super::handles::placeholders;
use super::{declared, Args, Authorized, McpVault, Scope, ScopeFn, Scoped};

pub(crate) const SCOPES: &[(&str, ScopeFn)] = &[("http.request", declared::<HttpRequestArgs>)];

impl Scoped for HttpRequestArgs {
    fn scope(a: &Args<'_>, cfg: &Config) -> Result<Scope, CallError> {
        let (_, target) = parse_url(a.str("url")?, cfg)?;
        Ok(Scope::One(ResourceKind::Http, target.canonical()))
    }
}

/// The longest `url` accepted: far above real APIs, far below a message.
const MAX_URL_LEN: usize = 8192;
/// The most of a response body returned, after redaction.
pub const MAX_BODY: usize = 1 << 20;
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const MAX_TIMEOUT_MS: u64 = 30_000;
const REDACTED: &str = "[redacted]";

/// Header names the agent may not set: the client derives them from the URL and the
/// body, and a hand-set `Host` would aim the request at another site on the same
/// address than the one the token granted.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

/// Parses `url` as the client will, refuses what a token pattern could not judge
/// exactly, and checks an IP-literal host against the blocked list (a literal never
/// reaches the guarded resolver). Messages never quote the URL: its query may carry
/// anything.
fn parse_url(text: &str, cfg: &Config) -> Result<(url::Url, HttpTarget), CallError> {
    let bad = |why: &str| CallError::bad_field("url", why);
    if text.len() > MAX_URL_LEN {
        return Err(bad(&format!("longer than {MAX_URL_LEN} characters")));
    }
    let mut url = url::Url::parse(text).map_err(|e| bad(&format!("not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "userinfo (user@host) is not accepted: pass credentials in a header",
        ));
    }
    // Never sent; dropped so nothing downstream sees it.
    url.set_fragment(None);
    let (host, literal) = match url.host() {
        Some(url::Host::Domain(d)) => (d.to_string(), None),
        Some(url::Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::V4(ip))),
        Some(url::Host::Ipv6(ip)) => (format!("[{ip}]"), Some(IpAddr::V6(ip))),
        None => return Err(bad("no host")),
    };
    let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
    let target = HttpTarget::new(url.scheme(), &host, port, url.path())
        .map_err(|e| CallError::bad_field("url", e))?;
    if let Some(ip) = literal {
        check_addr(ip, &cfg.http_allow_nets)?;
    }
    Ok((url, target))
}

fn parse_method(m: &str) -> Result<reqwest::Method, CallError> {
    Ok(match m.to_ascii_uppercase().as_str() {
        "GET" => reqwest::Method::GET,
        "HEAD" => reqwest::Method::HEAD,
        "POST" => reqwest::Method::POST,
        "PUT" => reqwest::Method::PUT,
        "PATCH" => reqwest::Method::PATCH,
        "DELETE" => reqwest::Method::DELETE,
        _ => {
            return Err(CallError::bad_field(
                "method",
                "must be one of GET, HEAD, POST, PUT, PATCH, DELETE",
            ))
        }
    })
}

/// `text` with every `{{mcpvault:handle:<id>}}` replaced by the handle's value; the
/// values used are added to `used` (for redaction). Zeroed when dropped.
fn substitute(
    text: &str,
    auth: &Authorized,
    used: &mut Vec<Zeroizing<String>>,
) -> Result<Zeroizing<String>, CallError> {
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut at = 0;
    for (range, handle) in placeholders(text)? {
        out.push_str(text.get(at..range.start).unwrap_or(""));
        let value = auth.use_handle(handle)?;
        out.push_str(&value);
        if !used.iter().any(|u| **u == *value) {
            used.push(value);
        }
        at = range.end;
    }
    out.push_str(text.get(at..).unwrap_or(""));
    Ok(out)
}

/// What redaction looks for: each value as sent, and its base64 (standard and
/// URL-safe, padded or not), hex (both cases) and percent-encoded (both cases) forms.
/// A value inside a larger encoding (Basic auth, a JSON string with escapes) is not
/// caught: this is defence in depth.
fn needles(values: &[Zeroizing<String>]) -> Vec<Zeroizing<Vec<u8>>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut add = |v: Vec<u8>| {
        let v = Zeroizing::new(v);
        if !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    };
    for value in values {
        let b = value.as_bytes();
        add(b.to_vec());
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            add(engine.encode(b).into_bytes());
        }
        let lower = hex::encode(b);
        add(lower.to_ascii_uppercase().into_bytes());
        add(lower.into_bytes());
        let mut pct_upper = String::new();
        let mut pct_lower = String::new();
        for &c in b {
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                pct_upper.push(c as char);
                pct_lower.push(c as char);
            } else {
                pct_upper.push_str(&format!("%{c:02X}"));
                pct_lower.push_str(&format!("%{c:02x}"));
            }
        }
        add(pct_upper.into_bytes());
        add(pct_lower.into_bytes());
    }
    out
}

/// Replaces every needle in `input[..safe_end]` (a match may run past `safe_end`
/// into the rest of `input`, which is why the caller reads that far) by `[redacted]`;
/// what lies after `safe_end` is dropped.
fn redact(input: &[u8], safe_end: usize, finder: Option<&AhoCorasick>) -> Vec<u8> {
    let mut out = Vec::with_capacity(safe_end);
    let mut at = 0;
    if let Some(f) = finder {
        for m in f.find_iter(input) {
            if m.start() >= safe_end {
                break;
            }
            out.extend_from_slice(&input[at..m.start()]);
            out.extend_from_slice(REDACTED.as_bytes());
            at = m.end();
        }
    }
    if at < safe_end {
        out.extend_from_slice(&input[at..safe_end]);
    }
    out
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut_text(mut s: String, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    (s, true)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct HttpRequestArgs {
    /// GET, HEAD, POST, PUT, PATCH or DELETE.
    pub method: String,
    /// The full URL, `https://host[:port]/path?query`. No `user@` part: pass
    /// credentials in a header.
    pub url: String,
    /// Request headers. Values may hold `{{mcpvault:handle:<id>}}` placeholders,
    /// e.g. `{"Authorization": "Bearer {{mcpvault:handle:abc...}}"}`.
    pub headers: Option<BTreeMap<String, String>>,
    /// Request body (text). May hold `{{mcpvault:handle:<id>}}` placeholders.
    pub body: Option<String>,
    /// Time for the whole exchange in milliseconds (default 10000, at most 30000).
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HttpResponse {
    /// The HTTP status. Redirects are not followed: a 3xx comes back as is.
    pub status: u16,
    /// Response headers (repeated ones joined with ", "), secrets redacted.
    pub headers: BTreeMap<String, String>,
    /// Response body as text (at most 1 MiB), secrets redacted.
    pub body: String,
    /// The body was longer than 1 MiB and was cut.
    pub truncated: bool,
}

#[tool_router(router = http_router, vis = "pub(crate)")]
impl McpVault {
    #[tool(
        name = "http.request",
        description = "Make an HTTP(S) request to a URL your token grants, using secrets you \
                       hold as handles without seeing them. A handle is a string \
                       `mcpvault:handle:<id>` that tools such as kv.read return in place of a \
                       secret value. To use one, put `{{mcpvault:handle:<id>}}` in a header \
                       value or the body, e.g. headers {\"Authorization\": \"Bearer \
                       {{mcpvault:handle:<id>}}\"}; the server puts the secret there before \
                       sending. The secret (and its base64, hex and percent-encoded forms) \
                       is shown as [redacted] in the response. Redirects are not followed \
                       (the 3xx is returned); private and loopback addresses are refused; the \
                       body returned is text, at most 1 MiB (`truncated` says if cut).",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn http_request(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<HttpRequestArgs>,
    ) -> Result<Json<HttpResponse>, CallError> {
        let method = parse_method(&a.method)?;
        let (url, target) = parse_url(&a.url, self.cfg())?;
        // What runs is what was authorized (the same text, parsed the same way).
        if auth.resource() != Some(target.canonical().as_str()) {
            return Err(CallError::invalid("`url` differs from the authorized one"));
        }
        let timeout_ms = a.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(CallError::bad_field(
                "timeout_ms",
                format!("must be 1 to {MAX_TIMEOUT_MS}"),
            ));
        }
        let max_body = self.cfg().max_message_bytes;
        let too_big = || {
            CallError::bad_field(
                "body",
                format!("longer than MCPVAULT_MAX_MESSAGE_BYTES ({max_body} bytes)"),
            )
        };
        if a.body.as_ref().is_some_and(|b| b.len() > max_body) {
            return Err(too_big());
        }
        let mut used: Vec<Zeroizing<String>> = Vec::new();
        let mut headers = HeaderMap::new();
        for (name, value) in a.headers.iter().flatten() {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| CallError::bad_field("headers", "a header name is not valid"))?;
            if RESERVED_HEADERS.contains(&header.as_str()) {
                return Err(CallError::bad_field(
                    "headers",
                    format!("`{header}` is set by the server, not by the caller"),
                ));
            }
            let before = used.len();
            let text = substitute(value, &auth, &mut used)?;
            let mut v = HeaderValue::from_str(&text).map_err(|_| {
                // Never the value: it may hold a secret.
                CallError::bad_field(
                    "headers",
                    format!("the value of `{header}` is not a valid header value"),
                )
            })?;
            if used.len() > before || text.as_str() != value {
                // Keeps it out of any debug output of the client.
                v.set_sensitive(true);
            }
            headers.append(header, v);
        }
        let body = match &a.body {
            Some(b) => {
                let text = substitute(b, &auth, &mut used)?;
                if text.len() > max_body {
                    return Err(too_big());
                }
                Some(text.as_bytes().to_vec())
            }
            None => None,
        };
        let needles = needles(&used);
        let longest = needles.iter().map(|n| n.len()).max().unwrap_or(0);
        let finder = if needles.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(needles.iter().map(|n| n.as_slice()))
                    .map_err(|_| CallError::invalid("the substituted values cannot be redacted"))?,
            )
        };
        // Read past the 1 MiB cut by the longest needle, so a secret that straddles
        // the cut is still found whole and redacted before anything is cut.
        let resp = self
            .http()
            .send(
                method,
                url,
                headers,
                body,
                Duration::from_millis(timeout_ms),
                MAX_BODY + longest,
            )
            .await?;
        let mut out_headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &resp.headers {
            let clean = redact(value, value.len(), finder.as_ref());
            let text = String::from_utf8_lossy(&clean).into_owned();
            out_headers
                .entry(name.clone())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&text);
                })
                .or_insert(text);
        }
        // A cut read may end inside a needle: only what lies a needle's length
        // before the end of what was read is known to be complete.
        let safe_end = if resp.cut {
            resp.body
                .len()
                .saturating_sub(longest)
                .max(MAX_BODY.min(resp.body.len()))
        } else {
            resp.body.len()
        };
        let clean = redact(&resp.body, safe_end, finder.as_ref());
        let (body, cut) = cut_text(String::from_utf8_lossy(&clean).into_owned(), MAX_BODY);
        Ok(Json(HttpResponse {
            status: resp.status,
            headers: out_headers,
            body,
            truncated: resp.cut || cut,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finder(values: &[&str]) -> (AhoCorasick, usize) {
        let v: Vec<Zeroizing<String>> = values
            .iter()
            .map(|s| Zeroizing::new(s.to_string()))
            .collect();
        let n = needles(&v);
        let longest = n.iter().map(|x| x.len()).max().unwrap_or(0);
        let f = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(n.iter().map(|x| x.as_slice()))
            .expect("finder");
        (f, longest)
    }

    fn clean(text: &str, values: &[&str]) -> String {
        let (f, _) = finder(values);
        String::from_utf8(redact(text.as_bytes(), text.len(), Some(&f))).expect("utf8")
    }

    #[test]
    fn values_and_their_encodings_are_redacted() {
        let s = "s3cr3t/+?&=value";
        let b64 = base64::engine::general_purpose::STANDARD.encode(s);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let hex_l = hex::encode(s);
        let hex_u = hex_l.to_ascii_uppercase();
        let pct = "s3cr3t%2F%2B%3F%26%3Dvalue";
        for form in [
            s,
            &b64,
            &b64url,
            &hex_l,
            &hex_u,
            pct,
            &pct.to_ascii_lowercase(),
        ] {
            let text = format!("before {form} after");
            assert_eq!(clean(&text, &[s]), "before [redacted] after", "{form}");
        }
        assert_eq!(clean("nothing here", &[s]), "nothing here");
    }

    #[test]
    fn a_secret_across_the_cut_is_redacted_not_shown_in_part() {
        let secret = "ABCDEFGHIJKLMNOP";
        let (f, longest) = finder(&[secret]);
        // The secret starts just before the cut and ends after it.
        let mut body = "x".repeat(MAX_BODY - 4);
        body.push_str(secret);
        body.push_str(&"y".repeat(longest));
        let read = &body.as_bytes()[..MAX_BODY + longest];
        let safe_end = read.len().saturating_sub(longest).max(MAX_BODY);
        let out = redact(read, safe_end, Some(&f));
        let (text, _) = cut_text(String::from_utf8(out).expect("utf8"), MAX_BODY);
        assert!(!text.contains("ABCD"), "part of the secret shown");
        // The redaction marker itself is what the cut shortens.
        assert_eq!(&text[MAX_BODY - 8..], "xxxx[red");
    }

    #[test]
    fn cuts_at_char_boundaries() {
        let (s, cut) = cut_text("aé".into(), 2);
        assert_eq!((s.as_str(), cut), ("a", true));
        let (s, cut) = cut_text("ab".into(), 2);
        assert_eq!((s.as_str(), cut), ("ab", false));
    }

    #[test]
    fn methods() {
        assert!(parse_method("get").is_ok() && parse_method("PATCH").is_ok());
        for bad in ["CONNECT", "TRACE", "OPTIONS", "", "G ET"] {
            assert!(parse_method(bad).is_err(), "{bad}");
        }
    }
}
