//! `ssh.*`: Vault's SSH engine, one-time passwords (OTP roles) and certificate
//! signing (CA roles). The resource is the role.

use std::net::IpAddr;
use std::sync::Arc;

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::schemars::{self, JsonSchema};
use rmcp::{tool, tool_router, Json};
use serde::{Deserialize, Serialize};

use crate::backend::vault::CertType;
use crate::config::Config;
use crate::error::CallError;
use crate::token::ResourceKind;

use super::{declared, Args, Authorized, McpVault, Scope, ScopeFn, Scoped};

pub(crate) const SCOPES: &[(&str, ScopeFn)] = &[
    ("ssh.otp", declared::<OtpArgs>),
    ("ssh.sign", declared::<SignArgs>),
];

/// The role, and the user the password is for (an `ssh_principal`).
impl Scoped for OtpArgs {
    fn scope(a: &Args<'_>, _: &Config) -> Result<Scope, CallError> {
        let role = Scope::named(ResourceKind::Ssh, "role", a.str("role")?)?;
        let user = a.str("username")?;
        check_username(user)?;
        Ok(Scope::All(vec![
            role,
            Scope::One(ResourceKind::SshPrincipal, user.to_string()),
        ]))
    }
}

/// The role, and every principal the certificate is for. None named (the role's
/// default user) is the whole `ssh_principal` kind: only tokens that do not restrict
/// principals admit it.
impl Scoped for SignArgs {
    fn scope(a: &Args<'_>, _: &Config) -> Result<Scope, CallError> {
        let role = Scope::named(ResourceKind::Ssh, "role", a.str("role")?)?;
        let listed = match a.0.get("valid_principals") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(v) => {
                let p: Principals = serde_json::from_value(v.clone()).map_err(|_| {
                    CallError::invalid("`valid_principals` must be a list of names or a string")
                })?;
                principal_list(&p)?
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            }
        };
        let mut parts = vec![role];
        if listed.is_empty() {
            parts.push(Scope::Kind(ResourceKind::SshPrincipal));
        }
        parts.extend(
            listed
                .into_iter()
                .map(|p| Scope::One(ResourceKind::SshPrincipal, p)),
        );
        Ok(Scope::All(parts))
    }
}

/// When a token expires and nothing says otherwise, Vault signs for the mount's
/// default lease TTL (768 hours).
const MOUNT_DEFAULT_TTL_SECS: u64 = 768 * 3600;

