//! Fuzz harnesses for mcpvault. The cargo-fuzz targets (`fuzz_targets/`) call these,
//! and so does the stable regression test `tests/it/fuzz_regressions.rs`, which replays
//! every input kept under `fixtures/fuzz/<target>/` (it includes `token.rs` and
//! `server.rs` by `#[path]`). Each harness checks properties, not just "no panic".
//!
//! `token` (token_authorize, resource_patterns) needs only the token core;
//! `server` (args_paths, stdio_judge, cli_args) needs the server crate and is built
//! with the default `server` feature.

pub mod token;
pub use token::{resource_patterns, token_authorize};

#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub use server::{args_paths, cli_args, stdio_judge};
