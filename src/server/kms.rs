//! `kms.*`: AWS KMS encrypt/decrypt, data keys, sign/verify.
//!
//! The key a call uses (`key_id`, else `AWS_KMS_DEFAULT_KEY_ID`) was already
//! authorized at the gate; here arguments are decoded and checked before any request.
//! Argument structs holding secrets do not derive `Debug`, so they cannot be logged.

use std::sync::Arc;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::schemars::{self, JsonSchema};
use rmcp::{tool, tool_router, Json};
use serde::{Deserialize, Serialize};

use aws_sdk_kms::types::{DataKeySpec, SigningAlgorithmSpec};

use crate::backend::kms::{DataKeySize, EncryptionContext, Signed};
use crate::config::Config;
use crate::error::CallError;
use crate::token::ResourceKind;

use super::handles::is_handle;
use super::{declared, Args, Authorized, McpVault, Scope, ScopeFn, Scoped};

pub(crate) const SCOPES: &[(&str, ScopeFn)] = &[
    ("kms.encrypt", declared::<KmsEncryptArgs>),
    ("kms.decrypt", declared::<KmsDecryptArgs>),
    ("kms.generate_data_key", declared::<KmsGenerateDataKeyArgs>),
    ("kms.sign", declared::<KmsSignArgs>),
    ("kms.verify", declared::<KmsVerifyArgs>),
];

/// The key a call uses: `key_id`, else `AWS_KMS_DEFAULT_KEY_ID`. Without either,
/// KMS can still decrypt (the ciphertext names its key): that call touches the whole
/// `kms` kind; every other operation needs a key.
fn key_scope(key_id: Option<&str>, cfg: &Config, whole_kind_ok: bool) -> Result<Scope, CallError> {
    let key = match (key_id, cfg.kms_default_key.as_deref()) {
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) if whole_kind_ok => return Ok(Scope::Kind(ResourceKind::Kms)),
        (None, None) => {
            return Err(invalid(
                "`key_id` is required (AWS_KMS_DEFAULT_KEY_ID is not set)",
            ))
        }
    };
    if key.is_empty() || key.len() > 2048 || key.chars().any(char::is_control) {
        return Err(CallError::bad_field(
            "key_id",
            "must be 1-2048 printable characters",
        ));
    }
    Ok(Scope::One(ResourceKind::Kms, key.to_string()))
}

impl Scoped for KmsEncryptArgs {
    fn scope(a: &Args<'_>, cfg: &Config) -> Result<Scope, CallError> {
        key_scope(a.opt_str("key_id")?, cfg, false)
    }
}

impl Scoped for KmsDecryptArgs {
    fn scope(a: &Args<'_>, cfg: &Config) -> Result<Scope, CallError> {
        key_scope(a.opt_str("key_id")?, cfg, true)
    }
}

impl Scoped for KmsGenerateDataKeyArgs {
    fn scope(a: &Args<'_>, cfg: &Config) -> Result<Scope, CallError> {
        key_scope(a.opt_str("key_id")?, cfg, false)
    }
}

impl Scoped for KmsSignArgs {
    fn scope(a: &Args<'_>, cfg: &Config) -> Result<Scope, CallError> {
        key_scope(a.opt_str("key_id")?, cfg, false)
    }
}

impl Scoped for KmsVerifyArgs {
    fn scope(a: &Args<'_>, cfg: &Config) -> Result<Scope, CallError> {
        key_scope(a.opt_str("key_id")?, cfg, false)
    }
}

/// KMS limits (bytes, after base64 decoding).
const MAX_PLAINTEXT: usize = 4096;
const MAX_CIPHERTEXT: usize = 6144;
const MAX_MESSAGE: usize = 4096;
const MAX_SIGNATURE: usize = 6144;

