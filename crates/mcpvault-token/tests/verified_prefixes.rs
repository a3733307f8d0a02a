//! The verified-prefix cache (vendored biscuit-auth, `verify_with_prefixes`) must
//! reject every token plain `verify` rejects, however warm the cache. Each test
//! compares the two on honest tokens, on every single-field mutation of them, and on
//! tokens spliced together from relatives whose prefixes are cached.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use biscuit_auth::builder::{Algorithm, BlockBuilder};
use biscuit_auth::format::schema;
use biscuit_auth::format::VerifiedPrefixes;
use biscuit_auth::{Biscuit, KeyPair, PublicKey, UnverifiedBiscuit};
use proptest::prelude::*;
use prost::Message;

/// A cache that keeps everything and counts its hits.
#[derive(Default)]
struct Cache {
    seen: RefCell<HashSet<[u8; 32]>>,
    hits: Cell<usize>,
}

impl VerifiedPrefixes for Cache {
    fn contains(&self, digest: &[u8; 32]) -> bool {
        let hit = self.seen.borrow().contains(digest);
        self.hits.set(self.hits.get() + usize::from(hit));
        hit
    }
    fn insert(&self, digests: &[[u8; 32]]) {
        self.seen.borrow_mut().extend(digests.iter().copied());
    }
}

fn plain(bytes: &[u8], root: PublicKey) -> bool {
    UnverifiedBiscuit::from(bytes)
        .and_then(|u| u.verify(root).map_err(Into::into))
        .is_ok()
}

fn cached(bytes: &[u8], root: PublicKey, cache: &Cache) -> bool {
    UnverifiedBiscuit::from(bytes)
        .and_then(|u| u.verify_with_prefixes(root, cache).map_err(Into::into))
        .is_ok()
}

fn block(i: usize) -> BlockBuilder {
    BlockBuilder::new()
        .code(format!(
            "check if resource($r), $r.starts_with(\"app/{i}\")"
        ))
        .expect("block code")
}

fn append(t: &Biscuit, i: usize, alg: Algorithm) -> Biscuit {
    t.append_with_keypair(&KeyPair::new_with_algorithm(alg), block(i))
        .expect("append")
}

/// A family of tokens under one root: a parent of depth 2, two children, a
/// grandchild, a sealed child, a child with a third-party block, and P-256 blocks.
struct Family {
    root: KeyPair,
    tokens: Vec<Vec<u8>>,
}

fn family(root_alg: Algorithm) -> Family {
    let root = KeyPair::new_with_algorithm(root_alg);
    let authority = Biscuit::builder()
        .code("right(\"app\"); check if time($t), $t < 2100-01-01T00:00:00Z")
        .expect("authority code")
        .build(&root)
        .expect("mint");
    let parent = append(&append(&authority, 1, Algorithm::Ed25519), 2, root_alg);
    let child_a = append(&parent, 3, Algorithm::Ed25519);
    let child_b = append(&parent, 4, Algorithm::Secp256r1);
    let grandchild = append(&child_a, 5, Algorithm::Ed25519);
    let sealed = child_b.seal().expect("seal");
    let third = KeyPair::new();
    let request = parent.third_party_request().expect("request");
    let external = request
        .create_block(&third.private(), block(6))
        .expect("third-party block");
    let with_third = parent
        .append_third_party(third.public(), external)
        .expect("append third party");
    let tokens = [
        authority, parent, child_a, child_b, grandchild, sealed, with_third,
    ]
    .iter()
    .map(|t| t.to_vec().expect("serialize"))
    .collect();
    Family { root, tokens }
}

