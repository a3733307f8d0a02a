//! Token text encoding. MCPVault prints tokens as standard base64; Biscuit's own
//! tooling uses URL-safe base64. We print standard and accept both, padded or not.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;

use crate::error::Denial;

/// Upper bound on the encoded token size. Anything larger is rejected before decoding,
/// so a hostile client cannot make us parse megabytes of protobuf.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

pub fn encode_token(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes a token string (trimmed). Rejects oversized input before any work.
pub fn decode_token(token: &str) -> Result<Vec<u8>, Denial> {
    let t = token.trim();
    if t.is_empty() {
        return Err(Denial::NoToken);
    }
    if t.len() > MAX_TOKEN_BYTES {
        return Err(Denial::Malformed(format!(
            "token larger than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let engine_result = if t.contains(['-', '_']) {
        if t.ends_with('=') {
            URL_SAFE.decode(t)
        } else {
            URL_SAFE_NO_PAD.decode(t)
        }
    } else if t.ends_with('=') {
        STANDARD.decode(t)
    } else {
        // Unpadded standard base64 (some hosts strip '='); padded length works too.
        STANDARD_NO_PAD.decode(t).or_else(|_| STANDARD.decode(t))
    };
    engine_result.map_err(|_| Denial::Malformed("not base64".into()))
}
