//! Integration tests: each spawns the real `mcpvault-stdio` (or runs the `mcpvault`
//! CLI) and checks what an agent host or operator would see. One binary, one module
//! per area:
//!
//! - `harness`: the spawn harness (server process, JSON-RPC over the pipe, test key
//!   and tokens, stand-in dead or hung backends, polling, stdout purity);
//! - `devstack`: reaching the dev stack (env file, OpenBao API by curl, its audit
//!   log, PostgreSQL logins, private OpenBao / moto servers);
//! - the areas: `cli`, `confirm` (human confirmation through the MCP Python SDK),
//!   `audit_log`, `pipeline` (write-ahead audit, tool surface,
//!   configuration), `revocation_live`, `no_leak`, `kms_tools`, `handles`,
//!   `vault` (tools, backend connection), `hostile` (input, pipeline, rate limits,
//!   lifecycle), `faults` (backends dying and hanging), `fuzz_regressions`,
//!   `http_request`, and `mcpvault-http` with the Python SDK: `http_server` (agents,
//!   replicas, time bounds), `http_tls` (TLS, mTLS, bad certificate files).
//!
//! Tests that need the dev stack read `MCPVAULT_DEVSTACK_ENV` (set by
//! `tools/test.sh`) and fail loudly without it; none is skipped. Tests that need the
//! shared stack to themselves are in `tests/stack_exclusive`.

mod devstack;
mod harness;

mod audit_log;
mod cli;
mod confirm;
mod faults;
mod fuzz_regressions;
mod handles;
mod hostile;
mod http_request;
mod http_server;
mod http_tls;
mod kms_tools;
mod no_leak;
mod pipeline;
mod revocation_live;
mod vault;
