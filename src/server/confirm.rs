//! Human confirmation for the tools a token marks `confirm` (`mint --confirm`): the
//! user is asked through MCP elicitation (form mode, accept / decline) and the call
//! reaches its backend only on accept. The pipeline asks here after authorization and
//! before the audit intent; a refusal goes through its refusal path like any denial.
//!
//! Two protocol generations, two ways to ask:
//! - sessions (2025-11-25 and earlier): an `elicitation/create` request to the client,
//!   answered within `MCPVAULT_CONFIRM_TIMEOUT`;
//! - stateless (2026-07-28): the first call returns an input-required result carrying
//!   the question and a request state sealed here (HMAC-SHA256, rmcp's
//!   `RequestStateCodec`, with a key drawn at start), bound to the token (a hash), the
//!   tool and the arguments (a hash), expiring after the timeout and holding a
//!   single-use nonce; the client's retry brings the state and the answer back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rmcp::model::{
    ClientCapabilities, ElicitRequest, ElicitRequestParams, ElicitationSchema, InputRequest,
    InputRequiredResult, InputResponses, RequestStateCodec, RequestStateError, SealOptions,
    ServerRequest,
};
use rmcp::service::{PeerRequestOptions, ServiceError};
use rmcp::{Peer, RoleServer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::Denial;

/// The key of the one input request in an input-required result.
const INPUT_KEY: &str = "mcpvault_confirm";

/// How the transport can reach the user for this call.
pub enum Ask {
    /// The client declared no elicitation capability.
    Unsupported,
    /// A session (2025-11-25 and earlier): ask now with `elicitation/create`.
    Session(Peer<RoleServer>),
    /// 2026-07-28: no server-to-client requests. The first call gets an
    /// input-required result; the retry carries the sealed state and the answer.
    Stateless {
        state: Option<String>,
        responses: Option<InputResponses>,
        /// Hash of the call's canonical arguments: what the state is bound to.
        args: [u8; 32],
    },
    /// The call reaches no backend (prompts/get renders text): nothing to confirm.
    NoBackend,
}

impl Ask {
    /// What a request can do, from the protocol version it speaks and the
    /// capabilities its client declared (per request on 2026-07-28, at initialize on
    /// sessions).
    pub fn of(
        stateless: bool,
        capabilities: Option<&ClientCapabilities>,
        peer: &Peer<RoleServer>,
        state: Option<String>,
        responses: Option<InputResponses>,
        args: &Map<String, Value>,
    ) -> Ask {
        // A client that declares elicitation with neither mode supports form mode
        // (the spec's backward compatibility); one that declares only URL mode does not.
        let form = capabilities
            .and_then(|c| c.elicitation.as_ref())
            .is_some_and(|e| e.form.is_some() || e.url.is_none());
        if !form {
            Ask::Unsupported
        } else if stateless {
            Ask::Stateless {
                state,
                responses,
                args: args_digest(args),
            }
        } else {
            Ask::Session(peer.clone())
        }
    }
}

/// What the user is asked about: never argument values (a `kv.write` carries
/// secrets), only the tool and the resource its scope names.
pub struct Question<'a> {
    pub tool: &'a str,
    pub resource: Option<String>,
    /// The call's token: bound into a sealed state as a hash, never stored.
    pub token: &'a str,
}

/// Where a confirmation stands.
pub enum Confirmed {
    Yes,
    No(Denial),
    /// Stateless: return this input-required result; the retry decides.
    Pending(Box<InputRequiredResult>),
}

/// The sealed payload: only a nonce (everything else is bound as associated data).
#[derive(Serialize, Deserialize)]
struct Sealed {
    n: String,
}

pub struct Confirmer {
    codec: RequestStateCodec,
    timeout: Duration,
    /// Nonces already redeemed, kept until their state would have expired anyway.
    used: Mutex<HashMap<String, Instant>>,
}

impl Confirmer {
    pub fn new(timeout: Duration) -> Result<Self, String> {
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::getrandom(key.as_mut())
            .map_err(|e| format!("confirmation key: no randomness: {e}"))?;
        let codec = RequestStateCodec::try_new(key.to_vec())
            .map_err(|e| format!("confirmation key: {e}"))?;
        Ok(Confirmer {
            codec,
            timeout,
            used: Mutex::new(HashMap::new()),
        })
    }

    /// Asks (or checks the answer to) the question for this call.
    pub async fn confirm(&self, ask: &Ask, q: &Question<'_>) -> Confirmed {
        match ask {
            Ask::NoBackend => Confirmed::Yes,
            Ask::Unsupported => Confirmed::No(Denial::ConfirmUnsupported),
            Ask::Session(peer) => self.ask_session(peer, q).await,
            Ask::Stateless {
                state: None, args, ..
            } => self.pending(q, args),
            Ask::Stateless {
                state: Some(state),
                responses,
                args,
            } => self.redeem(state, responses.as_ref(), q, args),
        }
    }

