//! Static cost bound, checked before any Datalog runs.
//!
//! Biscuit's run limits (facts, iterations, time) are only checked *between* rule
//! iterations and between check queries. One rule such as `x($a, $b) <- f($a), f($b)`
//! over a few thousand facts, or one check query joining three predicates, does all
//! its work inside a single step: the limits fire only after the damage (seconds of
//! CPU, gigabytes of memory). Attenuation needs no key, so any holder of any valid
//! token could send such a block. This module decodes the token with biscuit-auth's own
//! protobuf schema types (`biscuit_auth::format::schema`; no Datalog, no signature,
//! microseconds) and rejects a token whose worst-case evaluation exceeds a budget:
//!
//! - facts in all blocks together, plus those the verifier adds, must fit the run
//!   limit on facts;
//! - for every rule and check query, `combinations x (1 + expression ops)` is summed,
//!   where `combinations` is the product over its body predicates of the number of
//!   facts that could match (facts of that name in the token, plus one the verifier
//!   may add; the fact cap if some rule can derive that name);
//! - blocks after the authority block (written by token holders, not by the issuer)
//!   may not use the operations whose cost is not bounded by the size of their operands
//!   (regex, string concatenation, set union/intersection, closures over collections,
//!   foreign functions), and their literals stay small.
//!
//! Anything the walk does not understand is rejected: it fails closed. Operation and
//! check kinds are matched exhaustively (no catch-all arm on biscuit-auth's enums), so
//! a biscuit-auth upgrade that adds one stops the build until it is classified here,
//! and a kind this biscuit-auth does not know (an unknown enum value on the wire) is
//! refused, as is a term or operation without content.
//!
//! The same walk reads what the verifier needs from the authority block (tools,
//! issuer, subject, depth cap, resources) and the earliest TTL, so a first sight
//! needs one Datalog run (the decision), not one per query.

use std::collections::{HashMap, HashSet};

use biscuit_auth::datalog::SymbolTable;
use biscuit_auth::format::schema::{self, check, op, op_binary, op_unary, term};
use prost::Message as _;

/// Upper bound on `sum(combinations x (1 + ops))` over all rules and check queries.
/// Tokens we mint cost about 30 plus 40 per attenuation block (about 1 200 at the
/// hard cap of 32 blocks): every body predicate names a fact the verifier supplies
/// once. The bound keeps a crafted token to a few milliseconds.
pub const COST_BUDGET: u64 = 5_000;
/// Elements of one literal (set, array, map, nested included) in a holder's block.
pub const MAX_LITERAL_ELEMENTS: usize = 256;
/// Bytes of one string or byte literal in a holder's block.
pub const MAX_LITERAL_BYTES: usize = 1024;
/// Nesting of literals and closures (Biscuit's own decoder stops at 100).
const MAX_NESTING: u32 = 32;
/// Facts the verifier adds to every request (time, requested_tool, request_kind,
/// requested_resource, requested_http, depth, request_purpose, reveal_request), with
/// room to spare.
const VERIFIER_FACTS: u64 = 10;

/// What the walk found in an acceptable token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Blocks, authority included.
    pub blocks: usize,
    /// The authority block's facts, or `None` when it has rules (then what it grants
    /// can only be read by running Datalog).
    pub authority: Option<AuthorityFacts>,
    /// The earliest `check if time($t), $t < DATE` of any block (seconds since epoch).
    pub expiry: Option<u64>,
    /// The worst-case evaluation cost (at most [`COST_BUDGET`]).
    pub cost: u64,
    /// What attenuation blocks say they narrowed to (`narrow_tool`, `narrow_resource`
    /// display facts), for denials that explain. Never used to decide.
    pub narrowed: Vec<Narrowing>,
    /// `confirm(TOOL)` facts of every block (sorted, deduplicated): tools whose
    /// calls need the user's confirmation. Read from every block, not only the
    /// authority block: a requirement only restricts, so a holder may add one, and
    /// no block can take one away.
    pub confirms: Vec<String>,
}