#[derive(Deserialize, JsonSchema)]
pub struct KmsEncryptArgs {
    /// The data to encrypt, base64 (1-4096 bytes once decoded). To encrypt more,
    /// use `kms.generate_data_key` and encrypt locally with the data key.
    #[schemars(extend("contentEncoding" = "base64"))]
    pub plaintext: String,
    /// KMS key: key id, key ARN, alias (`alias/name`) or alias ARN. Omit to use the
    /// server's default key. Your token may only allow certain keys, by the exact
    /// name you give here.
    pub key_id: Option<String>,
    /// Optional encryption context: non-secret string pairs bound to the ciphertext.
    /// Decryption needs exactly the same pairs.
    pub encryption_context: Option<EncryptionContext>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KmsEncryptResult {
    /// The ciphertext blob, base64; pass it unchanged to `kms.decrypt`.
    pub ciphertext: String,
    /// ARN of the key that encrypted.
    pub key_id: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct KmsDecryptArgs {
    /// A ciphertext blob from `kms.encrypt` or `kms.generate_data_key`, base64.
    #[schemars(extend("contentEncoding" = "base64"))]
    pub ciphertext: String,
    /// The key that encrypted it (key id, ARN or alias). Omit to use the server's
    /// default key; without one, KMS finds the key from the ciphertext (allowed only
    /// to tokens that do not restrict KMS keys). Decryption fails if the ciphertext
    /// belongs to another key than the one given.
    pub key_id: Option<String>,
    /// The encryption context given at encryption, if any (exactly the same pairs).
    pub encryption_context: Option<EncryptionContext>,
}

#[derive(Serialize, JsonSchema)]
pub struct KmsDecryptResult {
    /// The decrypted data, base64.
    pub plaintext: String,
    /// ARN of the key that decrypted.
    pub key_id: String,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum KeySpec {
    #[serde(rename = "AES_256")]
    Aes256,
    #[serde(rename = "AES_128")]
    Aes128,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct KmsGenerateDataKeyArgs {
    /// Symmetric KMS key that wraps the data key (key id, ARN or alias). Omit to use
    /// the server's default key.
    pub key_id: Option<String>,
    /// `AES_256` (32 bytes) or `AES_128` (16 bytes). Give this or `number_of_bytes`,
    /// not both; `AES_256` when neither is given.
    pub key_spec: Option<KeySpec>,
    /// Length of the data key in bytes (1-1024), instead of `key_spec`.
    #[schemars(range(min = 1, max = 1024))]
    pub number_of_bytes: Option<u32>,
    /// Optional encryption context bound to the wrapped data key.
    pub encryption_context: Option<EncryptionContext>,
}

#[derive(Serialize, JsonSchema)]
pub struct KmsGenerateDataKeyResult {
    /// The data key in the clear, base64: use it, then discard it; never store it.
    pub plaintext: String,
    /// The same data key encrypted under the KMS key, base64: store this one and
    /// recover the data key later with `kms.decrypt`.
    pub ciphertext: String,
    /// ARN of the wrapping key.
    pub key_id: String,
}

/// KMS signing algorithms; the key's spec decides which apply (ECC_NIST_P256:
/// `ECDSA_SHA_256`; RSA keys: `RSASSA_PSS_*` or `RSASSA_PKCS1_V1_5_*`).
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum SigningAlgorithm {
    ECDSA_SHA_256,
    ECDSA_SHA_384,
    ECDSA_SHA_512,
    RSASSA_PSS_SHA_256,
    RSASSA_PSS_SHA_384,
    RSASSA_PSS_SHA_512,
    RSASSA_PKCS1_V1_5_SHA_256,
    RSASSA_PKCS1_V1_5_SHA_384,
    RSASSA_PKCS1_V1_5_SHA_512,
    ED25519_SHA_512,
    ED25519_PH_SHA_512,
    ML_DSA_SHAKE_256,
    SM2DSA,
}

impl From<SigningAlgorithm> for SigningAlgorithmSpec {
    fn from(a: SigningAlgorithm) -> Self {
        use SigningAlgorithm as A;
        match a {
            A::ECDSA_SHA_256 => Self::EcdsaSha256,
            A::ECDSA_SHA_384 => Self::EcdsaSha384,
            A::ECDSA_SHA_512 => Self::EcdsaSha512,
            A::RSASSA_PSS_SHA_256 => Self::RsassaPssSha256,
            A::RSASSA_PSS_SHA_384 => Self::RsassaPssSha384,
            A::RSASSA_PSS_SHA_512 => Self::RsassaPssSha512,
            A::RSASSA_PKCS1_V1_5_SHA_256 => Self::RsassaPkcs1V15Sha256,
            A::RSASSA_PKCS1_V1_5_SHA_384 => Self::RsassaPkcs1V15Sha384,
            A::RSASSA_PKCS1_V1_5_SHA_512 => Self::RsassaPkcs1V15Sha512,
            A::ED25519_SHA_512 => Self::Ed25519Sha512,
            A::ED25519_PH_SHA_512 => Self::Ed25519PhSha512,
            A::ML_DSA_SHAKE_256 => Self::MlDsaShake256,
            A::SM2DSA => Self::Sm2Dsa,
        }
    }
}

#[derive(Deserialize, JsonSchema)]
pub struct KmsSignArgs {
    /// Asymmetric SIGN_VERIFY key (key id, ARN or alias). Omit to use the server's
    /// default key.
    pub key_id: Option<String>,
    /// The message to sign, base64 (1-4096 bytes). Give this or `message_digest`.
    #[schemars(extend("contentEncoding" = "base64"))]
    pub message: Option<String>,
    /// Instead of `message`: its digest, base64, computed with the algorithm's hash
    /// (e.g. 32 bytes of SHA-256 for `ECDSA_SHA_256`).
    #[schemars(extend("contentEncoding" = "base64"))]
    pub message_digest: Option<String>,
    pub signing_algorithm: SigningAlgorithm,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KmsSignResult {
    /// The signature, base64 (DER for ECDSA).
    pub signature: String,
    /// ARN of the signing key.
    pub key_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct KmsVerifyArgs {
    /// The key that signed (key id, ARN or alias). Omit to use the server's default key.
    pub key_id: Option<String>,
    /// The signed message, base64. Give this or `message_digest`, as when signing.
    #[schemars(extend("contentEncoding" = "base64"))]
    pub message: Option<String>,
    /// Instead of `message`: its digest, base64.
    #[schemars(extend("contentEncoding" = "base64"))]
    pub message_digest: Option<String>,
    /// The signature to check, base64 (as `kms.sign` returned it).
    #[schemars(extend("contentEncoding" = "base64"))]
    pub signature: String,
    /// The algorithm used to sign.
    pub signing_algorithm: SigningAlgorithm,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KmsVerifyResult {
    /// True only when the signature matches the message and key.
    pub valid: bool,
}

fn invalid(msg: impl Into<String>) -> CallError {
    CallError::invalid(msg)
}

/// Standard or URL-safe alphabet, padding optional, whitespace ignored (pasted
/// base64 is often wrapped). The error never quotes the input: it may be a secret.
fn decode(field: &str, value: &str, max: usize) -> Result<Vec<u8>, CallError> {
    const CFG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CFG);
    const URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CFG);
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = STD
        .decode(&compact)
        .or_else(|_| URL.decode(&compact))
        .map_err(|_| invalid(format!("`{field}` is not valid base64")))?;
    if bytes.is_empty() || bytes.len() > max {
        return Err(invalid(format!(
            "`{field}` must decode to 1-{max} bytes (got {})",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn signed_input(message: Option<&str>, digest: Option<&str>) -> Result<Signed, CallError> {
    match (message, digest) {
        (Some(m), None) => Ok(Signed::Message(decode("message", m, MAX_MESSAGE)?)),
        (None, Some(d)) => Ok(Signed::Digest(decode("message_digest", d, MAX_MESSAGE)?)),
        (Some(_), Some(_)) => Err(invalid(
            "give either `message` or `message_digest`, not both",
        )),
        (None, None) => Err(invalid("one of `message` or `message_digest` is required")),
    }
}

/// The key the pipeline authorized (declared by `key_scope`).
fn authorized_key(auth: &Authorized) -> Result<&str, CallError> {
    auth.resource()
        .ok_or_else(|| invalid("`key_id` is required (AWS_KMS_DEFAULT_KEY_ID is not set)"))
}

#[tool_router(router = kms_router, vis = "pub(crate)")]
impl McpVault {
    // None of these change state in KMS, but encrypt/decrypt/sign/generate use a key
    // (and are audited as such), so only `verify`, which needs no secret, is marked
    // read-only: hosts often auto-approve read-only tools.
    #[tool(
        name = "kms.encrypt",
        description = "Encrypt up to 4 KB of data (base64, or a whole handle \
                       `mcpvault:handle:<id>` whose value you have not seen) under an AWS KMS \
                       key. Returns a base64 \
                       ciphertext blob for kms.decrypt. key_id defaults to the server's key; an \
                       optional encryption_context (string pairs) must be repeated to decrypt. \
                       Each call yields a different ciphertext.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn kms_encrypt(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<KmsEncryptArgs>,
    ) -> Result<Json<KmsEncryptResult>, CallError> {
        let key = authorized_key(&auth)?;
        // A handle as the whole plaintext: see transit.encrypt.
        let plaintext = if is_handle(&a.plaintext) {
            let bytes = auth.use_handle_bytes_into(&a.plaintext, ResourceKind::Kms, key)?;
            if bytes.len() > MAX_PLAINTEXT {
                return Err(invalid(format!(
                    "the handle's value is over {MAX_PLAINTEXT} bytes, too long for KMS"
                )));
            }
            bytes.to_vec()
        } else {
            decode("plaintext", &a.plaintext, MAX_PLAINTEXT)?
        };
        let out = self
            .ctx
            .kms
            .encrypt(key, plaintext, a.encryption_context)
            .await?;
        Ok(Json(KmsEncryptResult {
            ciphertext: encode(&out.ciphertext),
            key_id: out.key_id,
        }))
    }

    #[tool(
        name = "kms.decrypt",
        description = "Decrypt a base64 ciphertext blob from kms.encrypt or kms.generate_data_key \
                       with an AWS KMS key. Returns the plaintext as base64, or a handle \
                       (`mcpvault:handle:<id>`, usable without seeing it) unless your token may \
                       reveal it. Give the same key_id \
                       (or omit it for the server's default key) and exactly the same \
                       encryption_context as at encryption.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn kms_decrypt(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<KmsDecryptArgs>,
    ) -> Result<Json<KmsDecryptResult>, CallError> {
        let ciphertext = decode("ciphertext", &a.ciphertext, MAX_CIPHERTEXT)?;
        let out = self
            .ctx
            .kms
            .decrypt(auth.resource(), ciphertext, a.encryption_context)
            .await?;
        Ok(Json(KmsDecryptResult {
            plaintext: auth.secret_b64(encode(&out.plaintext))?,
            key_id: out.key_id,
        }))
    }

    #[tool(
        name = "kms.generate_data_key",
        description = "Generate a data key for envelope encryption under a symmetric AWS KMS key. \
                       Returns the key in the clear (plaintext, base64, or a handle unless your \
                       token may reveal it: use it locally, never store it) and wrapped (ciphertext, base64: store it; kms.decrypt recovers \
                       the key). Size: key_spec AES_256 (default) or AES_128, or number_of_bytes \
                       1-1024.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn kms_generate_data_key(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<KmsGenerateDataKeyArgs>,
    ) -> Result<Json<KmsGenerateDataKeyResult>, CallError> {
        let size = match (a.key_spec, a.number_of_bytes) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "give either `key_spec` or `number_of_bytes`, not both",
                ))
            }
            (None, Some(n)) => match i32::try_from(n) {
                Ok(n) if (1..=1024).contains(&n) => DataKeySize::Bytes(n),
                _ => return Err(invalid("`number_of_bytes` must be 1-1024")),
            },
            (Some(KeySpec::Aes128), None) => DataKeySize::Spec(DataKeySpec::Aes128),
            (Some(KeySpec::Aes256), None) | (None, None) => DataKeySize::Spec(DataKeySpec::Aes256),
        };
        let key = authorized_key(&auth)?;
        let out = self
            .ctx
            .kms
            .generate_data_key(key, size, a.encryption_context)
            .await?;
        Ok(Json(KmsGenerateDataKeyResult {
            plaintext: auth.secret_b64(encode(&out.plaintext))?,
            ciphertext: encode(&out.ciphertext),
            key_id: out.key_id,
        }))
    }

    #[tool(
        name = "kms.sign",
        description = "Sign a message (base64, up to 4 KB) or its digest (message_digest, base64) \
                       with an asymmetric AWS KMS key; give exactly one. signing_algorithm must \
                       suit the key (ECDSA_SHA_256 for ECC_NIST_P256 keys, RSASSA_PSS_* or \
                       RSASSA_PKCS1_V1_5_* for RSA keys). Returns the signature, base64.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn kms_sign(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<KmsSignArgs>,
    ) -> Result<Json<KmsSignResult>, CallError> {
        let input = signed_input(a.message.as_deref(), a.message_digest.as_deref())?;
        let key = authorized_key(&auth)?;
        let (signature, key_id) = self
            .ctx
            .kms
            .sign(key, input, a.signing_algorithm.into())
            .await?;
        Ok(Json(KmsSignResult {
            signature: encode(&signature),
            key_id,
        }))
    }

    #[tool(
        name = "kms.verify",
        description = "Check a signature made by kms.sign: the same key_id, message (or \
                       message_digest), signing_algorithm, and the base64 signature. Returns \
                       valid: true or false; a non-matching signature is not an error.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn kms_verify(
        &self,
        Extension(auth): Extension<Arc<Authorized>>,
        Parameters(a): Parameters<KmsVerifyArgs>,
    ) -> Result<Json<KmsVerifyResult>, CallError> {
        let input = signed_input(a.message.as_deref(), a.message_digest.as_deref())?;
        let signature = decode("signature", &a.signature, MAX_SIGNATURE)?;
        let key = authorized_key(&auth)?;
        let valid = self
            .ctx
            .kms
            .verify(key, input, signature, a.signing_algorithm.into())
            .await?;
        Ok(Json(KmsVerifyResult { valid }))
    }
}
