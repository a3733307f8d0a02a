//! AWS KMS backend (see issue 4) through `aws-sdk-kms`.
//!
//! The SDK client is built lazily, on the first `kms.*` call, so cold start does not
//! pay for credential/region discovery and a server without any AWS configuration
//! still starts; its `kms.*` calls then fail with `kms: <op>: not configured (...)`
//! or the SDK's own reason.
//!
//! Configuration is the SDK's standard chain (`aws_config::defaults`). The AWS crates
//! are built with `default-features = false` (`rt-tokio`, `default-https-client`),
//! which keeps these credential sources: environment variables, the shared
//! profile files (static keys, `role_arn` + `source_profile`), STS web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE`, e.g. EKS IRSA), ECS container credentials and
//! EC2 IMDS. It drops **SSO** (`sso_session` / `sso_start_url` profiles) and
//! **`credential_process`**: use `aws configure export-credentials` or a role
//! instead. Endpoint override: the SDK's own `AWS_ENDPOINT_URL_KMS` (or
//! `AWS_ENDPOINT_URL`), else the legacy `AWS_KMS_ENDPOINT`.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::verify::VerifyError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, MessageType, SigningAlgorithmSpec};
use aws_sdk_kms::Client;
use tokio::sync::OnceCell;

use super::BackendError;

/// Whole operation, retries included: an unreachable KMS answers within this.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Region and credential discovery may probe IMDS; never let it hang a call.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The SDK's standard retry mode, bounded: one retry for throttling or a blip.
const MAX_ATTEMPTS: u32 = 2;

pub struct Kms {
    client: OnceCell<Client>,
    /// `AWS_KMS_ENDPOINT`, applied only when the SDK's own variables are absent.
    legacy_endpoint: Option<String>,
}

pub struct Encrypted {
    pub ciphertext: Vec<u8>,
    pub key_id: String,
}

pub struct Decrypted {
    pub plaintext: Vec<u8>,
    pub key_id: String,
}

pub struct DataKey {
    pub plaintext: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub key_id: String,
}

/// Size of a generated data key.
pub enum DataKeySize {
    Spec(DataKeySpec),
    Bytes(i32),
}

/// What `sign` / `verify` cover: the message itself, or its digest.
pub enum Signed {
    Message(Vec<u8>),
    Digest(Vec<u8>),
}

pub type EncryptionContext = BTreeMap<String, String>;

impl Kms {
    /// `legacy_endpoint`: `AWS_KMS_ENDPOINT` as `config` resolved it (only when the
    /// SDK's own endpoint variables are absent). No I/O, no SDK work here.
    pub fn new(legacy_endpoint: Option<String>) -> Self {
        Kms {
            client: OnceCell::new(),
            legacy_endpoint,
        }
    }

    /// The client, built on first use. A failure is not cached: a role or network
    /// that becomes available later is picked up by the next call.
    async fn client(&self, op: &'static str) -> Result<&Client, BackendError> {
        self.client
            .get_or_try_init(|| self.build())
            .await
            .map_err(|reason| BackendError::Kms { op, reason })
    }

    async fn build(&self) -> Result<Client, String> {
        let loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        let sdk = tokio::time::timeout(LOAD_TIMEOUT, loader.load())
            .await
            .map_err(|_| "not configured (AWS configuration discovery timed out)".to_string())?;
        if sdk.region().is_none() {
            return Err(
                "not configured (no AWS region: set AWS_REGION or a region in the AWS profile)"
                    .into(),
            );
        }
        let mut conf = aws_sdk_kms::config::Builder::from(&sdk);
        if let Some(url) = &self.legacy_endpoint {
            conf = conf.endpoint_url(url);
        }
        tracing::debug!(region = ?sdk.region(), "kms client built");
        Ok(Client::from_conf(conf.build()))
    }

    pub async fn encrypt(
        &self,
        key_id: &str,
        plaintext: Vec<u8>,
        context: Option<EncryptionContext>,
    ) -> Result<Encrypted, BackendError> {
        const OP: &str = "encrypt";
        let out = self
            .client(OP)
            .await?
            .encrypt()
            .key_id(key_id)
            .plaintext(Blob::new(plaintext))
            .set_encryption_context(context.map(|c| c.into_iter().collect()))
            .send()
            .await
            .map_err(|e| sdk_err(OP, e))?;
        Ok(Encrypted {
            ciphertext: blob(OP, out.ciphertext_blob)?,
            key_id: out.key_id.unwrap_or_else(|| key_id.to_string()),
        })
    }

