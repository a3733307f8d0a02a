//! `mcpvault policy`: the Vault / OpenBao HCL policy that lets a server serve one
//! subject with exactly a token's grants, so Vault itself is a second gate: a bug in
//! mcpvault's own checks still cannot reach another subject's namespace, or a key or
//! role the token was not granted.
//!
//! Pure: grants and mounts in, HCL text out. Every path is derived from the same
//! request shapes the Vault backend sends (`backend/vault/api.rs`).

use std::collections::BTreeMap;

use crate::token::{ResourceKind, ResourcePattern, ToolGrant};

/// Where the engines are mounted (the server's `KV_MOUNT`, ... settings).
#[derive(Debug, Clone)]
pub struct Mounts {
    pub kv: String,
    pub prefix: String,
    pub transit: String,
    pub db: String,
    pub ssh: String,
    /// `MCPVAULT_VAULT_TOKEN_ROLE`: the token role child tokens are made through.
    pub token_role: String,
    /// `MCPVAULT_REVOCATION_KV`: the shared revocation list the server reads.
    pub revocation_kv: Option<String>,
}

impl Default for Mounts {
    /// The server's defaults.
    fn default() -> Self {
        Mounts {
            kv: "secret".into(),
            prefix: "mcp".into(),
            transit: "transit".into(),
            db: "database".into(),
            ssh: "ssh".into(),
            token_role: "mcpvault-child".into(),
            revocation_kv: None,
        }
    }
}

/// The tools a grant list admits, out of `catalog`.
pub fn granted_tools(grants: Option<&[ToolGrant]>, catalog: &[String]) -> Vec<String> {
    catalog
        .iter()
        .filter(|t| {
            grants.is_none_or(|gs| {
                gs.iter().any(|g| match g {
                    ToolGrant::All => true,
                    ToolGrant::Exact(n) => n == *t,
                    ToolGrant::Family(p) => t.starts_with(p.as_str()),
                })
            })
        })
        .cloned()
        .collect()
}

/// Vault policy globs for a kind: one per pattern (`p*` stays a prefix glob), or
/// everything when the token does not restrict the kind.
fn globs(resources: &[ResourcePattern], kind: ResourceKind) -> Vec<String> {
    let of_kind: Vec<&ResourcePattern> = resources.iter().filter(|r| r.kind == kind).collect();
    if of_kind.is_empty() {
        return vec!["*".into()];
    }
    of_kind.iter().map(|r| r.pattern.clone()).collect()
}