/// The display facts of one attenuation block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Narrowing {
    pub block: usize,
    /// `--tools` as given (`kv.read`, `transit.*`).
    pub tools: Vec<String>,
    /// `--resource` as given: (kind, pattern).
    pub resources: Vec<(String, String)>,
}

/// Facts of the authority block the verifier reads, in block order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorityFacts {
    pub tools: Vec<String>,
    pub tool_wildcards: Vec<String>,
    pub issuers: Vec<String>,
    pub subjects: Vec<String>,
    pub max_delegation_depths: Vec<i64>,
    pub resources: Vec<(String, String)>,
    /// `reveal(kind, pattern)`: what secret values the token may see in clear.
    pub reveals: Vec<(String, String)>,
}

/// Why a token's shape was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    /// Not the protobuf we expect.
    Malformed(&'static str),
    /// Uses an operation or literal we do not accept in a holder's block.
    Unsupported(String),
    /// Evaluation could exceed the limits.
    TooCostly(String),
}

/// Why a holder's block may not use this binary operation (`None`: it may). Every
/// kind is listed, with no catch-all, so a biscuit-auth upgrade that adds one does
/// not compile until someone decides where it belongs.
fn binary_refused(kind: op_binary::Kind) -> Option<&'static str> {
    use op_binary::Kind;
    match kind {
        Kind::Regex => Some("regex (.matches)"),
        Kind::Add => Some("addition / string concatenation"),
        Kind::Intersection => Some("set intersection"),
        Kind::Union => Some("set union"),
        Kind::All => Some(".all()"),
        Kind::Any => Some(".any()"),
        Kind::Ffi => Some("foreign function"),
        // Bounded by the size of their operands.
        Kind::LessThan
        | Kind::GreaterThan
        | Kind::LessOrEqual
        | Kind::GreaterOrEqual
        | Kind::Equal
        | Kind::Contains
        | Kind::Prefix
        | Kind::Suffix
        | Kind::Sub
        | Kind::Mul
        | Kind::Div
        | Kind::And
        | Kind::Or
        | Kind::BitwiseAnd
        | Kind::BitwiseOr
        | Kind::BitwiseXor
        | Kind::NotEqual
        | Kind::HeterogeneousEqual
        | Kind::HeterogeneousNotEqual
        | Kind::LazyAnd
        | Kind::LazyOr
        | Kind::Get
        | Kind::TryOr => None,
    }
}

/// Why a holder's block may not use this unary operation (`None`: it may).
/// Exhaustive for the same reason as [`binary_refused`].
fn unary_refused(kind: op_unary::Kind) -> Option<&'static str> {
    use op_unary::Kind;
    match kind {
        Kind::Ffi => Some("foreign function"),
        Kind::Negate | Kind::Parens | Kind::Length | Kind::TypeOf => None,
    }
}

/// The kind of a binary operation; a kind this biscuit-auth does not know (a newer
/// writer, or garbage) is refused in every block.
fn binary_kind(b: &schema::OpBinary) -> Result<op_binary::Kind, ShapeError> {
    op_binary::Kind::from_i32(b.kind)
        .ok_or_else(|| ShapeError::Unsupported(format!("unknown binary operation {}", b.kind)))
}

fn unary_kind(u: &schema::OpUnary) -> Result<op_unary::Kind, ShapeError> {
    op_unary::Kind::from_i32(u.kind)
        .ok_or_else(|| ShapeError::Unsupported(format!("unknown unary operation {}", u.kind)))
}

const BAD: ShapeError = ShapeError::Malformed("unreadable protobuf");

/// A term reduced to what the walk needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    Var(u64),
    Int(i64),
    Str(u64),
    Date(u64),
    Other,
}

/// A top-level expression op reduced to what the walk needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Value(Scalar),
    Binary(op_binary::Kind),
    Other,
}

/// A rule or check query: body predicates, top-level expression ops, op count.
struct Query {
    body: Vec<(u64, Vec<Scalar>)>,
    expressions: Vec<Vec<OpKind>>,
    ops: u64,
}

