//! The `http.request` client: reqwest over rustls (TLS verified), no redirects, no
//! proxy from the environment, no cookies, bounded time and response size, and a
//! DNS resolver that refuses non-public addresses (the connection goes to the very
//! addresses it checked: there is no second lookup). IP-literal hosts never reach a
//! resolver, so the tool checks them with [`check_addr`] before anything is sent.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::BackendError;
use crate::error::{CallError, Denial};

/// Why an address is not public, or `None` if it is. The list is the contract's:
/// addresses that name this host, private networks, link-local (cloud metadata),
/// shared, benchmarking, multicast, reserved and broadcast space, and the IPv6
/// equivalents, IPv4-mapped and NAT64 forms included.
pub fn blocked_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        _ if ip.is_broadcast() => Some("broadcast"),
        (0, _, _) => Some("\"this network\" (0.0.0.0/8)"),
        (10, _, _) => Some("private (10.0.0.0/8)"),
        (100, 64..=127, _) => Some("shared address space (100.64.0.0/10)"),
        (127, _, _) => Some("loopback (127.0.0.0/8)"),
        (169, 254, _) => Some("link-local (169.254.0.0/16)"),
        (172, 16..=31, _) => Some("private (172.16.0.0/12)"),
        (192, 0, 0) => Some("IETF protocol assignments (192.0.0.0/24)"),
        (192, 168, _) => Some("private (192.168.0.0/16)"),
        (198, 18..=19, _) => Some("benchmarking (198.18.0.0/15)"),
        (224..=239, _, _) => Some("multicast (224.0.0.0/4)"),
        (240..=255, _, _) => Some("reserved (240.0.0.0/4)"),
        _ => None,
    }
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    // IPv4-mapped (::ffff:a.b.c.d) reaches the IPv4 address it embeds: judged as
    // that address. NAT64 (64:ff9b::/96) is listed as a whole.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4).map(|_| "IPv4-mapped non-public address");
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some("NAT64 (64:ff9b::/96)");
    }
    match s[0] {
        x if x & 0xfe00 == 0xfc00 => Some("unique local (fc00::/7)"),
        x if x & 0xffc0 == 0xfe80 => Some("link-local (fe80::/10)"),
        x if x & 0xff00 == 0xff00 => Some("multicast (ff00::/8)"),
        _ => None,
    }
}

/// `Ok` if `ip` is public or inside one of `allow`; else the denial, naming the
/// address and why (the address is the agent's own input or what its host resolves
/// to; neither is a secret).
pub fn check_addr(ip: IpAddr, allow: &[IpNet]) -> Result<(), Denial> {
    let Some(why) = blocked_reason(ip) else {
        return Ok(());
    };
    let mapped = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    let allowed = |a: IpAddr| allow.iter().any(|n| n.contains(&a));
    if allowed(ip) || mapped.is_some_and(allowed) {
        return Ok(());
    }
    Err(Denial::DestinationBlocked(format!(
        "{ip} is {why} (MCPVAULT_HTTP_ALLOW_NETS can admit it)"
    )))
}

/// What the resolver returns when a name resolves to a blocked address; found again
/// in the client error's source chain.
#[derive(Debug)]
struct Blocked(Denial);

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for Blocked {}

