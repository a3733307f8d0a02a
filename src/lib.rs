//! mcpvault: capability tokens for MCP tools backed by Vault/OpenBao and AWS KMS.
//!
//! `token` is the pure authorization core shared by the `mcpvault` CLI, the
//! `mcpvault-stdio` server and the language bindings: it is its own crate
//! (`crates/mcpvault-token`), re-exported here so `mcpvault::token::...` keeps working.
//! `server` is the MCP glue, `backend` one module per backend, `cli` the token CLI's
//! command line (clap definition and flag parsers, no I/O).

pub mod audit;
pub mod backend;
pub mod cli;
pub mod config;
pub mod error;
pub mod logging;
pub mod paths;
pub mod policy;
pub mod server;
pub use mcpvault_token as token;