impl Query {
    /// `time($t), $t < DATE` (MCPVault's and our TTL check): the date.
    fn expiry(&self, time: u64) -> Option<u64> {
        match (self.body.as_slice(), self.expressions.as_slice()) {
            ([(name, terms)], [ops]) if *name == time => match (terms.as_slice(), ops.as_slice()) {
                (
                    [Scalar::Var(v)],
                    [OpKind::Value(Scalar::Var(w)), OpKind::Value(Scalar::Date(d)), OpKind::Binary(op_binary::Kind::LessThan)],
                ) if v == w => Some(*d),
                _ => None,
            },
            _ => None,
        }
    }
}

#[derive(Default)]
struct Tally {
    /// Symbols of all blocks, in order (first-party blocks share one table).
    symbols: Vec<String>,
    /// Authority-block facts: name and terms.
    authority_facts: Vec<(u64, Vec<Scalar>)>,
    /// Attenuation-block facts, with their block index (only `confirm` and the
    /// display facts are read from them).
    holder_facts: Vec<(usize, u64, Vec<Scalar>)>,
    authority_rules: bool,
    /// Dates of single-query TTL checks.
    expiries: Vec<u64>,
    /// Facts per predicate name (symbol id) over all blocks.
    facts: HashMap<u64, u64>,
    facts_total: u64,
    /// Names some rule can derive.
    heads: HashSet<u64>,
    rules: Vec<Query>,
    queries: Vec<Query>,
}

/// The blocks (authority first) of a serialized token, decoded, and whether any
/// carries an external (third-party) signature. Nothing is verified here.
fn blocks(token: &[u8]) -> Result<(Vec<schema::Block>, bool), ShapeError> {
    let token = schema::Biscuit::decode(token).map_err(|_| BAD)?;
    let mut third_party = false;
    let mut out = Vec::with_capacity(1 + token.blocks.len());
    for signed in std::iter::once(&token.authority).chain(&token.blocks) {
        third_party |= signed.external_signature.is_some();
        // A missing block decodes as empty bytes; Biscuit never writes an empty one
        // (every block states its version).
        if signed.block.is_empty() {
            return Err(ShapeError::Malformed("block without content"));
        }
        out.push(schema::Block::decode(signed.block.as_slice()).map_err(|_| BAD)?);
    }
    Ok((out, third_party))
}

/// Checks a serialized token's shape and worst-case evaluation cost. `max_facts` is
/// the verifier's run limit on facts.
pub fn check(token: &[u8], max_facts: u64) -> Result<Shape, ShapeError> {
    let (blocks, third_party) = blocks(token)?;
    if third_party {
        return Err(ShapeError::Unsupported(
            "third-party blocks are not accepted".into(),
        ));
    }
    let mut tally = Tally::default();
    for (i, block) in blocks.iter().enumerate() {
        read_block(block, i, &mut tally)?;
    }
    let total = tally.facts_total.saturating_add(VERIFIER_FACTS);
    if total > max_facts {
        return Err(ShapeError::TooCostly(format!(
            "{} facts, more than the limit of {max_facts}",
            tally.facts_total
        )));
    }
    let candidates = |name: &u64| -> u64 {
        if tally.heads.contains(name) {
            max_facts
        } else {
            tally.facts.get(name).copied().unwrap_or(0) + 1
        }
    };
    let cost = tally
        .rules
        .iter()
        .chain(&tally.queries)
        .map(|q| {
            q.body
                .iter()
                .map(|(name, _)| candidates(name))
                .fold(1u64, u64::saturating_mul)
                .saturating_mul(1 + q.ops)
        })
        .fold(0u64, u64::saturating_add);
    if cost > COST_BUDGET {
        return Err(ShapeError::TooCostly(format!(
            "worst-case evaluation cost {cost} exceeds {COST_BUDGET}"
        )));
    }
    let authority = if tally.authority_rules {
        None
    } else {
        Some(authority_facts(&tally)?)
    };
    Ok(Shape {
        blocks: blocks.len(),
        authority,
        expiry: tally.expiries.iter().copied().min(),
        cost,
        narrowed: narrowings(&tally),
        confirms: confirms(&tally)?,
    })
}

