//! `transit.*`: encryption as a service with Vault's transit engine. The resource is
//! the key name (validated at the gate); binary values are standard base64.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::schemars::{self, JsonSchema};
use rmcp::{tool, tool_router, Json};
use serde::{Deserialize, Serialize};

use crate::backend::vault::SignOpts;
use crate::config::Config;
use crate::error::CallError;
use crate::token::ResourceKind;

use zeroize::Zeroizing;

use super::handles::is_handle;
use super::{declared, Args, Authorized, McpVault, Scope, ScopeFn, Scoped};

pub(crate) const SCOPES: &[(&str, ScopeFn)] = &[
    ("transit.encrypt", declared::<EncryptArgs>),
    ("transit.decrypt", declared::<DecryptArgs>),
    ("transit.sign", declared::<SignArgs>),
    ("transit.verify", declared::<VerifyArgs>),
    ("transit.rewrap", declared::<RewrapArgs>),
    ("transit.random", declared::<RandomArgs>),
];

/// Every transit tool but `random` names its key in `key`.
macro_rules! key_scoped {
    ($($t:ty),*) => {$(
        impl Scoped for $t {
            fn scope(a: &Args<'_>, _: &Config) -> Result<Scope, CallError> {
                Scope::named(ResourceKind::Transit, "key", a.str("key")?)
            }
        }
    )*};
}
key_scoped!(EncryptArgs, DecryptArgs, SignArgs, VerifyArgs, RewrapArgs);

/// Random bytes come from Vault's generator, not from a key: no resource.
impl Scoped for RandomArgs {
    fn scope(_: &Args<'_>, _: &Config) -> Result<Scope, CallError> {
        Ok(Scope::Nothing)
    }
}

/// Upper bound for a base64 argument (about 3 MiB of data): Vault has its own
/// limit, this one keeps an oversized call from being buffered and forwarded.
const MAX_B64_LEN: usize = 4 * 1024 * 1024;
const MAX_RANDOM_BYTES: u32 = 1024;
const DEFAULT_RANDOM_BYTES: u32 = 32;

/// Checked before any I/O so a mistake gets a clear message instead of Vault's.
fn check_b64(name: &str, v: &str) -> Result<(), CallError> {
    if v.len() > MAX_B64_LEN {
        return Err(CallError::invalid(format!(
            "`{name}` is longer than {MAX_B64_LEN} characters"
        )));
    }
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .map(|_| ())
        .map_err(|_| CallError::invalid(format!("`{name}` must be standard base64")))
}

