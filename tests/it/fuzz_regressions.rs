//! Replays every input kept under `fixtures/fuzz/<target>/` (crashes found by
//! `tools/fuzz.sh`, plus hand-written cases) through the same harnesses the cargo-fuzz
//! targets run, on stable, in every test run. A harness panics on any broken property.
//!
//! The fuzz crate's `src/lib.rs` is two modules, `token` and `server` (the latter
//! behind its `server` feature); they are included here directly, under the same
//! names, so `super::token::...` resolves the same way in both crates.

#[path = "../../fuzz/src/server.rs"]
mod server;
#[path = "../../fuzz/src/token.rs"]
mod token;

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fuzz")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    for f in &files {
        let data = std::fs::read(f).expect("read input");
        eprintln!("{target}: {}", f.display());
        run(&data);
    }
}

#[test]
fn token_authorize_inputs() {
    replay("token_authorize", token::token_authorize);
}

#[test]
fn resource_patterns_inputs() {
    replay("resource_patterns", token::resource_patterns);
}

#[test]
fn args_paths_inputs() {
    replay("args_paths", server::args_paths);
}

#[test]
fn stdio_judge_inputs() {
    replay("stdio_judge", server::stdio_judge);
}

#[test]
fn cli_args_inputs() {
    replay("cli_args", server::cli_args);
}
