//! The authorization core: Biscuit capability tokens for MCP tools.
//!
//! Pure logic, no I/O: key handling, minting, offline attenuation, inspection and
//! request authorization with a bounded cache. The stdio server, the `mcpvault` CLI and
//! the language bindings all call this crate, so policy lives in exactly one place.
//! The Datalog vocabulary is documented in `SCHEMA.md`.

pub mod bounds;
mod encoding;
mod error;
pub mod http;
mod inspect;
mod issue;
mod keys;
mod scope;
mod verify;

pub use encoding::{decode_token, encode_token, MAX_TOKEN_BYTES};
pub use error::{Denial, TokenError};
pub use inspect::{inspect, BlockInfo, TokenInfo};
pub use issue::{attenuate, mint, AttenuateSpec, MintSpec};
pub use keys::{generate_keypair, parse_public_keys, KeyFile};
pub use scope::{parse_tools, ResourceKind, ResourcePattern, ToolGrant};
pub use verify::{
    AuthorizedFacts, Request, RequestResource, RevocationSet, Verifier, VerifierConfig,
    DEFAULT_MAX_DELEGATION_DEPTH, HARD_MAX_DELEGATION_DEPTH, POLICY as VERIFIER_POLICY,
};