/// Every field the signature chain reads, each changed alone.
fn mutations(bytes: &[u8]) -> Vec<Vec<u8>> {
    let t = schema::Biscuit::decode(bytes).expect("decode");
    let n = 1 + t.blocks.len();
    let mut out = Vec::new();
    let mut push = |m: schema::Biscuit| out.push(m.encode_to_vec());
    fn at(t: &mut schema::Biscuit, i: usize) -> &mut schema::SignedBlock {
        if i == 0 {
            &mut t.authority
        } else {
            &mut t.blocks[i - 1]
        }
    }
    for i in 0..n {
        for field in 0..4 {
            let mut m = t.clone();
            let b = at(&mut m, i);
            let target = match field {
                0 => &mut b.block,
                1 => &mut b.signature,
                2 => &mut b.next_key.key,
                _ => match &mut b.external_signature {
                    Some(e) => &mut e.signature,
                    None => continue,
                },
            };
            let mid = target.len() / 2;
            if let Some(byte) = target.get_mut(mid) {
                *byte ^= 0x01;
            }
            push(m);
        }
        let mut m = t.clone();
        at(&mut m, i).version = Some(at(&mut m, i).version.unwrap_or(0) + 1);
        push(m);
    }
    // Block order, a dropped block, a duplicated one.
    if t.blocks.len() >= 2 {
        let mut m = t.clone();
        m.blocks.swap(0, 1);
        push(m);
    }
    if !t.blocks.is_empty() {
        let mut m = t.clone();
        m.blocks.pop();
        push(m);
        let mut m = t.clone();
        let last = m.blocks[m.blocks.len() - 1].clone();
        m.blocks.push(last);
        push(m);
    }
    // The proof: another key, or a flipped seal.
    let mut m = t.clone();
    m.proof.content = match m.proof.content.take() {
        Some(schema::proof::Content::NextSecret(_)) => Some(schema::proof::Content::NextSecret(
            KeyPair::new().private().to_bytes().to_vec(),
        )),
        Some(schema::proof::Content::FinalSignature(mut s)) => {
            s[0] ^= 0x01;
            Some(schema::proof::Content::FinalSignature(s))
        }
        None => None,
    };
    push(m);
    out
}

/// Blocks of one token, proof of another: every pairing within the family.
fn splices(tokens: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let decoded: Vec<schema::Biscuit> = tokens
        .iter()
        .map(|b| schema::Biscuit::decode(b.as_slice()).expect("decode"))
        .collect();
    let mut out = Vec::new();
    for a in &decoded {
        for b in &decoded {
            let mut m = a.clone();
            m.proof = b.proof.clone();
            out.push(m.encode_to_vec());
            // b's last block grafted onto a's chain, with b's proof.
            if let Some(last) = b.blocks.last() {
                m.blocks.push(last.clone());
                out.push(m.encode_to_vec());
            }
        }
    }
    out
}

fn warm(f: &Family, cache: &Cache) {
    for t in &f.tokens {
        assert!(
            cached(t, f.root.public(), cache),
            "an honest token verifies"
        );
    }
}

#[test]
fn honest_tokens_verify_both_ways_and_relatives_hit_the_cache() {
    for alg in [Algorithm::Ed25519, Algorithm::Secp256r1] {
        let f = family(alg);
        let cache = Cache::default();
        warm(&f, &cache);
        assert!(cache.hits.get() > 0, "children found their parent's prefix");
        for t in &f.tokens {
            assert!(plain(t, f.root.public()));
            assert!(cached(t, f.root.public(), &cache));
        }
    }
}

#[test]
fn every_mutation_and_splice_is_judged_as_plain_verify_judges_it() {
    for alg in [Algorithm::Ed25519, Algorithm::Secp256r1] {
        let f = family(alg);
        let cache = Cache::default();
        warm(&f, &cache);
        let before = cache.hits.get();
        let mut candidates: Vec<Vec<u8>> = f.tokens.iter().flat_map(|t| mutations(t)).collect();
        candidates.extend(splices(&f.tokens));
        let mut rejected = 0;
        for m in &candidates {
            let expected = plain(m, f.root.public());
            assert_eq!(
                cached(m, f.root.public(), &cache),
                expected,
                "the cache changed a verdict"
            );
            rejected += usize::from(!expected);
        }
        // The comparison is only worth something if the cache was consulted with
        // hits on tampered tokens, and if most candidates are forgeries.
        assert!(cache.hits.get() > before + candidates.len() / 4);
        assert!(
            rejected > candidates.len() / 2,
            "{rejected}/{}",
            candidates.len()
        );
    }
}

