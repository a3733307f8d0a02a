//! The Vault API calls the tools need, as typed functions. Paths are built from
//! mounts (validated config) and names/paths validated at the gate; rustify
//! percent-encodes each segment.

use rustify::enums::RequestMethod;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{Envelope, Raw, Vault, VaultError, WrapInfo};

// ------------------------------------------------------------------ KV v2 --

/// Version metadata as KV v2 returns it under `data.metadata` (read) or `data`
/// (write).
#[derive(Debug, Deserialize, Default)]
struct KvMetadata {
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    created_time: Option<String>,
    #[serde(default)]
    deletion_time: Option<String>,
    #[serde(default)]
    destroyed: bool,
    #[serde(default)]
    custom_metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
struct KvData {
    #[serde(default)]
    data: Option<Map<String, Value>>,
    #[serde(default)]
    metadata: KvMetadata,
}

#[derive(Debug)]
pub struct KvSecret {
    pub data: Map<String, Value>,
    pub version: Option<u64>,
    pub created_time: Option<String>,
    pub custom_metadata: Option<Map<String, Value>>,
}

/// Outcome of a KV read: soft-deleted and destroyed versions are answers, not
/// failures, so the tool can say what to do about them.
#[derive(Debug)]
pub enum KvRead {
    Found(KvSecret),
    Missing,
    Deleted {
        version: Option<u64>,
        deletion_time: String,
    },
    Destroyed {
        version: Option<u64>,
    },
}

#[derive(Debug, Deserialize)]
struct Keys {
    #[serde(default)]
    keys: Vec<String>,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

impl Vault {
    /// `GET {mount}/data/{path}[?version=N]`, keeping the version metadata that
    /// vaultrs's `kv2::read` drops.
    pub async fn kv_read(
        &self,
        mount: &str,
        path: &str,
        version: Option<u64>,
    ) -> Result<KvRead, VaultError> {
        let mut req = Raw::get(format!("{mount}/data/{path}"));
        if let Some(v) = version {
            req = req.query(format!("version={v}"));
        }
        let d = match self.call::<KvData>(req).await {
            Ok(env) => env.data,
            // A deleted or destroyed version is a 404 whose body still carries
            // the metadata (and `data: null`). A plain miss has `{"errors": []}`.
            Err(VaultError::Api {
                code: 404,
                body: Some(body),
                ..
            }) => match serde_json::from_str::<Envelope<KvData>>(&body) {
                Ok(env) => env.data,
                Err(_) => None,
            },
            Err(e) if e.status() == Some(404) => None,
            Err(e) => return Err(e),
        };
        let Some(d) = d else {
            return Ok(KvRead::Missing);
        };
        let m = d.metadata;
        if m.destroyed {
            return Ok(KvRead::Destroyed { version: m.version });
        }
        if let Some(t) = nonempty(m.deletion_time) {
            return Ok(KvRead::Deleted {
                version: m.version,
                deletion_time: t,
            });
        }
        match d.data {
            Some(data) => Ok(KvRead::Found(KvSecret {
                data,
                version: m.version,
                created_time: nonempty(m.created_time),
                custom_metadata: m.custom_metadata,
            })),
            None => Ok(KvRead::Missing),
        }
    }

    /// `POST {mount}/data/{path}`; returns the new version.
    pub async fn kv_write(
        &self,
        mount: &str,
        path: &str,
        data: &Map<String, Value>,
        cas: Option<u64>,
    ) -> Result<Option<u64>, VaultError> {
        let mut body = json!({ "data": data });
        if let Some(c) = cas {
            body["options"] = json!({ "cas": c });
        }
        let env = self
            .call::<KvMetadata>(Raw::post(format!("{mount}/data/{path}"), body))
            .await?;
        Ok(env.data.and_then(|m| m.version))
    }