/// The `narrow_tool($t)` / `narrow_resource($k, $p)` facts of attenuation blocks.
/// Display only: facts of other shapes are skipped, never an error.
fn narrowings(tally: &Tally) -> Vec<Narrowing> {
    let Ok(table) = SymbolTable::from(tally.symbols.clone()) else {
        return Vec::new();
    };
    let sym = |id: &u64| table.get_symbol(*id).map(str::to_string);
    let mut out: Vec<Narrowing> = Vec::new();
    for (block, name, terms) in &tally.holder_facts {
        let name = sym(name);
        let entry = |out: &mut Vec<Narrowing>| -> usize {
            match out.iter().position(|n| n.block == *block) {
                Some(i) => i,
                None => {
                    out.push(Narrowing {
                        block: *block,
                        ..Narrowing::default()
                    });
                    out.len() - 1
                }
            }
        };
        match (name.as_deref(), terms.as_slice()) {
            (Some("narrow_tool"), [Scalar::Str(t)]) => {
                if let Some(t) = sym(t) {
                    let i = entry(&mut out);
                    out[i].tools.push(t);
                }
            }
            (Some("narrow_resource"), [Scalar::Str(k), Scalar::Str(p)]) => {
                if let (Some(k), Some(p)) = (sym(k), sym(p)) {
                    let i = entry(&mut out);
                    out[i].resources.push((k, p));
                }
            }
            _ => {}
        }
    }
    out
}