    async fn ask_session(&self, peer: &Peer<RoleServer>, q: &Question<'_>) -> Confirmed {
        let request = ServerRequest::ElicitRequest(ElicitRequest::new(params(q)));
        let mut options = PeerRequestOptions::no_options();
        options.timeout = Some(self.timeout);
        let sent = match peer.send_request_with_option(request, options).await {
            Ok(handle) => handle.await_response().await,
            Err(e) => Err(e),
        };
        match sent {
            // Read as JSON, not through the typed result: an accept without content
            // may not come back as `ClientResult::ElicitResult`.
            Ok(result) => match serde_json::to_value(&result) {
                Ok(v) => answer(Some(&v)),
                Err(_) => Confirmed::No(Denial::ConfirmRejected("unreadable answer".into())),
            },
            Err(ServiceError::Timeout { .. }) => Confirmed::No(Denial::ConfirmTimedOut),
            Err(ServiceError::McpError(_)) => Confirmed::No(Denial::ConfirmRejected(
                "the client answered the question with an error".into(),
            )),
            Err(_) => Confirmed::No(Denial::ConfirmRejected(
                "the question could not be delivered".into(),
            )),
        }
    }

    fn pending(&self, q: &Question<'_>, args: &[u8; 32]) -> Confirmed {
        let mut nonce = [0u8; 16];
        if getrandom::getrandom(&mut nonce).is_err() {
            return Confirmed::No(Denial::ConfirmRejected("no randomness for a nonce".into()));
        }
        let bound = binding(q, args);
        let sealed = self.codec.seal_json_with(
            &Sealed {
                n: hex::encode(nonce),
            },
            &SealOptions::new().associated_data(&bound).ttl(self.timeout),
        );
        let state = match sealed {
            Ok(s) => s,
            Err(_) => return Confirmed::No(Denial::ConfirmRejected("state not sealed".into())),
        };
        let request = InputRequest::Elicitation(ElicitRequest::new(params(q)));
        Confirmed::Pending(Box::new(InputRequiredResult::new(
            Some(BTreeMap::from([(INPUT_KEY.to_string(), request)])),
            Some(state),
        )))
    }

    fn redeem(
        &self,
        state: &str,
        responses: Option<&InputResponses>,
        q: &Question<'_>,
        args: &[u8; 32],
    ) -> Confirmed {
        let bound = binding(q, args);
        let sealed: Sealed = match self.codec.open_json_with(state, &bound) {
            Ok(s) => s,
            Err(RequestStateError::Expired) => return Confirmed::No(Denial::ConfirmTimedOut),
            Err(_) => {
                return Confirmed::No(Denial::ConfirmRejected(
                    "request state altered, or issued for another token, tool or arguments".into(),
                ))
            }
        };
        // Single use, whatever the answer: a replay of an accepted state is refused.
        let now = Instant::now();
        {
            let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
            used.retain(|_, until| *until > now);
            if used.contains_key(&sealed.n) {
                return Confirmed::No(Denial::ConfirmRejected("request state already used".into()));
            }
            used.insert(sealed.n, now + self.timeout);
        }
        answer(responses.and_then(|r| r.get(INPUT_KEY)))
    }
}

/// The question, form mode: an empty form, so the answer is the action alone.
fn params(q: &Question<'_>) -> ElicitRequestParams {
    let what = match &q.resource {
        Some(r) => format!("{} on {r}", q.tool),
        None => q.tool.to_string(),
    };
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: format!(
            "mcpvault: allow {what}? The capability token for this call requires your \
             confirmation."
        ),
        requested_schema: ElicitationSchema::new(BTreeMap::new()),
    }
}

/// The user's answer, from an elicitation result's JSON.
fn answer(result: Option<&Value>) -> Confirmed {
    match result.and_then(|v| v.get("action")).and_then(Value::as_str) {
        Some("accept") => Confirmed::Yes,
        Some("decline") | Some("cancel") => Confirmed::No(Denial::Declined),
        Some(_) => Confirmed::No(Denial::ConfirmRejected("unknown answer".into())),
        None => Confirmed::No(Denial::ConfirmRejected(
            "no answer to the confirmation question".into(),
        )),
    }
}

/// What a sealed state is bound to: token (hash), tool, arguments (hash).
fn binding(q: &Question<'_>, args: &[u8; 32]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"mcpvault/confirm/v1\0");
    h.update(Sha256::digest(q.token.trim().as_bytes()));
    h.update(q.tool.as_bytes());
    h.update([0u8]);
    h.update(args);
    h.finalize().to_vec()
}

