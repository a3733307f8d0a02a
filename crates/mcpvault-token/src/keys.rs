//! Key files and public key lists, compatible with MCPVault's key file:
//! `{"private_key": hex, "public_key": hex}` with raw Ed25519 bytes in hex.

use biscuit_auth::{builder::Algorithm, KeyPair, PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};

use crate::error::TokenError;

#[derive(Serialize, Deserialize, Clone)]
pub struct KeyFile {
    pub private_key: String,
    pub public_key: String,
}

impl std::fmt::Debug for KeyFile {
    // Never print the private key, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

pub fn generate_keypair() -> KeyFile {
    let kp = KeyPair::new();
    KeyFile {
        private_key: hex::encode(kp.private().to_bytes()),
        public_key: hex::encode(kp.public().to_bytes()),
    }
}

impl KeyFile {
    /// Parses a key file's JSON. Error messages give only the position of the problem,
    /// never the content, so a damaged key file cannot leak its private key into logs.
    /// The public key must match the private key.
    pub fn from_json(text: &str) -> Result<KeyFile, TokenError> {
        let kf: KeyFile = serde_json::from_str(text).map_err(|e| {
            TokenError::Key(format!(
                "key file is not JSON of the form {{\"private_key\": hex, \"public_key\": hex}} \
                 (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let kp = kf.keypair()?;
        if !kf
            .public_key
            .trim()
            .eq_ignore_ascii_case(&hex::encode(kp.public().to_bytes()))
        {
            return Err(TokenError::Key(
                "key file's public_key does not match its private_key".into(),
            ));
        }
        Ok(kf)
    }

    /// The key file's JSON (pretty, as MCPVault writes it).
    pub fn to_json(&self) -> String {
        // Serializing two strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn keypair(&self) -> Result<KeyPair, TokenError> {
        let bytes = hex::decode(self.private_key.trim())
            .map_err(|_| TokenError::Key("private key is not hex".into()))?;
        let private = PrivateKey::from_bytes(&bytes, Algorithm::Ed25519)
            .map_err(|_| TokenError::Key("private key is not a 32-byte Ed25519 key".into()))?;
        Ok(KeyPair::from(&private))
    }
}

/// Parses one or more root public keys, comma-separated (key rotation).
pub fn parse_public_keys(list: &str) -> Result<Vec<PublicKey>, TokenError> {
    let keys = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|h| {
            let bytes =
                hex::decode(h).map_err(|_| TokenError::Key("public key is not hex".into()))?;
            PublicKey::from_bytes(&bytes, Algorithm::Ed25519)
                .map_err(|_| TokenError::Key("public key is not a 32-byte Ed25519 key".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(TokenError::Key("no public key given".into()));
    }
    Ok(keys)
}