const MAX_PUBLIC_KEY_LEN: usize = 16 * 1024;
const MAX_PRINCIPALS: usize = 256;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct OtpArgs {
    /// SSH role of type OTP configured in Vault, e.g. `otp-role`.
    pub role: String,
    /// IP address of the target host (must be in the role's CIDR list).
    pub ip: String,
    /// Login user on the target host.
    pub username: String,
    /// SSH port to connect to (default: the role's port, else 22).
    pub port: Option<u16>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct OtpResult {
    /// The one-time password; valid for a single login.
    pub key: String,
    pub username: String,
    pub ip: String,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CertTypeArg {
    User,
    Host,
}

/// Principals as a list or as Vault's comma-separated string.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Principals {
    List(Vec<String>),
    Csv(String),
}

/// A TTL as seconds or a Go duration such as "30m" or "1h".
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Ttl {
    Seconds(u64),
    Duration(String),
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SignArgs {
    /// SSH role of type CA configured in Vault, e.g. `ca-user`.
    pub role: String,
    /// The OpenSSH public key to sign, e.g. the contents of `id_ed25519.pub`.
    pub public_key: String,
    /// `user` (default) or `host` certificate.
    pub cert_type: Option<CertTypeArg>,
    /// Users (or hosts) the certificate is valid for, e.g. ["ubuntu"]; the role
    /// decides which are allowed and the default.
    pub valid_principals: Option<Principals>,
    /// Certificate lifetime, seconds or a duration like "30m" (capped by the role).
    pub ttl: Option<Ttl>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SignResult {
    /// The OpenSSH certificate; save it as `id_ed25519-cert.pub` next to the key.
    pub signed_key: String,
    pub serial_number: String,
    /// Present when the certificate's lifetime was cut to end with the token (or at
    /// the role's maximum): its validity in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capped_to_seconds: Option<u64>,
}

fn invalid(msg: &str) -> CallError {
    CallError::invalid(msg)
}

fn check_username(u: &str) -> Result<(), CallError> {
    let ok = !u.is_empty()
        && u.len() <= 64
        && !u.starts_with('-')
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    ok.then_some(())
        .ok_or_else(|| invalid("`username` must be 1-64 characters from [A-Za-z0-9._-]"))
}

fn check_public_key(k: &str) -> Result<(), CallError> {
    let k = k.trim();
    let known = ["ssh-", "ecdsa-sha2-", "sk-"]
        .iter()
        .any(|p| k.starts_with(p));
    if !known || k.len() > MAX_PUBLIC_KEY_LEN || k.chars().any(char::is_control) {
        return Err(invalid(
            "`public_key` must be one OpenSSH public key line, e.g. `ssh-ed25519 AAAA... comment`",
        ));
    }
    Ok(())
}

fn principals(p: &Principals) -> Result<String, CallError> {
    Ok(principal_list(p)?.join(","))
}

fn principal_list(p: &Principals) -> Result<Vec<&str>, CallError> {
    let list: Vec<&str> = match p {
        Principals::List(v) => v.iter().map(String::as_str).collect(),
        Principals::Csv(s) => s.split(',').map(str::trim).collect(),
    };
    let ok = !list.is_empty()
        && list.len() <= MAX_PRINCIPALS
        && list.iter().all(|p| {
            !p.is_empty() && p.len() <= 256 && !p.contains(',') && !p.chars().any(char::is_control)
        });
    if !ok {
        return Err(invalid(
            "`valid_principals` must be 1-256 non-empty names without commas",
        ));
    }
    Ok(list)
}

/// A TTL in seconds (`ttl` validated it: digits and one unit of s, m or h).
fn ttl_secs(t: &Ttl) -> Result<u64, CallError> {
    let s = ttl(t)?;
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c @ ('s' | 'm' | 'h'))) => (&s[..i], c),
        _ => (s.as_str(), 's'),
    };
    let n: u64 = digits
        .trim_end_matches(['s', 'm', 'h'])
        .parse()
        .map_err(|_| invalid("`ttl` must be seconds or a duration like \"30m\" or \"1h\""))?;
    Ok(n.saturating_mul(match unit {
        'h' => 3600,
        'm' => 60,
        _ => 1,
    }))
}

fn ttl(t: &Ttl) -> Result<String, CallError> {
    let s = match t {
        Ttl::Seconds(n) => format!("{n}s"),
        Ttl::Duration(d) => d.trim().to_string(),
    };
    let digits = s.trim_end_matches(['s', 'm', 'h']);
    if s.len() > 16 || digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(
            "`ttl` must be seconds or a duration like \"30m\" or \"1h\"",
        ));
    }
    Ok(s)
}