/// The `confirm(TOOL)` facts of every block. One string term or the token is
/// malformed: a requirement that cannot be read must not be silently dropped.
fn confirms(tally: &Tally) -> Result<Vec<String>, ShapeError> {
    let table = SymbolTable::from(tally.symbols.clone())
        .map_err(|_| ShapeError::Malformed("symbol table overlaps the defaults"))?;
    let mut out = Vec::new();
    let holder = tally.holder_facts.iter().map(|(_, n, t)| (n, t));
    for (name, terms) in tally
        .authority_facts
        .iter()
        .map(|(n, t)| (n, t))
        .chain(holder)
    {
        if table.get_symbol(*name) != Some("confirm") {
            continue;
        }
        match terms.as_slice() {
            [Scalar::Str(id)] => match table.get_symbol(*id) {
                Some(t) => out.push(t.to_string()),
                None => return Err(ShapeError::Malformed("unknown symbol")),
            },
            _ => return Err(ShapeError::Malformed("confirm fact with unexpected terms")),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Resolves the authority block's facts. A known predicate with the right arity but
/// the wrong term types is malformed (Datalog queries would fail on it too).
fn authority_facts(tally: &Tally) -> Result<AuthorityFacts, ShapeError> {
    let table = SymbolTable::from(tally.symbols.clone())
        .map_err(|_| ShapeError::Malformed("symbol table overlaps the defaults"))?;
    let sym = |id: u64| -> Result<String, ShapeError> {
        table
            .get_symbol(id)
            .map(str::to_string)
            .ok_or(ShapeError::Malformed("unknown symbol"))
    };
    let wrong = ShapeError::Malformed("authority fact with unexpected term types");
    let mut out = AuthorityFacts::default();
    for (name, terms) in &tally.authority_facts {
        let name = sym(*name)?;
        let list = match name.as_str() {
            "tool" => &mut out.tools,
            "tool_wildcard" => &mut out.tool_wildcards,
            "issuer" => &mut out.issuers,
            "subject" => &mut out.subjects,
            "max_delegation_depth" => {
                if let [t] = terms.as_slice() {
                    match t {
                        Scalar::Int(i) => out.max_delegation_depths.push(*i),
                        _ => return Err(wrong),
                    }
                }
                continue;
            }
            "resource" | "reveal" => {
                if let [k, p] = terms.as_slice() {
                    let pair = match (k, p) {
                        (Scalar::Str(k), Scalar::Str(p)) => (sym(*k)?, sym(*p)?),
                        _ => return Err(wrong),
                    };
                    if name == "resource" {
                        out.resources.push(pair);
                    } else {
                        out.reveals.push(pair);
                    }
                }
                continue;
            }
            _ => continue,
        };
        if let [t] = terms.as_slice() {
            match t {
                Scalar::Str(id) => list.push(sym(*id)?),
                _ => return Err(wrong),
            }
        }
    }
    Ok(out)
}

fn read_block(block: &schema::Block, index: usize, tally: &mut Tally) -> Result<(), ShapeError> {
    let holder = index > 0;
    let time = SymbolTable::new().get("time").unwrap_or(5);
    for s in &block.symbols {
        if holder && s.len() > MAX_LITERAL_BYTES {
            return Err(ShapeError::Unsupported(format!(
                "a string longer than {MAX_LITERAL_BYTES} bytes in an attenuation block"
            )));
        }
        tally.symbols.push(s.clone());
    }
    for fact in &block.facts {
        let (name, terms) = read_predicate(&fact.predicate, holder)?;
        *tally.facts.entry(name).or_default() += 1;
        if holder {
            tally.holder_facts.push((index, name, terms));
        } else {
            tally.authority_facts.push((name, terms));
        }
        tally.facts_total += 1;
    }
    for rule in &block.rules {
        let (head, q) = read_rule(rule, holder)?;
        tally.heads.insert(head);
        tally.rules.push(q);
        tally.authority_rules |= !holder;
    }
    for c in &block.checks {
        // `kind` is optional in the schema: absent means `check if`.
        let reject = match c.kind.map(check::Kind::from_i32) {
            None => false,
            Some(Some(kind)) => match kind {
                check::Kind::One | check::Kind::All => false,
                check::Kind::Reject => true,
            },
            Some(None) => {
                return Err(ShapeError::Unsupported(format!(
                    "unknown check kind {}",
                    c.kind.unwrap_or_default()
                )))
            }
        };
        let first = tally.queries.len();
        for rule in &c.queries {
            let (_, q) = read_rule(rule, holder)?;
            tally.queries.push(q);
        }
        if let (false, Some([q])) = (reject, tally.queries.get(first..)) {
            tally.expiries.extend(q.expiry(time));
        }
    }
    Ok(())
}

/// A rule or check query: the head's name, the body and the expressions.
fn read_rule(rule: &schema::Rule, holder: bool) -> Result<(u64, Query), ShapeError> {
    let head = read_predicate(&rule.head, holder)?.0;
    let mut q = Query {
        body: Vec::with_capacity(rule.body.len()),
        expressions: Vec::with_capacity(rule.expressions.len()),
        ops: 0,
    };
    for p in &rule.body {
        q.body.push(read_predicate(p, holder)?);
    }
    for e in &rule.expressions {
        let mut kinds = Vec::with_capacity(e.ops.len());
        for op in &e.ops {
            kinds.push(op_kind(op)?);
            read_op(op, holder, &mut q.ops, 0)?;
        }
        q.expressions.push(kinds);
    }
    Ok((head, q))
}

/// A predicate's name and terms (holder blocks: literals vetted).
fn read_predicate(p: &schema::Predicate, holder: bool) -> Result<(u64, Vec<Scalar>), ShapeError> {
    let mut terms = Vec::with_capacity(p.terms.len());
    for t in &p.terms {
        terms.push(scalar(t)?);
        if holder {
            read_term(t, &mut 0, 0)?;
        }
    }
    Ok((p.name, terms))
}

/// A term without content is refused: Biscuit refuses it too, and a term type added
/// by a newer schema decodes that way.
fn scalar(t: &schema::Term) -> Result<Scalar, ShapeError> {
    use term::Content;
    Ok(match t.content.as_ref().ok_or(EMPTY_TERM)? {
        Content::Variable(v) => Scalar::Var(u64::from(*v)),
        Content::Integer(i) => Scalar::Int(*i),
        Content::String(s) => Scalar::Str(*s),
        Content::Date(d) => Scalar::Date(*d),
        Content::Bytes(_)
        | Content::Bool(_)
        | Content::Set(_)
        | Content::Null(_)
        | Content::Array(_)
        | Content::Map(_) => Scalar::Other,
    })
}

const EMPTY_TERM: ShapeError = ShapeError::Malformed("term without content");
const EMPTY_OP: ShapeError = ShapeError::Malformed("operation without content");

/// A top-level operation reduced to what the expiry detection needs.
fn op_kind(op: &schema::Op) -> Result<OpKind, ShapeError> {
    Ok(match op.content.as_ref().ok_or(EMPTY_OP)? {
        op::Content::Value(t) => OpKind::Value(scalar(t)?),
        op::Content::Binary(b) => OpKind::Binary(binary_kind(b)?),
        op::Content::Unary(_) | op::Content::Closure(_) => OpKind::Other,
    })
}

/// Counts an operation (closures: their nested operations too) and, in a holder's
/// block, refuses the operations whose cost is not bounded by their operands.
fn read_op(op: &schema::Op, holder: bool, ops: &mut u64, depth: u32) -> Result<(), ShapeError> {
    if depth > MAX_NESTING {
        return Err(ShapeError::Unsupported("expression nested too deep".into()));
    }
    *ops += 1;
    match op.content.as_ref().ok_or(EMPTY_OP)? {
        op::Content::Value(t) => {
            if holder {
                read_term(t, &mut 0, 0)?;
            }
        }
        op::Content::Unary(u) => {
            let kind = unary_kind(u)?;
            if let (true, Some(name)) = (holder, unary_refused(kind)) {
                return Err(unsupported(name));
            }
        }
        op::Content::Binary(b) => {
            let kind = binary_kind(b)?;
            if let (true, Some(name)) = (holder, binary_refused(kind)) {
                return Err(unsupported(name));
            }
        }
        op::Content::Closure(c) => {
            for inner in &c.ops {
                read_op(inner, holder, ops, depth + 1)?;
            }
        }
    }
    Ok(())
}

fn unsupported(what: &str) -> ShapeError {
    ShapeError::Unsupported(format!("{what} is not accepted in an attenuation block"))
}

/// Counts one collection element against [`MAX_LITERAL_ELEMENTS`].
fn one_more(elements: &mut usize) -> Result<(), ShapeError> {
    *elements += 1;
    if *elements > MAX_LITERAL_ELEMENTS {
        return Err(ShapeError::Unsupported(format!(
            "a literal with more than {MAX_LITERAL_ELEMENTS} elements in an attenuation block"
        )));
    }
    Ok(())
}

/// Term: counts collection elements (nested included) and bounds byte literals.
fn read_term(t: &schema::Term, elements: &mut usize, depth: u32) -> Result<(), ShapeError> {
    use term::Content;
    if depth > MAX_NESTING {
        return Err(ShapeError::Unsupported("literal nested too deep".into()));
    }
    match t.content.as_ref().ok_or(EMPTY_TERM)? {
        Content::Bytes(b) if b.len() > MAX_LITERAL_BYTES => {
            return Err(ShapeError::Unsupported(format!(
                "a byte string longer than {MAX_LITERAL_BYTES} bytes in an attenuation block"
            )));
        }
        Content::Set(schema::TermSet { set: items })
        | Content::Array(schema::Array { array: items }) => {
            for inner in items {
                one_more(elements)?;
                read_term(inner, elements, depth + 1)?;
            }
        }
        Content::Map(m) => {
            // Keys are integers or symbol ids: nothing to bound.
            for entry in &m.entries {
                one_more(elements)?;
                read_term(&entry.value, elements, depth + 1)?;
            }
        }
        Content::Variable(_)
        | Content::Integer(_)
        | Content::String(_)
        | Content::Date(_)
        | Content::Bytes(_)
        | Content::Bool(_)
        | Content::Null(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use biscuit_auth::{Biscuit, KeyPair};

    fn token(authority: &str) -> Vec<u8> {
        Biscuit::builder()
            .code(authority)
            .expect("datalog")
            .build(&KeyPair::new())
            .expect("build")
            .to_vec()
            .expect("serialize")
    }

    /// Re-encodes `bytes` after `edit` changed its authority block (the signature no
    /// longer matches; the shape check reads no signature).
    fn edited(bytes: &[u8], edit: impl FnOnce(&mut schema::Block)) -> Vec<u8> {
        let mut t = schema::Biscuit::decode(bytes).expect("decode");
        let mut block = schema::Block::decode(t.authority.block.as_slice()).expect("block");
        edit(&mut block);
        t.authority.block = block.encode_to_vec();
        t.encode_to_vec()
    }

    fn first_op(block: &mut schema::Block) -> &mut schema::Op {
        &mut block.checks[0].queries[0].expressions[0].ops[2]
    }

    #[test]
    fn truncated_or_empty_input_is_malformed() {
        assert!(check(&[], 1000).is_err());
        assert!(check(&[0x12, 0x00], 1000).is_err());
        // Length-delimited field running past the end.
        assert!(check(&[0x12, 0x05, 0x00], 1000).is_err());
        let t = token(r#"tool("a"); check if time($t), $t < 2030-01-01T00:00:00Z"#);
        assert!(check(&t, 1000).is_ok());
        assert!(check(&t[..t.len() - 1], 1000).is_err());
    }

    #[test]
    fn reads_authority_facts_and_expiry() {
        let t = token(
            r#"tool("kv.read"); subject("a"); max_delegation_depth(2);
               resource("kv", "app/*"); check if time($t), $t < 2030-01-01T00:00:00Z"#,
        );
        let shape = check(&t, 1000).expect("shape");
        assert_eq!(shape.blocks, 1);
        assert_eq!(shape.expiry, Some(1_893_456_000));
        let a = shape.authority.expect("facts only");
        assert_eq!(a.tools, ["kv.read"]);
        assert_eq!(a.subjects, ["a"]);
        assert_eq!(a.max_delegation_depths, [2]);
        assert_eq!(a.resources, [("kv".to_string(), "app/*".to_string())]);
    }

    #[test]
    fn unknown_operation_and_check_kinds_are_refused_in_every_block() {
        let t = token(r#"tool("a"); check if time($t), $t < 2030-01-01T00:00:00Z"#);
        assert!(check(&t, 1000).is_ok());
        let unknown_binary = edited(&t, |b| {
            if let Some(op::Content::Binary(bin)) = first_op(b).content.as_mut() {
                bin.kind = 1000;
            } else {
                panic!("expected the `<` of the TTL check");
            }
        });
        assert!(matches!(
            check(&unknown_binary, 1000),
            Err(ShapeError::Unsupported(m)) if m.contains("unknown binary operation")
        ));
        let unknown_unary = edited(&t, |b| {
            first_op(b).content = Some(op::Content::Unary(schema::OpUnary {
                kind: 99,
                ffi_name: None,
            }));
        });
        assert!(matches!(
            check(&unknown_unary, 1000),
            Err(ShapeError::Unsupported(m)) if m.contains("unknown unary operation")
        ));
        let unknown_check = edited(&t, |b| b.checks[0].kind = Some(7));
        assert!(matches!(
            check(&unknown_check, 1000),
            Err(ShapeError::Unsupported(m)) if m.contains("unknown check kind")
        ));
        // An operation or term whose content is a type this schema does not know
        // decodes as empty: refused.
        let empty_op = edited(&t, |b| first_op(b).content = None);
        assert!(matches!(
            check(&empty_op, 1000),
            Err(ShapeError::Malformed(_))
        ));
        let empty_term = edited(&t, |b| b.facts[0].predicate.terms[0].content = None);
        assert!(matches!(
            check(&empty_term, 1000),
            Err(ShapeError::Malformed(_))
        ));
    }

    #[test]
    fn every_known_kind_is_classified() {
        // Walk every value the schema's enums can take: none may be left out.
        let mut refused = 0;
        for k in 0..64 {
            if let Some(kind) = op_binary::Kind::from_i32(k) {
                refused += usize::from(binary_refused(kind).is_some());
            }
            if let Some(kind) = op_unary::Kind::from_i32(k) {
                refused += usize::from(unary_refused(kind).is_some());
            }
        }
        assert_eq!(refused, 8);
    }
}