fn check_ciphertext(name: &str, v: &str) -> Result<(), CallError> {
    if v.is_empty() || v.len() > MAX_B64_LEN || v.chars().any(char::is_control) {
        return Err(CallError::invalid(format!(
            "`{name}` must be a transit ciphertext like `vault:v1:...`"
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum HashAlgorithm {
    #[serde(rename = "sha1")]
    Sha1,
    #[serde(rename = "sha2-224")]
    Sha2_224,
    #[serde(rename = "sha2-256")]
    Sha2_256,
    #[serde(rename = "sha2-384")]
    Sha2_384,
    #[serde(rename = "sha2-512")]
    Sha2_512,
    #[serde(rename = "sha3-224")]
    Sha3_224,
    #[serde(rename = "sha3-256")]
    Sha3_256,
    #[serde(rename = "sha3-384")]
    Sha3_384,
    #[serde(rename = "sha3-512")]
    Sha3_512,
}

impl HashAlgorithm {
    fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha2_224 => "sha2-224",
            HashAlgorithm::Sha2_256 => "sha2-256",
            HashAlgorithm::Sha2_384 => "sha2-384",
            HashAlgorithm::Sha2_512 => "sha2-512",
            HashAlgorithm::Sha3_224 => "sha3-224",
            HashAlgorithm::Sha3_256 => "sha3-256",
            HashAlgorithm::Sha3_384 => "sha3-384",
            HashAlgorithm::Sha3_512 => "sha3-512",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignatureAlgorithm {
    Pss,
    Pkcs1v15,
}

impl SignatureAlgorithm {
    fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::Pss => "pss",
            SignatureAlgorithm::Pkcs1v15 => "pkcs1v15",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RandomFormat {
    #[default]
    Base64,
    Hex,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EncryptArgs {
    /// Transit key name, e.g. `app-aes`.
    pub key: String,
    /// The data to encrypt, standard base64 (e.g. "aGVsbG8=" for "hello").
    pub plaintext: String,
    /// Base64 context, only for keys created with derivation; the same context is
    /// needed to decrypt.
    pub context: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CiphertextResult {
    /// Ciphertext like `vault:v1:...`; store it as is.
    pub ciphertext: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DecryptArgs {
    /// Transit key name the ciphertext was encrypted with.
    pub key: String,
    /// Ciphertext like `vault:v1:...` from transit.encrypt.
    pub ciphertext: String,
    /// Base64 context, if one was given to transit.encrypt.
    pub context: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PlaintextResult {
    /// The decrypted data, standard base64.
    pub plaintext: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SignArgs {
    /// Transit signing key name (ed25519, ecdsa-* or rsa-*), e.g. `app-ed25519`.
    pub key: String,
    /// The data to sign, standard base64.
    pub input: String,
    /// Hash for ECDSA/RSA keys (Vault's default: sha2-256). Omit for ed25519 keys.
    pub hash_algorithm: Option<HashAlgorithm>,
    /// RSA padding (default pss). Omit for other key types.
    pub signature_algorithm: Option<SignatureAlgorithm>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SignResult {
    /// Signature like `vault:v1:...`; pass it as is to transit.verify.
    pub signature: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct VerifyArgs {
    /// Transit signing key name.
    pub key: String,
    /// The signed data, standard base64.
    pub input: String,
    /// Signature like `vault:v1:...` from transit.sign.
    pub signature: String,
    /// The hash_algorithm used to sign, if one was given.
    pub hash_algorithm: Option<HashAlgorithm>,
    /// The signature_algorithm used to sign, if one was given.
    pub signature_algorithm: Option<SignatureAlgorithm>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct VerifyResult {
    /// True when the signature matches the input and key.
    pub valid: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RewrapArgs {
    /// Transit key name the ciphertext was encrypted with.
    pub key: String,
    /// Ciphertext like `vault:v1:...`.
    pub ciphertext: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RandomArgs {
    /// Number of random bytes, 1 to 1024 (default 32).
    pub bytes: Option<u32>,
    /// Encoding of the result: `base64` (default) or `hex`.
    pub format: Option<RandomFormat>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RandomResult {
    /// The random bytes in the requested format.
    pub random: String,
}

fn opts(h: Option<HashAlgorithm>, s: Option<SignatureAlgorithm>) -> SignOpts<'static> {
    SignOpts {
        hash_algorithm: h.map(HashAlgorithm::as_str),
        signature_algorithm: s.map(SignatureAlgorithm::as_str),
    }
}

#[tool_router(router = transit_router, vis = "pub(crate)")]
impl McpVault {
    #[tool(
        name = "transit.encrypt",
        description = "Encrypt data with a named transit key; the key never leaves Vault. \
                       `plaintext` is standard base64, or a whole handle \
                       (`mcpvault:handle:<id>`) whose value you have not seen. Returns a \
                       `vault:vN:...` ciphertext to store and later pass to transit.decrypt with \
                       the same key.",
        annotations(
            read_only_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn transit_encrypt(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<EncryptArgs>,
    ) -> Result<Json<CiphertextResult>, CallError> {
        // A handle as the whole plaintext: encrypt its value without the agent seeing
        // it, unless decrypting under this key would show it to a token that may not
        // see it where it came from.
        let plaintext = if is_handle(&a.plaintext) {
            let bytes =
                auth.use_handle_bytes_into(&a.plaintext, ResourceKind::Transit, auth.named()?)?;
            Zeroizing::new(STANDARD.encode(&*bytes))
        } else {
            check_b64("plaintext", &a.plaintext)?;
            Zeroizing::new(a.plaintext)
        };
        if let Some(c) = &a.context {
            check_b64("context", c)?;
        }
        if self.cfg().read_only {
            // Vault creates a missing key on encrypt (when the policy allows): a
            // read-only server only encrypts under keys that already exist.
            let key = auth.named()?;
            let exists = self
                .vault()
                .transit_key_exists(&self.cfg().transit_mount, key)
                .await
                .map_err(|e| e.at("transit.encrypt"))?;
            if !exists {
                return Err(CallError::Backend(crate::error::BackendError::Vault {
                    op: "transit.encrypt",
                    reason: format!(
                        "no transit key `{key}` (a read-only server does not create keys)"
                    ),
                }));
            }
        }
        let ciphertext = self
            .vault()
            .transit_encrypt(
                &self.cfg().transit_mount,
                auth.named()?,
                &plaintext,
                a.context.as_deref(),
            )
            .await
            .map_err(|e| e.at("transit.encrypt"))?;
        Ok(Json(CiphertextResult { ciphertext }))
    }

    #[tool(
        name = "transit.decrypt",
        description = "Decrypt a `vault:vN:...` ciphertext with the transit key it was encrypted \
                       with. Returns the plaintext as standard base64, or a handle \
                       (`mcpvault:handle:<id>`) unless your token may reveal this key's \
                       plaintexts: usable in http.request placeholders, kv.write values and \
                       encrypt plaintext without you seeing it.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    pub async fn transit_decrypt(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<DecryptArgs>,
    ) -> Result<Json<PlaintextResult>, CallError> {
        check_ciphertext("ciphertext", &a.ciphertext)?;
        if let Some(c) = &a.context {
            check_b64("context", c)?;
        }
        let plaintext = self
            .vault()
            .transit_decrypt(
                &self.cfg().transit_mount,
                auth.named()?,
                &a.ciphertext,
                a.context.as_deref(),
            )
            .await
            .map_err(|e| e.at("transit.decrypt"))?;
        Ok(Json(PlaintextResult {
            plaintext: auth.secret_b64(plaintext)?,
        }))
    }

    #[tool(
        name = "transit.sign",
        description = "Sign data with a named transit signing key (ed25519, ECDSA or RSA). `input` \
                       is standard base64. For ed25519 keys omit hash_algorithm. Returns a \
                       `vault:vN:...` signature for transit.verify.",
        annotations(
            read_only_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn transit_sign(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<SignArgs>,
    ) -> Result<Json<SignResult>, CallError> {
        check_b64("input", &a.input)?;
        let signature = self
            .vault()
            .transit_sign(
                &self.cfg().transit_mount,
                auth.named()?,
                &a.input,
                &opts(a.hash_algorithm, a.signature_algorithm),
            )
            .await
            .map_err(|e| e.at("transit.sign"))?;
        Ok(Json(SignResult { signature }))
    }

    #[tool(
        name = "transit.verify",
        description = "Check a `vault:vN:...` signature from transit.sign against base64 `input` \
                       and the same key (and the same hash/signature algorithm if one was \
                       given). Returns valid: true or false.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    pub async fn transit_verify(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<VerifyArgs>,
    ) -> Result<Json<VerifyResult>, CallError> {
        check_b64("input", &a.input)?;
        check_ciphertext("signature", &a.signature)?;
        let valid = self
            .vault()
            .transit_verify(
                &self.cfg().transit_mount,
                auth.named()?,
                &a.input,
                &a.signature,
                &opts(a.hash_algorithm, a.signature_algorithm),
            )
            .await
            .map_err(|e| e.at("transit.verify"))?;
        Ok(Json(VerifyResult { valid }))
    }

    #[tool(
        name = "transit.rewrap",
        description = "Re-encrypt a `vault:vN:...` ciphertext with the latest version of its \
                       transit key (after a key rotation) without exposing the plaintext.",
        annotations(
            read_only_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn transit_rewrap(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<RewrapArgs>,
    ) -> Result<Json<CiphertextResult>, CallError> {
        check_ciphertext("ciphertext", &a.ciphertext)?;
        let ciphertext = self
            .vault()
            .transit_rewrap(&self.cfg().transit_mount, auth.named()?, &a.ciphertext)
            .await
            .map_err(|e| e.at("transit.rewrap"))?;
        Ok(Json(CiphertextResult { ciphertext }))
    }

    #[tool(
        name = "transit.random",
        description = "Generate cryptographically secure random bytes in Vault: `bytes` 1-1024 \
                       (default 32), `format` base64 (default) or hex.",
        annotations(
            read_only_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn transit_random(
        &self,
        Extension(_): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<RandomArgs>,
    ) -> Result<Json<RandomResult>, CallError> {
        let bytes = a.bytes.unwrap_or(DEFAULT_RANDOM_BYTES);
        if !(1..=MAX_RANDOM_BYTES).contains(&bytes) {
            return Err(CallError::invalid(format!(
                "`bytes` must be 1 to {MAX_RANDOM_BYTES}"
            )));
        }
        let format = match a.format.unwrap_or_default() {
            RandomFormat::Base64 => "base64",
            RandomFormat::Hex => "hex",
        };
        let random = self
            .vault()
            .transit_random(&self.cfg().transit_mount, bytes, format)
            .await
            .map_err(|e| e.at("transit.random"))?;
        Ok(Json(RandomResult { random }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_checked() {
        assert!(check_b64("p", "aGVsbG8=").is_ok());
        assert!(check_b64("p", "").is_ok());
        assert!(check_b64("p", "not base64!").is_err());
        assert!(check_b64("p", "aGVsbG8").is_err());
    }
}
