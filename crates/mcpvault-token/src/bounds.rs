//! Static cost bound, checked before any Datalog runs.
//!
//! Biscuit's run limits (facts, iterations, time) are only checked *between* rule
//! iterations and between check queries. One rule such as `x($a, $b) <- f($a), f($b)`
//! over a few thousand facts, or one check query joining three predicates, does all
//! its work inside a single step: the limits fire only after the damage (seconds of
//! CPU, gigabytes of memory). Attenuation needs no key, so any holder of any valid
//! token could send such a block. This module walks the token's protobuf (no Datalog,
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
//! Anything the walker does not understand is rejected: it fails closed.
//!
//! The same walk reads what the verifier needs from the authority block (tools,
//! issuer, subject, depth cap, resources) and the earliest TTL, so a first sight
//! needs one Datalog run (the decision), not one per query.

use std::collections::{HashMap, HashSet};

use biscuit_auth::datalog::SymbolTable;

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
/// requested_resource, depth), with room to spare.
const VERIFIER_FACTS: u64 = 8;

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

// Binary op kinds (schema.proto, OpBinary.Kind) refused in holder blocks.
const OP_REGEX: u64 = 8;
const OP_ADD: u64 = 9;
const OP_INTERSECTION: u64 = 15;
const OP_UNION: u64 = 16;
const OP_ALL: u64 = 25;
const OP_ANY: u64 = 26;
const OP_FFI: u64 = 28;
const UNARY_FFI: u64 = 4;

fn binary_name(kind: u64) -> Option<&'static str> {
    Some(match kind {
        OP_REGEX => "regex (.matches)",
        OP_ADD => "addition / string concatenation",
        OP_INTERSECTION => "set intersection",
        OP_UNION => "set union",
        OP_ALL => ".all()",
        OP_ANY => ".any()",
        OP_FFI => "foreign function",
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

const BAD: ShapeError = ShapeError::Malformed("unreadable protobuf");

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, ShapeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or(BAD)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(BAD)
    }

    fn next(&mut self) -> Result<Option<(u64, Wire<'a>)>, ShapeError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.skip(8)?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| BAD)?;
                let start = self.pos;
                self.skip(len)?;
                Wire::Bytes(&self.buf[start..start + len])
            }
            5 => {
                self.skip(4)?;
                Wire::Fixed
            }
            _ => return Err(BAD), // groups are not used by Biscuit
        };
        Ok(Some((field, wire)))
    }

    fn skip(&mut self, n: usize) -> Result<(), ShapeError> {
        let end = self.pos.checked_add(n).ok_or(BAD)?;
        if end > self.buf.len() {
            return Err(BAD);
        }
        self.pos = end;
        Ok(())
    }
}

/// Calls `f` with every length-delimited field `want` of `msg`.
fn each<'a>(
    msg: &'a [u8],
    want: u64,
    mut f: impl FnMut(&'a [u8]) -> Result<(), ShapeError>,
) -> Result<(), ShapeError> {
    let mut r = Reader::new(msg);
    while let Some((field, wire)) = r.next()? {
        if field == want {
            match wire {
                Wire::Bytes(b) => f(b)?,
                _ => return Err(BAD),
            }
        }
    }
    Ok(())
}

fn varint_field(msg: &[u8], want: u64) -> Result<Option<u64>, ShapeError> {
    let mut r = Reader::new(msg);
    let mut out = None;
    while let Some((field, wire)) = r.next()? {
        if field == want {
            match wire {
                Wire::Varint(v) => out = Some(v),
                _ => return Err(BAD),
            }
        }
    }
    Ok(out)
}

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
    Binary(u64),
    Other,
}

const OP_LESS_THAN: u64 = 0;

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
                    [OpKind::Value(Scalar::Var(w)), OpKind::Value(Scalar::Date(d)), OpKind::Binary(OP_LESS_THAN)],
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