    /// `LIST {mount}/metadata/{prefix}`. A prefix with nothing under it is a 404 in
    /// Vault: that is an empty list here.
    pub async fn kv_list(&self, mount: &str, prefix: &str) -> Result<Vec<String>, VaultError> {
        let req = Raw::new(RequestMethod::LIST, format!("{mount}/metadata/{prefix}"));
        match self.call::<Keys>(req).await {
            Ok(env) => Ok(env.data.map(|k| k.keys).unwrap_or_default()),
            Err(e) if e.status() == Some(404) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Soft-deletes the latest version (`DELETE {mount}/data/{path}`).
    pub async fn kv_delete(&self, mount: &str, path: &str) -> Result<(), VaultError> {
        let req = Raw::new(RequestMethod::DELETE, format!("{mount}/data/{path}"));
        self.call::<Value>(req).await.map(|_| ())
    }

    /// `POST {mount}/undelete/{path}` with `versions`.
    pub async fn kv_undelete(
        &self,
        mount: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<(), VaultError> {
        let req = Raw::post(
            format!("{mount}/undelete/{path}"),
            json!({ "versions": versions }),
        );
        self.call::<Value>(req).await.map(|_| ())
    }

    /// `PUT {mount}/destroy/{path}` with `versions`: permanent.
    pub async fn kv_destroy(
        &self,
        mount: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<(), VaultError> {
        let req = Raw::put(
            format!("{mount}/destroy/{path}"),
            json!({ "versions": versions }),
        );
        self.call::<Value>(req).await.map(|_| ())
    }
}

// ---------------------------------------------- KV v2 metadata, wrapping --

/// `GET {mount}/metadata/{path}`: versions and times, never a value.
#[derive(Debug, Deserialize)]
pub struct KvMeta {
    #[serde(default)]
    pub current_version: u64,
    #[serde(default)]
    pub created_time: Option<String>,
    #[serde(default)]
    pub updated_time: Option<String>,
    #[serde(default)]
    pub custom_metadata: Option<Map<String, Value>>,
    /// Version number (a decimal string in Vault's JSON) -> its metadata.
    #[serde(default)]
    pub versions: std::collections::BTreeMap<String, KvVersionMeta>,
}

#[derive(Debug, Deserialize)]
pub struct KvVersionMeta {
    #[serde(default)]
    pub created_time: Option<String>,
    #[serde(default)]
    pub deletion_time: Option<String>,
    #[serde(default)]
    pub destroyed: bool,
}

fn wrapped<T>(env: Envelope<T>) -> Result<WrapInfo, VaultError> {
    env.wrap_info
        .filter(|w| !w.token.is_empty())
        .ok_or_else(|| VaultError::Decode("the response was not wrapped".into()))
}

impl Vault {
    /// The secret's metadata; `None` when there is no secret at `path`.
    pub async fn kv_metadata(&self, mount: &str, path: &str) -> Result<Option<KvMeta>, VaultError> {
        match self
            .call::<KvMeta>(Raw::get(format!("{mount}/metadata/{path}")))
            .await
        {
            Ok(env) => Ok(env.data),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET {mount}/data/{path}[?version=N]` wrapped for `ttl_secs`: the server never
    /// parses the data. Vault wraps a deleted version's 404 body too, so the caller
    /// checks the version first (`kv_metadata`).
    pub async fn kv_read_wrapped(
        &self,
        mount: &str,
        path: &str,
        version: Option<u64>,
        ttl_secs: u64,
    ) -> Result<WrapInfo, VaultError> {
        let mut req = Raw::get(format!("{mount}/data/{path}")).wrap(ttl_secs);
        if let Some(v) = version {
            req = req.query(format!("version={v}"));
        }
        wrapped(self.call::<Value>(req).await?)
    }

    /// `GET {mount}/creds/{role}` as `as_token` (the capability's child token), wrapped
    /// for `ttl_secs`. Vault registers the lease against the requesting token before
    /// it wraps the response, so the lease still dies with the child token.
    pub async fn db_creds_wrapped(
        &self,
        mount: &str,
        role: &str,
        as_token: &str,
        ttl_secs: u64,
    ) -> Result<WrapInfo, VaultError> {
        let req = Raw::get(format!("{mount}/creds/{role}")).wrap(ttl_secs);
        wrapped(self.send::<Value>(as_token, &req).await?)
    }
}

// ---------------------------------------------------------------- transit --

#[derive(Deserialize)]
struct Ciphertext {
    ciphertext: String,
}

#[derive(Deserialize)]
struct Plaintext {
    plaintext: String,
}

#[derive(Deserialize)]
struct Signature {
    signature: String,
}

#[derive(Deserialize)]
struct Valid {
    valid: bool,
}

#[derive(Deserialize)]
struct RandomBytes {
    random_bytes: String,
}

fn data<T>(env: Envelope<T>) -> Result<T, VaultError> {
    env.data
        .ok_or_else(|| VaultError::Decode("no data in the response".into()))
}

/// Options of transit sign/verify (validated enum names from the tool).
#[derive(Debug, Default)]
pub struct SignOpts<'a> {
    pub hash_algorithm: Option<&'a str>,
    pub signature_algorithm: Option<&'a str>,
}

impl SignOpts<'_> {
    fn apply(&self, body: &mut Value) {
        if let Some(h) = self.hash_algorithm {
            body["hash_algorithm"] = json!(h);
        }
        if let Some(s) = self.signature_algorithm {
            body["signature_algorithm"] = json!(s);
        }
    }
}

impl Vault {
    /// `GET {mount}/keys/{key}`: whether the transit key exists (404: it does not).
    pub async fn transit_key_exists(&self, mount: &str, key: &str) -> Result<bool, VaultError> {
        match self
            .call::<Value>(Raw::get(format!("{mount}/keys/{key}")))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST {mount}/encrypt/{key}`: base64 plaintext (and context) in, `vault:vN:` out.
    pub async fn transit_encrypt(
        &self,
        mount: &str,
        key: &str,
        plaintext: &str,
        context: Option<&str>,
    ) -> Result<String, VaultError> {
        let mut body = json!({ "plaintext": plaintext });
        if let Some(c) = context {
            body["context"] = json!(c);
        }
        let env = self
            .call::<Ciphertext>(Raw::post(format!("{mount}/encrypt/{key}"), body))
            .await?;
        data(env).map(|d| d.ciphertext)
    }

    pub async fn transit_decrypt(
        &self,
        mount: &str,
        key: &str,
        ciphertext: &str,
        context: Option<&str>,
    ) -> Result<String, VaultError> {
        let mut body = json!({ "ciphertext": ciphertext });
        if let Some(c) = context {
            body["context"] = json!(c);
        }
        let env = self
            .call::<Plaintext>(Raw::post(format!("{mount}/decrypt/{key}"), body))
            .await?;
        data(env).map(|d| d.plaintext)
    }

    pub async fn transit_rewrap(
        &self,
        mount: &str,
        key: &str,
        ciphertext: &str,
    ) -> Result<String, VaultError> {
        let body = json!({ "ciphertext": ciphertext });
        let env = self
            .call::<Ciphertext>(Raw::post(format!("{mount}/rewrap/{key}"), body))
            .await?;
        data(env).map(|d| d.ciphertext)
    }

    pub async fn transit_sign(
        &self,
        mount: &str,
        key: &str,
        input: &str,
        opts: &SignOpts<'_>,
    ) -> Result<String, VaultError> {
        let mut body = json!({ "input": input });
        opts.apply(&mut body);
        let env = self
            .call::<Signature>(Raw::post(format!("{mount}/sign/{key}"), body))
            .await?;
        data(env).map(|d| d.signature)
    }

    pub async fn transit_verify(
        &self,
        mount: &str,
        key: &str,
        input: &str,
        signature: &str,
        opts: &SignOpts<'_>,
    ) -> Result<bool, VaultError> {
        let mut body = json!({ "input": input, "signature": signature });
        opts.apply(&mut body);
        let env = self
            .call::<Valid>(Raw::post(format!("{mount}/verify/{key}"), body))
            .await?;
        data(env).map(|d| d.valid)
    }

    /// `POST {mount}/random` with `bytes` and `format` (`base64` or `hex`).
    pub async fn transit_random(
        &self,
        mount: &str,
        bytes: u32,
        format: &str,
    ) -> Result<String, VaultError> {
        let body = json!({ "bytes": bytes, "format": format });
        let env = self
            .call::<RandomBytes>(Raw::post(format!("{mount}/random"), body))
            .await?;
        data(env).map(|d| d.random_bytes)
    }
}

// --------------------------------------------------------------- database --

#[derive(Deserialize)]
struct UserPass {
    username: String,
    password: String,
}

pub struct DbCreds {
    pub username: String,
    pub password: String,
    pub lease: Lease,
}

impl std::fmt::Debug for DbCreds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbCreds")
            .field("username", &self.username)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Lease {
    pub lease_id: String,
    pub lease_duration: u64,
    pub renewable: bool,
}

impl Vault {
    /// `GET {mount}/creds/{role}` with the envelope's lease fields (vaultrs's
    /// `database::role::creds` drops them).
    /// `GET {mount}/creds/{role}`, as `as_token` when given (a child token: the lease
    /// is then its, and dies with it), else as the server.
    pub async fn db_creds(
        &self,
        mount: &str,
        role: &str,
        as_token: Option<&str>,
    ) -> Result<DbCreds, VaultError> {
        let req = Raw::get(format!("{mount}/creds/{role}"));
        let mut env = match as_token {
            Some(t) => self.send::<UserPass>(t, &req).await?,
            None => self.call::<UserPass>(req).await?,
        };
        let lease = Lease {
            lease_id: std::mem::take(&mut env.lease_id),
            lease_duration: env.lease_duration,
            renewable: env.renewable,
        };
        let up = data(env)?;
        Ok(DbCreds {
            username: up.username,
            password: up.password,
            lease,
        })
    }

    /// `PUT sys/leases/renew` (missing from vaultrs).
    pub async fn lease_renew(
        &self,
        lease_id: &str,
        increment: Option<u64>,
    ) -> Result<Lease, VaultError> {
        let mut body = json!({ "lease_id": lease_id });
        if let Some(i) = increment {
            body["increment"] = json!(i);
        }
        let env = self
            .call::<Value>(Raw::put("sys/leases/renew", body))
            .await?;
        Ok(Lease {
            lease_id: if env.lease_id.is_empty() {
                lease_id.to_string()
            } else {
                env.lease_id
            },
            lease_duration: env.lease_duration,
            renewable: env.renewable,
        })
    }

    /// `PUT sys/leases/revoke` (missing from vaultrs). Vault revokes synchronously
    /// unless `sync: false` is asked for, so the credentials are gone on return.
    pub async fn lease_revoke(&self, lease_id: &str) -> Result<(), VaultError> {
        let req = Raw::put("sys/leases/revoke", json!({ "lease_id": lease_id }));
        self.call::<Value>(req).await.map(|_| ())
    }
}

// -------------------------------------------------------------------- ssh --

#[derive(Deserialize)]
pub struct SshOtp {
    pub key: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub port: Option<u16>,
}

impl std::fmt::Debug for SshOtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshOtp")
            .field("username", &self.username)
            .field("ip", &self.ip)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct SshRoleTtls {
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub max_ttl: u64,
}

#[derive(Debug, Deserialize)]
pub struct SshSigned {
    pub signed_key: String,
    pub serial_number: String,
}

#[derive(Debug, Clone, Copy)]
pub enum CertType {
    User,
    Host,
}

impl Vault {
    /// `POST {mount}/creds/{role}`: a one-time password for `username@ip`.
    pub async fn ssh_otp(
        &self,
        mount: &str,
        role: &str,
        ip: &str,
        username: &str,
    ) -> Result<SshOtp, VaultError> {
        let env = self
            .call::<SshOtp>(Raw::post(
                format!("{mount}/creds/{role}"),
                json!({ "ip": ip, "username": username }),
            ))
            .await?;
        data(env)
    }

    /// `GET {mount}/roles/{role}`: the role's default and maximum certificate TTL
    /// (seconds; 0 = the mount's), read once per role and cached.
    pub async fn ssh_role_ttls(&self, mount: &str, role: &str) -> Result<SshRoleTtls, VaultError> {
        let key = format!("{mount}/{role}");
        let cached = self
            .ssh_roles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .copied();
        if let Some(t) = cached {
            return Ok(t);
        }
        let env = self
            .call::<SshRoleTtls>(Raw::get(format!("{mount}/roles/{role}")))
            .await?;
        let t = data(env)?;
        self.ssh_roles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, t);
        Ok(t)
    }

    /// `POST {mount}/sign/{role}`: signs an SSH public key with the CA.
    pub async fn ssh_sign(
        &self,
        mount: &str,
        role: &str,
        public_key: &str,
        cert_type: Option<CertType>,
        valid_principals: Option<&str>,
        ttl: Option<&str>,
    ) -> Result<SshSigned, VaultError> {
        let mut body = json!({ "public_key": public_key });
        if let Some(t) = cert_type {
            body["cert_type"] = json!(match t {
                CertType::User => "user",
                CertType::Host => "host",
            });
        }
        if let Some(p) = valid_principals {
            body["valid_principals"] = json!(p);
        }
        if let Some(t) = ttl {
            body["ttl"] = json!(t);
        }
        let env = self
            .call::<SshSigned>(Raw::post(format!("{mount}/sign/{role}"), body))
            .await?;
        data(env)
    }
}

// ----------------------------------------------------------------- health --

/// `sys/health` as OpenBao returns it (vaultrs's status parser expects fields
/// OpenBao does not send).
#[derive(Debug, Deserialize)]
pub struct Health {
    #[serde(default)]
    pub initialized: bool,
    #[serde(default)]
    pub sealed: bool,
    #[serde(default)]
    pub standby: bool,
    #[serde(default)]
    pub version: String,
}

impl Vault {
    /// Unauthenticated. Standby, sealed and uninitialized states answer non-2xx
    /// with the same body, which is still a health report.
    pub async fn health(&self) -> Result<Health, VaultError> {
        let req = Raw::get("sys/health").query("standbyok=true&perfstandbyok=true".into());
        let body = match self.send_bytes("", &req).await {
            Ok(b) => b,
            Err(VaultError::Api {
                body: Some(body), ..
            }) => body.into_bytes(),
            Err(e) => return Err(e),
        };
        super::parse(&body)
    }
}