/// The HCL policy for `subject` with `tools` on `resources`.
pub fn hcl(subject: &str, tools: &[String], resources: &[ResourcePattern], m: &Mounts) -> String {
    // path -> capabilities, ordered for a stable, reviewable output.
    let mut paths: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut grant = |path: String, caps: &[&'static str]| {
        let e = paths.entry(path).or_default();
        for c in caps {
            if !e.contains(c) {
                e.push(c);
            }
        }
    };
    let ns = format!("{}/{}", m.prefix, subject);
    for tool in tools {
        let (family, op) = tool.split_once('.').unwrap_or((tool.as_str(), ""));
        match family {
            "kv" => {
                for g in globs(resources, ResourceKind::Kv) {
                    let at = |engine_path: &str| format!("{}/{engine_path}/{ns}/{g}", m.kv);
                    match op {
                        // Metadata too: a wrapped read checks the version first.
                        "read" => {
                            grant(at("data"), &["read"]);
                            grant(at("metadata"), &["read"]);
                        }
                        "metadata" => grant(at("metadata"), &["read"]),
                        // Reads the current version, writes the next (check-and-set).
                        "generate" => grant(at("data"), &["read", "create", "update"]),
                        "write" => grant(at("data"), &["create", "update"]),
                        "list" => grant(at("metadata"), &["list"]),
                        "delete" => grant(at("data"), &["delete"]),
                        "undelete" => grant(at("undelete"), &["update"]),
                        "destroy" => grant(at("destroy"), &["update"]),
                        _ => {}
                    }
                }
            }
            "transit" if op == "random" => grant(format!("{}/random", m.transit), &["update"]),
            "transit" => {
                for g in globs(resources, ResourceKind::Transit) {
                    grant(format!("{}/{op}/{g}", m.transit), &["update"]);
                }
            }
            "db" => match op {
                "issue_creds" => {
                    for g in globs(resources, ResourceKind::Db) {
                        grant(format!("{}/creds/{g}", m.db), &["read"]);
                    }
                    // Leases are issued through a child token per capability token,
                    // revoked with it.
                    grant(format!("auth/token/create/{}", m.token_role), &["update"]);
                    grant("auth/token/revoke-accessor".into(), &["update"]);
                    // Where restarted servers and replicas find the mapping.
                    grant(
                        format!("{}/data/mcpvault/children/*", m.kv),
                        &["create", "update", "read"],
                    );
                    grant(
                        format!("{}/metadata/mcpvault/children/*", m.kv),
                        &["list", "read", "delete"],
                    );
                }
                // The lease id names the role; mcpvault checks it against the token
                // before calling these (Vault's lease endpoints take it in the body).
                "renew" => grant("sys/leases/renew".into(), &["update"]),
                "revoke" => grant("sys/leases/revoke".into(), &["update"]),
                _ => {}
            },
            "ssh" => {
                for g in globs(resources, ResourceKind::Ssh) {
                    match op {
                        "otp" => grant(format!("{}/creds/{g}", m.ssh), &["update"]),
                        "sign" => {
                            grant(format!("{}/sign/{g}", m.ssh), &["update"]);
                            // The role's TTLs bound certificate lifetimes.
                            grant(format!("{}/roles/{g}", m.ssh), &["read"]);
                        }
                        _ => {}
                    }
                }
            }
            // kms.*: AWS, not Vault.
            _ => {}
        }
    }
    // What the server itself needs: its own token's lookup and renewal.
    grant("auth/token/lookup-self".into(), &["read"]);
    grant("auth/token/renew-self".into(), &["update"]);
    if let Some(list) = &m.revocation_kv {
        // Read only: revokers write it with their own Vault identity.
        grant(format!("{}/data/{list}", m.kv), &["read"]);
    }

    let mut out = format!(
        "# mcpvault-stdio serving subject {subject:?}: generated by `mcpvault policy`.\n\
         # Nothing outside {kv}/*/{ns}/ in KV; only the granted keys and roles.\n",
        kv = m.kv
    );
    for (path, caps) in paths {
        let caps: Vec<String> = caps.iter().map(|c| format!("\"{c}\"")).collect();
        out.push_str(&format!(
            "path \"{path}\" {{\n  capabilities = [{}]\n}}\n",
            caps.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts() -> Mounts {
        Mounts::default()
    }

    #[test]
    fn rotation_and_metadata_paths() {
        let tools: Vec<String> = ["kv.metadata", "kv.generate"].map(String::from).to_vec();
        let h = hcl("agentA", &tools, &[], &mounts());
        assert!(
            h.contains("path \"secret/metadata/mcp/agentA/*\" {\n  capabilities = [\"read\"]"),
            "{h}"
        );
        assert!(
            h.contains(
                "path \"secret/data/mcp/agentA/*\" {\n  capabilities = [\"read\", \"create\", \"update\"]"
            ),
            "{h}"
        );
    }

    #[test]
    fn only_the_subjects_namespace_and_the_granted_resources() {
        let tools: Vec<String> = ["kv.read", "kv.list", "transit.encrypt", "ssh.sign"]
            .map(String::from)
            .to_vec();
        let res: Vec<ResourcePattern> = ["kv:app/*", "transit:app-*"]
            .iter()
            .map(|r| r.parse().expect("pattern"))
            .collect();
        let h = hcl("agentA", &tools, &res, &mounts());
        assert!(
            h.contains("path \"secret/data/mcp/agentA/app/*\" {\n  capabilities = [\"read\"]"),
            "{h}"
        );
        assert!(
            h.contains("path \"secret/metadata/mcp/agentA/app/*\""),
            "{h}"
        );
        assert!(h.contains("path \"transit/encrypt/app-*\""), "{h}");
        assert!(h.contains("path \"ssh/sign/*\""), "{h}");
        assert!(!h.contains("create"), "no write was granted: {h}");
        assert!(!h.contains("agentB"));
        for line in h.lines().filter(|l| l.starts_with("path \"secret/")) {
            assert!(line.contains("/mcp/agentA/"), "{line}");
        }
    }
}