/// The blocks (authority first) of a serialized token, and whether any carries an
/// external (third-party) signature.
fn blocks(token: &[u8]) -> Result<(Vec<&[u8]>, bool), ShapeError> {
    let mut out = Vec::new();
    let mut third_party = false;
    let mut authority = None;
    let mut rest = Vec::new();
    let mut r = Reader::new(token);
    while let Some((field, wire)) = r.next()? {
        match (field, wire) {
            (2, Wire::Bytes(b)) => authority = Some(b),
            (3, Wire::Bytes(b)) => rest.push(b),
            (2 | 3, _) => return Err(BAD),
            _ => {}
        }
    }
    for signed in authority.into_iter().chain(rest) {
        let mut block = None;
        let mut r = Reader::new(signed);
        while let Some((field, wire)) = r.next()? {
            match (field, wire) {
                (1, Wire::Bytes(b)) => block = Some(b),
                (4, _) => third_party = true,
                _ => {}
            }
        }
        out.push(block.ok_or(ShapeError::Malformed("block without content"))?);
    }
    if out.is_empty() {
        return Err(ShapeError::Malformed("no authority block"));
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
    })
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
            "resource" => {
                if let [k, p] = terms.as_slice() {
                    match (k, p) {
                        (Scalar::Str(k), Scalar::Str(p)) => {
                            out.resources.push((sym(*k)?, sym(*p)?))
                        }
                        _ => return Err(wrong),
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

fn read_block(block: &[u8], index: usize, tally: &mut Tally) -> Result<(), ShapeError> {
    let holder = index > 0;
    let time = SymbolTable::new().get("time").unwrap_or(5);
    let mut r = Reader::new(block);
    while let Some((field, wire)) = r.next()? {
        let Wire::Bytes(b) = wire else {
            continue; // version
        };
        match field {
            1 => {
                if holder && b.len() > MAX_LITERAL_BYTES {
                    return Err(ShapeError::Unsupported(format!(
                        "a string longer than {MAX_LITERAL_BYTES} bytes in an attenuation block"
                    )));
                }
                let s = std::str::from_utf8(b).map_err(|_| BAD)?;
                tally.symbols.push(s.to_string());
            }
            4 => {
                // Fact { predicate = 1 }
                let mut pred = None;
                each(b, 1, |p| {
                    pred = Some(read_predicate(p, holder)?);
                    Ok(())
                })?;
                let (name, terms) = pred.ok_or(BAD)?;
                *tally.facts.entry(name).or_default() += 1;
                if !holder {
                    tally.authority_facts.push((name, terms));
                }
                tally.facts_total += 1;
            }
            5 => {
                let (head, q) = read_rule(b, holder)?;
                tally.heads.insert(head.ok_or(BAD)?);
                tally.rules.push(q);
                tally.authority_rules |= !holder;
            }
            6 => {
                // Check { queries = 1 (Rule), kind = 2 (One, All, Reject) }
                let first = tally.queries.len();
                each(b, 1, |rule| {
                    let (_, q) = read_rule(rule, holder)?;
                    tally.queries.push(q);
                    Ok(())
                })?;
                let reject = varint_field(b, 2)? == Some(2);
                if let (false, [q]) = (reject, &tally.queries[first..]) {
                    tally.expiries.extend(q.expiry(time));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Rule { head = 1, body = 2 (Predicate), expressions = 3, scope = 4 }.
fn read_rule(rule: &[u8], holder: bool) -> Result<(Option<u64>, Query), ShapeError> {
    let mut head = None;
    let mut q = Query {
        body: Vec::new(),
        expressions: Vec::new(),
        ops: 0,
    };
    let mut r = Reader::new(rule);
    while let Some((field, wire)) = r.next()? {
        match (field, wire) {
            (1, Wire::Bytes(p)) => head = Some(read_predicate(p, holder)?.0),
            (2, Wire::Bytes(p)) => q.body.push(read_predicate(p, holder)?),
            (3, Wire::Bytes(e)) => {
                // Expression { ops = 1 }
                let mut kinds = Vec::new();
                each(e, 1, |op| {
                    kinds.push(op_kind(op)?);
                    read_op(op, holder, &mut q.ops, 0)
                })?;
                q.expressions.push(kinds);
            }
            (1..=3, _) => return Err(BAD),
            _ => {}
        }
    }
    Ok((head, q))
}

/// Predicate { name = 1, terms = 2 }: the name and the terms.
fn read_predicate(p: &[u8], holder: bool) -> Result<(u64, Vec<Scalar>), ShapeError> {
    let name = varint_field(p, 1)?.ok_or(BAD)?;
    let mut terms = Vec::new();
    each(p, 2, |t| {
        terms.push(scalar(t)?);
        if holder {
            read_term(t, &mut 0, 0)?;
        }
        Ok(())
    })?;
    Ok((name, terms))
}

/// Term { variable = 1, integer = 2, string = 3, date = 4, ... }. Integers are
/// two's complement varints (proto `int64`).
fn scalar(t: &[u8]) -> Result<Scalar, ShapeError> {
    let mut r = Reader::new(t);
    let mut out = Scalar::Other;
    while let Some((field, wire)) = r.next()? {
        out = match (field, wire) {
            (1, Wire::Varint(v)) => Scalar::Var(v),
            (2, Wire::Varint(v)) => Scalar::Int(v as i64),
            (3, Wire::Varint(v)) => Scalar::Str(v),
            (4, Wire::Varint(v)) => Scalar::Date(v),
            _ => Scalar::Other,
        };
    }
    Ok(out)
}

/// Op { value = 1 (Term), unary = 2, Binary = 3 (OpBinary { kind = 1 }), closure = 4 }.
fn op_kind(op: &[u8]) -> Result<OpKind, ShapeError> {
    let mut r = Reader::new(op);
    let mut out = OpKind::Other;
    while let Some((field, wire)) = r.next()? {
        out = match (field, wire) {
            (1, Wire::Bytes(t)) => OpKind::Value(scalar(t)?),
            (3, Wire::Bytes(b)) => varint_field(b, 1)?.map_or(OpKind::Other, OpKind::Binary),
            _ => OpKind::Other,
        };
    }
    Ok(out)
}

/// Op { value = 1 (Term), unary = 2, Binary = 3, closure = 4 }.
fn read_op(op: &[u8], holder: bool, ops: &mut u64, depth: u32) -> Result<(), ShapeError> {
    if depth > MAX_NESTING {
        return Err(ShapeError::Unsupported("expression nested too deep".into()));
    }
    *ops += 1;
    let mut r = Reader::new(op);
    while let Some((field, wire)) = r.next()? {
        let Wire::Bytes(b) = wire else {
            return Err(BAD);
        };
        match field {
            1 if holder => read_term(b, &mut 0, 0)?,
            2 if holder && varint_field(b, 1)? == Some(UNARY_FFI) => {
                return Err(unsupported("foreign function"));
            }
            3 if holder => {
                if let Some(name) = varint_field(b, 1)?.and_then(binary_name) {
                    return Err(unsupported(name));
                }
            }
            // OpClosure { params = 1, ops = 2 }: count (and vet) the nested ops.
            4 => each(b, 2, |inner| read_op(inner, holder, ops, depth + 1))?,
            _ => {}
        }
    }
    Ok(())
}

fn unsupported(what: &str) -> ShapeError {
    ShapeError::Unsupported(format!("{what} is not accepted in an attenuation block"))
}

/// Term: counts collection elements (nested included) and bounds byte literals.
fn read_term(t: &[u8], elements: &mut usize, depth: u32) -> Result<(), ShapeError> {
    if depth > MAX_NESTING {
        return Err(ShapeError::Unsupported("literal nested too deep".into()));
    }
    let mut r = Reader::new(t);
    while let Some((field, wire)) = r.next()? {
        match (field, wire) {
            (5, Wire::Bytes(b)) if b.len() > MAX_LITERAL_BYTES => {
                return Err(ShapeError::Unsupported(format!(
                    "a byte string longer than {MAX_LITERAL_BYTES} bytes in an attenuation block"
                )));
            }
            // TermSet / Array { repeated Term = 1 }
            (7 | 9, Wire::Bytes(b)) => each(b, 1, |inner| {
                *elements += 1;
                if *elements > MAX_LITERAL_ELEMENTS {
                    return Err(ShapeError::Unsupported(format!(
                        "a literal with more than {MAX_LITERAL_ELEMENTS} elements in an \
                         attenuation block"
                    )));
                }
                read_term(inner, elements, depth + 1)
            })?,
            // Map { entries = 1 (MapEntry { key = 1, value = 2 (Term) }) }
            (10, Wire::Bytes(b)) => each(b, 1, |entry| {
                *elements += 1;
                if *elements > MAX_LITERAL_ELEMENTS {
                    return Err(ShapeError::Unsupported(format!(
                        "a literal with more than {MAX_LITERAL_ELEMENTS} elements in an \
                         attenuation block"
                    )));
                }
                each(entry, 2, |v| read_term(v, elements, depth + 1))
            })?,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_and_truncation() {
        assert_eq!(Reader::new(&[0x96, 0x01]).varint().unwrap(), 150);
        assert!(Reader::new(&[0x96]).varint().is_err());
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        // Length-delimited field running past the end.
        assert!(Reader::new(&[0x12, 0x05, 0x00]).next().is_err());
        assert!(check(&[], 1000).is_err());
        assert!(check(&[0x12, 0x00], 1000).is_err());
    }
}