#[test]
fn a_prefix_verified_under_one_root_counts_for_nothing_under_another() {
    let f = family(Algorithm::Ed25519);
    let cache = Cache::default();
    warm(&f, &cache);
    let other = KeyPair::new();
    for t in &f.tokens {
        assert!(!cached(t, other.public(), &cache));
    }
}

/// The cache's contract matters: one that vouches for everything lets a forged
/// chain through, while the proof is still checked. This is what the honest
/// cache's digests guard (and shows the skip path is really taken).
#[test]
fn a_cache_that_lies_is_believed_for_signatures_but_not_for_the_proof() {
    struct Liar;
    impl VerifiedPrefixes for Liar {
        fn contains(&self, _: &[u8; 32]) -> bool {
            true
        }
        fn insert(&self, _: &[[u8; 32]]) {}
    }
    let f = family(Algorithm::Ed25519);
    let mut forged = schema::Biscuit::decode(f.tokens[2].as_slice()).expect("decode");
    forged.authority.signature[0] ^= 0x01;
    let forged = forged.encode_to_vec();
    assert!(!plain(&forged, f.root.public()));
    let lied_to = UnverifiedBiscuit::from(&forged)
        .expect("parse")
        .verify_with_prefixes(f.root.public(), &Liar);
    assert!(lied_to.is_ok());

    let mut wrong_proof = schema::Biscuit::decode(f.tokens[2].as_slice()).expect("decode");
    wrong_proof.proof.content = Some(schema::proof::Content::NextSecret(
        KeyPair::new().private().to_bytes().to_vec(),
    ));
    let lied_to = UnverifiedBiscuit::from(wrong_proof.encode_to_vec())
        .expect("parse")
        .verify_with_prefixes(f.root.public(), &Liar);
    assert!(lied_to.is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random byte flips anywhere in a family member, judged with a warm cache.
    #[test]
    fn random_flips_are_judged_as_plain_verify_judges_them(
        which in 0usize..7,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        thread_local! {
            static FAMILY: (Family, Cache) = {
                let f = family(Algorithm::Ed25519);
                let cache = Cache::default();
                warm(&f, &cache);
                (f, cache)
            };
        }
        FAMILY.with(|(f, cache)| {
            let mut bytes = f.tokens[which].clone();
            for (at, x) in &flips {
                let i = at.index(bytes.len());
                bytes[i] ^= x;
            }
            prop_assert_eq!(cached(&bytes, f.root.public(), cache), plain(&bytes, f.root.public()));
            Ok(())
        })?;
    }
}

/// Through the verifier: once a parent is seen, its honest child is admitted and a
/// child with a forged new block is refused as a bad signature.
#[test]
fn the_verifier_admits_a_seen_parents_child_and_refuses_a_forged_one() {
    use mcpvault_token::{
        attenuate, decode_token, encode_token, generate_keypair, mint, parse_public_keys,
        parse_tools, AttenuateSpec, Denial, MintSpec, Request, RevocationSet, Verifier,
        VerifierConfig,
    };
    let k = generate_keypair();
    let roots = parse_public_keys(&k.public_key).expect("root");
    let spec = MintSpec {
        tools: Some(parse_tools("kv.*").expect("tools")),
        ..MintSpec::default()
    };
    let parent = mint(&k, &spec).expect("mint");
    let narrow = AttenuateSpec {
        tools: Some(parse_tools("kv.read").expect("tools")),
        ..AttenuateSpec::default()
    };
    let child = attenuate(&parent, None, &narrow).expect("attenuate");
    let mut forged =
        schema::Biscuit::decode(decode_token(&child).expect("b64").as_slice()).expect("decode");
    let last = forged.blocks.len() - 1;
    forged.blocks[last].signature[5] ^= 0x20;
    let forged = encode_token(&forged.encode_to_vec());

    let v = Verifier::new(roots, VerifierConfig::default()).expect("verifier");
    let req = Request {
        tool: "kv.read",
        resource: None,
        subject: None,
        now: std::time::SystemTime::now(),
    };
    let none = RevocationSet::empty();
    assert!(v.authorize(&parent, &req, &none).is_ok());
    assert_eq!(v.authorize(&forged, &req, &none), Err(Denial::BadSignature));
    assert!(v.authorize(&child, &req, &none).is_ok());
}