    /// Always names the key: without `KeyId`, KMS would decrypt with whatever key
    /// the ciphertext names, bypassing the token's key restriction.
    /// `key_id: None` lets KMS find the key from the ciphertext (AWS semantics; the
    /// pipeline admits it only for tokens that do not restrict `kms` keys).
    pub async fn decrypt(
        &self,
        key_id: Option<&str>,
        ciphertext: Vec<u8>,
        context: Option<EncryptionContext>,
    ) -> Result<Decrypted, BackendError> {
        const OP: &str = "decrypt";
        let out = self
            .client(OP)
            .await?
            .decrypt()
            .set_key_id(key_id.map(str::to_string))
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(context.map(|c| c.into_iter().collect()))
            .send()
            .await
            .map_err(|e| sdk_err(OP, e))?;
        Ok(Decrypted {
            plaintext: blob(OP, out.plaintext)?,
            key_id: out
                .key_id
                .or_else(|| key_id.map(str::to_string))
                .unwrap_or_default(),
        })
    }

    pub async fn generate_data_key(
        &self,
        key_id: &str,
        size: DataKeySize,
        context: Option<EncryptionContext>,
    ) -> Result<DataKey, BackendError> {
        const OP: &str = "generate_data_key";
        let req = self
            .client(OP)
            .await?
            .generate_data_key()
            .key_id(key_id)
            .set_encryption_context(context.map(|c| c.into_iter().collect()));
        let req = match size {
            DataKeySize::Spec(s) => req.key_spec(s),
            DataKeySize::Bytes(n) => req.number_of_bytes(n),
        };
        let out = req.send().await.map_err(|e| sdk_err(OP, e))?;
        Ok(DataKey {
            plaintext: blob(OP, out.plaintext)?,
            ciphertext: blob(OP, out.ciphertext_blob)?,
            key_id: out.key_id.unwrap_or_else(|| key_id.to_string()),
        })
    }

    /// Returns the signature and the key's ARN.
    pub async fn sign(
        &self,
        key_id: &str,
        input: Signed,
        algorithm: SigningAlgorithmSpec,
    ) -> Result<(Vec<u8>, String), BackendError> {
        const OP: &str = "sign";
        let (kind, bytes) = input.parts();
        let out = self
            .client(OP)
            .await?
            .sign()
            .key_id(key_id)
            .message(Blob::new(bytes))
            .message_type(kind)
            .signing_algorithm(algorithm)
            .send()
            .await
            .map_err(|e| sdk_err(OP, e))?;
        Ok((
            blob(OP, out.signature)?,
            out.key_id.unwrap_or_else(|| key_id.to_string()),
        ))
    }

    /// `Ok(false)` for a signature that does not match, whichever way the service
    /// says so: AWS raises `KMSInvalidSignatureException`, moto answers
    /// `SignatureValid: false`.
    pub async fn verify(
        &self,
        key_id: &str,
        input: Signed,
        signature: Vec<u8>,
        algorithm: SigningAlgorithmSpec,
    ) -> Result<bool, BackendError> {
        const OP: &str = "verify";
        let (kind, bytes) = input.parts();
        let res = self
            .client(OP)
            .await?
            .verify()
            .key_id(key_id)
            .message(Blob::new(bytes))
            .message_type(kind)
            .signature(Blob::new(signature))
            .signing_algorithm(algorithm)
            .send()
            .await;
        match res {
            Ok(out) => Ok(out.signature_valid),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), VerifyError::KmsInvalidSignatureException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_err(OP, e)),
        }
    }
}

impl Signed {
    fn parts(self) -> (MessageType, Vec<u8>) {
        match self {
            Signed::Message(m) => (MessageType::Raw, m),
            Signed::Digest(d) => (MessageType::Digest, d),
        }
    }
}

fn blob(op: &'static str, b: Option<Blob>) -> Result<Vec<u8>, BackendError> {
    b.map(Blob::into_inner).ok_or(BackendError::Kms {
        op,
        reason: "the response lacks an expected field".into(),
    })
}

/// `kms: <op>: <reason>`. Service errors give KMS's code and message; transport
/// errors the SDK's error chain (Display only). A response that did not parse gives only its
/// status: the parser's message could quote the body, which may hold plaintext.
fn sdk_err<E>(op: &'static str, e: SdkError<E, HttpResponse>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let reason = match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            match (err.code(), err.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                // KMS often sends this one without a message; say what usually causes it.
                (Some(code @ "InvalidCiphertextException"), None) => format!(
                    "{code} (corrupt ciphertext, or not the encryption_context it was made with)"
                ),
                (Some(code), None) => code.to_string(),
                _ => format!("HTTP {}: unrecognized error", se.raw().status().as_u16()),
            }
        }
        SdkError::ResponseError(re) => format!(
            "could not parse the response (HTTP {})",
            re.raw().status().as_u16()
        ),
        _ => error_chain(&e),
    };
    BackendError::Kms { op, reason }
}

/// The Display messages of an error and its sources, joined by `: `. Unlike
/// `DisplayErrorContext` this leaves out the Debug dump (raw responses, headers).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let msg = err.to_string();
        // Wrappers often repeat their source's message; keep each once.
        if !msg.is_empty() && !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        cur = err.source();
    }
    parts.join(": ")
}