/// Resolves with the system resolver, then refuses the whole name if any address it
/// gives is blocked (a name with one public and one private address could be made
/// to reach either).
struct GuardedResolver {
    allow: Arc<Vec<IpNet>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for a in &addrs {
                if let Err(d) = check_addr(a.ip(), &allow) {
                    return Err(Box::new(Blocked(d)) as Box<dyn StdError + Send + Sync>);
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// How long a connection may take to open, whatever the request's own timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Http {
    client: Result<reqwest::Client, String>,
}

/// A response, its body already capped (see [`Http::send`]).
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// The body was longer than what was read.
    pub cut: bool,
}

impl Http {
    pub fn new(allow: &[IpNet]) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .dns_resolver(Arc::new(GuardedResolver {
                allow: Arc::new(allow.to_vec()),
            }))
            .user_agent(concat!("mcpvault/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)));
        Http { client }
    }

    /// Sends one request and reads at most `max_body` bytes of the response body,
    /// all within `timeout`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: url::Url,
        headers: reqwest::header::HeaderMap,
        body: Option<Vec<u8>>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Response, CallError> {
        let client = self.client.as_ref().map_err(|e| failed("request", e))?;
        let mut req = client
            .request(method, url)
            .headers(headers)
            .timeout(timeout);
        if let Some(b) = body {
            req = req.body(b);
        }
        let mut resp = req.send().await.map_err(|e| describe(e, timeout))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
            .collect();
        let mut body = Vec::new();
        let mut cut = false;
        while let Some(chunk) = resp.chunk().await.map_err(|e| describe(e, timeout))? {
            let room = max_body - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                cut = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body,
            cut,
        })
    }
}

fn failed(op: &'static str, reason: impl Into<String>) -> CallError {
    CallError::Backend(BackendError::Http {
        op,
        reason: reason.into(),
    })
}

/// The error's causes, joined, without the URL (reqwest puts the URL, query
/// included, into its own message).
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    parts.dedup();
    parts.join(": ")
}

fn describe(e: reqwest::Error, timeout: Duration) -> CallError {
    let e = e.without_url();
    // A blocked address found by the resolver is a denial, not a failure.
    let mut cur: Option<&(dyn StdError + 'static)> = Some(&e);
    while let Some(c) = cur {
        if let Some(Blocked(d)) = c.downcast_ref::<Blocked>() {
            return CallError::Denied(d.clone());
        }
        cur = c.source();
    }
    if e.is_timeout() {
        return failed(
            "request",
            format!("no complete response within {} ms", timeout.as_millis()),
        );
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "response body"
    } else {
        "request failed"
    };
    let causes = chain(&e);
    if causes.is_empty() {
        failed("request", what)
    } else {
        failed("request", format!("{what}: {causes}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(s: &str) -> bool {
        blocked_reason(s.parse().expect("ip")).is_some()
    }

    #[test]
    fn every_listed_range_is_blocked_at_both_ends() {
        for ip in [
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.0",
            "10.255.255.255",
            "100.64.0.0",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.169.254",
            "169.254.0.0",
            "172.16.0.0",
            "172.31.255.255",
            "192.0.0.0",
            "192.0.0.255",
            "192.168.0.0",
            "192.168.255.255",
            "198.18.0.0",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.0",
            "255.255.255.254",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fdff:ffff::1",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "ff00::",
            "64:ff9b::808:808",
            "64:ff9b::a9fe:a9fe",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "::ffff:0.0.0.0",
        ] {
            assert!(blocked(ip), "{ip} not blocked");
        }
    }

    #[test]
    fn public_neighbours_are_not_blocked() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700::1111",
            "2001:db9::1",
            "::2",
            "fbff::1",
            "fec0::1",
            "64:ff9a::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!blocked(ip), "{ip} blocked");
        }
    }

    #[test]
    fn allow_nets_admit_only_what_they_cover() {
        let allow: Vec<IpNet> = vec!["127.0.0.1/32".parse().expect("net")];
        assert!(check_addr("127.0.0.1".parse().expect("ip"), &allow).is_ok());
        assert!(check_addr("::ffff:127.0.0.1".parse().expect("ip"), &allow).is_ok());
        assert!(check_addr("127.0.0.2".parse().expect("ip"), &allow).is_err());
        assert!(check_addr("::1".parse().expect("ip"), &allow).is_err());
        assert!(check_addr("8.8.8.8".parse().expect("ip"), &[]).is_ok());
        let d = check_addr("169.254.169.254".parse().expect("ip"), &[]).expect_err("blocked");
        assert_eq!(d.code(), "destination_blocked");
        assert!(d.to_string().contains("link-local"), "{d}");
    }
}
