//! Token inspection without signature checks: for humans and debugging, never for
//! decisions.

use biscuit_auth::UnverifiedBiscuit;
use serde::Serialize;

use crate::encoding::decode_token;
use crate::error::Denial;

#[derive(Debug, Serialize)]
pub struct BlockInfo {
    pub facts: Vec<String>,
    pub rules: Vec<String>,
    pub checks: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TokenInfo {
    pub block_count: usize,
    pub blocks: Vec<BlockInfo>,
    pub revocation_ids: Vec<String>,
}

pub fn inspect(token: &str) -> Result<TokenInfo, Denial> {
    let bytes = decode_token(token)?;
    let t = UnverifiedBiscuit::from(&bytes)
        .map_err(|e| Denial::Malformed(e.to_string().chars().take(120).collect()))?;
    let mut blocks = Vec::with_capacity(t.block_count());
    for i in 0..t.block_count() {
        let src = t
            .print_block_source(i)
            .map_err(|_| Denial::Malformed(format!("block {i} unreadable")))?;
        let mut info = BlockInfo {
            facts: vec![],
            rules: vec![],
            checks: vec![],
        };
        // Biscuit prints each statement followed by ";\n" (facts, then rules, then
        // checks). Splitting on that, not on lines, keeps a string holding a newline in
        // one statement.
        for stmt in src.split(";\n").filter(|s| !s.trim().is_empty()) {
            let stmt = stmt.to_string();
            if stmt.starts_with("check ") || stmt.starts_with("reject ") {
                info.checks.push(stmt);
            } else if stmt.contains("<-") {
                info.rules.push(stmt);
            } else {
                info.facts.push(stmt);
            }
        }
        blocks.push(info);
    }
    Ok(TokenInfo {
        block_count: t.block_count(),
        blocks,
        revocation_ids: t.revocation_identifiers().iter().map(hex::encode).collect(),
    })
}
