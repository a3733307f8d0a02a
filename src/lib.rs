//! mcpvault: capability tokens for MCP tools backed by Vault/OpenBao and AWS KMS.
//!
//! `token` is the pure authorization core shared by the `mcpvault` CLI, the
//! `mcpvault-stdio` server and the language bindings.

pub mod token;