/// SHA-256 of the arguments in a canonical form (object keys sorted at every level),
/// so the same arguments hash the same however the client ordered them.
pub fn args_digest(args: &Map<String, Value>) -> [u8; 32] {
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push(b'{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend(Value::String(k.clone()).to_string().as_bytes());
                    out.push(b':');
                    if let Some(v) = m.get(k) {
                        write(v, out);
                    }
                }
                out.push(b'}');
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(v, out);
                }
                out.push(b']');
            }
            other => out.extend(other.to_string().as_bytes()),
        }
    }
    let mut out = Vec::new();
    write(&Value::Object(args.clone()), &mut out);
    Sha256::digest(&out).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q<'a>(token: &'a str, tool: &'a str) -> Question<'a> {
        Question {
            tool,
            resource: Some("kv:a".into()),
            token,
        }
    }

    fn state_of(c: Confirmed) -> String {
        match c {
            Confirmed::Pending(r) => r.request_state.clone().unwrap_or_default(),
            _ => panic!("expected an input-required result"),
        }
    }

    fn accepted() -> InputResponses {
        BTreeMap::from([(
            INPUT_KEY.to_string(),
            serde_json::json!({"action": "accept"}),
        )])
    }

    fn denial(c: Confirmed) -> Denial {
        match c {
            Confirmed::No(d) => d,
            Confirmed::Yes => panic!("accepted"),
            Confirmed::Pending(_) => panic!("pending"),
        }
    }

    #[test]
    fn canonical_arguments() {
        let a: Map<String, Value> =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"q":2,"p":3}],"x":"s"}}"#).unwrap();
        let b: Map<String, Value> =
            serde_json::from_str(r#"{"a":{"x":"s","y":[1,{"p":3,"q":2}]},"b":1}"#).unwrap();
        assert_eq!(args_digest(&a), args_digest(&b));
        let c: Map<String, Value> = serde_json::from_str(r#"{"a":1}"#).unwrap();
        assert_ne!(args_digest(&a), args_digest(&c));
    }

    #[test]
    fn a_state_is_bound_single_use_and_answered() {
        let c = Confirmer::new(Duration::from_secs(60)).unwrap();
        let args = [7u8; 32];
        let stateless = |state: &str, responses: Option<InputResponses>, args| Ask::Stateless {
            state: Some(state.to_string()),
            responses,
            args,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ask = |a: Ask, q: Question<'_>| rt.block_on(c.confirm(&a, &q));
        let first = Ask::Stateless {
            state: None,
            responses: Some(accepted()),
            args,
        };
        let state = state_of(ask(first, q("t1", "kv.delete")));
        // Another token, tool or arguments: refused, and the state stays unused.
        for (token, tool, args2) in [
            ("t2", "kv.delete", args),
            ("t1", "kv.write", args),
            ("t1", "kv.delete", [8u8; 32]),
        ] {
            let d = denial(ask(
                stateless(&state, Some(accepted()), args2),
                q(token, tool),
            ));
            assert!(
                matches!(d, Denial::ConfirmRejected(ref m) if m.contains("altered")),
                "{d}"
            );
        }
        // Altered: one character of the tag flipped.
        let mut altered = state.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == 'A' { 'B' } else { 'A' });
        let d = denial(ask(
            stateless(&altered, Some(accepted()), args),
            q("t1", "kv.delete"),
        ));
        assert!(matches!(d, Denial::ConfirmRejected(_)), "{d}");
        // The right call: accepted once, then a replay is refused.
        assert!(matches!(
            ask(
                stateless(&state, Some(accepted()), args),
                q("t1", "kv.delete")
            ),
            Confirmed::Yes
        ));
        let d = denial(ask(
            stateless(&state, Some(accepted()), args),
            q("t1", "kv.delete"),
        ));
        assert_eq!(
            d.to_string(),
            "confirmation rejected: request state already used"
        );
        // Declined and unanswered.
        let state = state_of(ask(
            Ask::Stateless {
                state: None,
                responses: None,
                args,
            },
            q("t1", "kv.delete"),
        ));
        let declined = BTreeMap::from([(
            INPUT_KEY.to_string(),
            serde_json::json!({"action": "decline"}),
        )]);
        assert_eq!(
            denial(ask(
                stateless(&state, Some(declined), args),
                q("t1", "kv.delete")
            )),
            Denial::Declined
        );
        assert_eq!(
            denial(ask(Ask::Unsupported, q("t1", "kv.delete"))),
            Denial::ConfirmUnsupported
        );
    }
}