#[tool_router(router = ssh_router, vis = "pub(crate)")]
impl McpVault {
    #[tool(
        name = "ssh.otp",
        description = "Get a one-time SSH password from a Vault OTP role for `username` at `ip`. \
                       The password works for a single login on a host running Vault's SSH \
                       helper. It comes back as a handle (`mcpvault:handle:<id>`) unless your \
                       token may reveal this role's passwords.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn ssh_otp(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<OtpArgs>,
    ) -> Result<Json<OtpResult>, CallError> {
        let ip: IpAddr =
            a.ip.trim()
                .parse()
                .map_err(|_| invalid("`ip` must be an IPv4 or IPv6 address"))?;
        check_username(&a.username)?;
        if a.port == Some(0) {
            return Err(invalid("`port` must be 1-65535"));
        }
        let ip = ip.to_string();
        let otp = self
            .vault()
            .ssh_otp(&self.cfg().ssh_mount, auth.named()?, &ip, &a.username)
            .await
            .map_err(|e| e.at("ssh.otp"))?;
        Ok(Json(OtpResult {
            port: a.port.or(otp.port).unwrap_or(22),
            username: if otp.username.is_empty() {
                a.username
            } else {
                otp.username
            },
            ip: if otp.ip.is_empty() { ip } else { otp.ip },
            key: auth.secret(otp.key)?,
        }))
    }

    #[tool(
        name = "ssh.sign",
        description = "Sign an OpenSSH public key with a Vault SSH CA role, giving a short-lived \
                       certificate. Optional: cert_type (user|host), valid_principals (login \
                       names), ttl. Returns the certificate (signed_key) and its serial number.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn ssh_sign(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<SignArgs>,
    ) -> Result<Json<SignResult>, CallError> {
        check_public_key(&a.public_key)?;
        let principals = a.valid_principals.as_ref().map(principals).transpose()?;
        let requested = a.ttl.as_ref().map(ttl_secs).transpose()?;
        // A certificate must not outlive the token that obtained it. Vault refuses an
        // explicit ttl above the role's max_ttl and only clamps its default, so the
        // ttl sent is computed from the role.
        let (ttl, capped_to_seconds) = match auth.remaining_secs() {
            None => (requested.map(|s| format!("{s}s")), None),
            Some(remaining) => {
                let role = self
                    .vault()
                    .ssh_role_ttls(&self.cfg().ssh_mount, auth.named()?)
                    .await
                    .map_err(|e| e.at("ssh.sign"))?;
                let default = if role.ttl > 0 {
                    role.ttl
                } else {
                    MOUNT_DEFAULT_TTL_SECS
                };
                let wanted = requested.unwrap_or(default);
                let mut t = wanted.min(remaining);
                if role.max_ttl > 0 {
                    t = t.min(role.max_ttl);
                }
                if t == 0 {
                    return Err(CallError::Denied(crate::error::Denial::Expired));
                }
                (Some(format!("{t}s")), (t < wanted).then_some(t))
            }
        };
        let cert_type = a.cert_type.map(|t| match t {
            CertTypeArg::User => CertType::User,
            CertTypeArg::Host => CertType::Host,
        });
        let s = self
            .vault()
            .ssh_sign(
                &self.cfg().ssh_mount,
                auth.named()?,
                a.public_key.trim(),
                cert_type,
                principals.as_deref(),
                ttl.as_deref(),
            )
            .await
            .map_err(|e| e.at("ssh.sign"))?;
        Ok(Json(SignResult {
            signed_key: s.signed_key.trim_end().to_string(),
            serial_number: s.serial_number,
            capped_to_seconds,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_checked() {
        assert!(check_username("ubuntu").is_ok());
        assert!(check_username("-oProxyCommand").is_err());
        assert!(check_public_key("ssh-ed25519 AAAAC3Nz x@y").is_ok());
        assert!(check_public_key("-----BEGIN").is_err());
        assert_eq!(
            principals(&Principals::List(vec!["a".into(), "b".into()]))
                .ok()
                .as_deref(),
            Some("a,b")
        );
        assert!(principals(&Principals::List(vec!["a,b".into()])).is_err());
        assert_eq!(ttl(&Ttl::Seconds(60)).ok().as_deref(), Some("60s"));
        assert_eq!(
            ttl(&Ttl::Duration("30m".into())).ok().as_deref(),
            Some("30m")
        );
        assert!(ttl(&Ttl::Duration("1y; rm".into())).is_err());
        assert_eq!(ttl_secs(&Ttl::Duration("72h".into())).ok(), Some(72 * 3600));
        assert_eq!(ttl_secs(&Ttl::Duration("30m".into())).ok(), Some(1800));
        assert_eq!(ttl_secs(&Ttl::Seconds(45)).ok(), Some(45));
        assert_eq!(ttl_secs(&Ttl::Duration("90".into())).ok(), Some(90));
    }
}
