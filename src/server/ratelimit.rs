//! Token-bucket rate limits per token and per subject (this process serves one
//! subject). "Per token" means per minted token: the gate keys the bucket on the
//! authority block's revocation id, so attenuated copies share their parent's bucket. Configured by `MCPVAULT_RATE_LIMIT` (per token) and
//! `MCPVAULT_SUBJECT_RATE_LIMIT` as `RATE[/BURST]` calls per second, `0` = off.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Instant;

use lru::LruCache;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub rate: f64,
    pub burst: f64,
}

impl Limit {
    /// `RATE[/BURST]`; `0` or `off` disables. Burst defaults to twice the rate.
    pub fn parse(s: &str) -> Result<Option<Limit>, String> {
        let s = s.trim();
        if s == "0" || s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (rate, burst) = match s.split_once('/') {
            Some((r, b)) => (r, Some(b)),
            None => (s, None),
        };
        let rate: f64 = rate.trim().parse().map_err(|_| format!("bad rate {s:?}"))?;
        let burst: f64 = match burst {
            Some(b) => b.trim().parse().map_err(|_| format!("bad burst {s:?}"))?,
            None => rate * 2.0,
        };
        if !(rate.is_finite() && rate > 0.0 && burst.is_finite() && burst >= 1.0) {
            return Err(format!("rate limit {s:?} must be positive"));
        }
        Ok(Some(Limit { rate, burst }))
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(l: Limit, now: Instant) -> Bucket {
        Bucket {
            tokens: l.burst,
            at: now,
        }
    }

    /// Refills for the time passed; `Err(seconds)` until a call is available.
    fn ready(&mut self, l: Limit, now: Instant) -> Result<(), f64> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * l.rate).min(l.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            Ok(())
        } else {
            Err((1.0 - self.tokens) / l.rate)
        }
    }
}

pub struct RateLimiter {
    per_token: Option<Limit>,
    per_subject: Option<Limit>,
    tokens: Mutex<LruCache<String, Bucket>>,
    subject: Mutex<Option<Bucket>>,
}

impl RateLimiter {
    pub fn new(per_token: Option<Limit>, per_subject: Option<Limit>) -> Self {
        RateLimiter {
            per_token,
            per_subject,
            tokens: Mutex::new(LruCache::new(
                NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
            )),
            subject: Mutex::new(None),
        }
    }

    /// Takes one call from both buckets; `Err(message)` when either is empty. A call
    /// refused by one bucket costs the other nothing: a runaway token must not drain
    /// the subject's budget with calls that are refused anyway.
    pub fn check(&self, token_id: &str) -> Result<(), String> {
        let now = Instant::now();
        // Always subject, then tokens: one lock order.
        let mut subject = self.subject.lock().unwrap_or_else(|e| e.into_inner());
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = self
            .per_subject
            .map(|l| (l, subject.get_or_insert_with(|| Bucket::full(l, now))));
        if let Some((l, b)) = &mut s {
            b.ready(*l, now).map_err(|wait| {
                format!("rate limited (subject): retry in {:.0} ms", wait * 1000.0)
            })?;
        }
        let mut t = self.per_token.map(|l| {
            let b = tokens.get_or_insert_mut(token_id.to_string(), || Bucket::full(l, now));
            (l, b)
        });
        if let Some((l, b)) = &mut t {
            b.ready(*l, now).map_err(|wait| {
                format!("rate limited (token): retry in {:.0} ms", wait * 1000.0)
            })?;
        }
        for (_, b) in [s, t].into_iter().flatten() {
            b.tokens -= 1.0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_limits() {
        assert_eq!(Limit::parse("0"), Ok(None));
        assert_eq!(Limit::parse("off"), Ok(None));
        assert_eq!(
            Limit::parse("10"),
            Ok(Some(Limit {
                rate: 10.0,
                burst: 20.0
            }))
        );
        assert_eq!(
            Limit::parse("10/3"),
            Ok(Some(Limit {
                rate: 10.0,
                burst: 3.0
            }))
        );
        assert!(Limit::parse("-1").is_err());
        assert!(Limit::parse("x").is_err());
    }

    #[test]
    fn bucket_empties_after_burst_per_token() {
        // A very slow refill makes the outcome independent of timing.
        let rl = RateLimiter::new(
            Some(Limit {
                rate: 0.001,
                burst: 3.0,
            }),
            None,
        );
        for _ in 0..3 {
            assert!(rl.check("t1").is_ok());
        }
        let e = rl.check("t1").unwrap_err();
        assert!(e.starts_with("rate limited (token)"), "{e}");
        // Another token has its own bucket.
        assert!(rl.check("t2").is_ok());
    }

    #[test]
    fn a_call_refused_by_its_token_bucket_costs_the_subject_nothing() {
        let slow = |burst| Some(Limit { rate: 0.001, burst });
        let rl = RateLimiter::new(slow(1.0), slow(3.0));
        assert!(rl.check("runaway").is_ok());
        for _ in 0..10 {
            assert!(rl.check("runaway").unwrap_err().contains("(token)"));
        }
        assert!(rl.check("b").is_ok());
        assert!(rl.check("c").is_ok());
        assert!(rl.check("d").unwrap_err().contains("(subject)"));
    }

    #[test]
    fn subject_bucket_is_shared() {
        let rl = RateLimiter::new(
            None,
            Some(Limit {
                rate: 0.001,
                burst: 2.0,
            }),
        );
        assert!(rl.check("a").is_ok());
        assert!(rl.check("b").is_ok());
        assert!(rl
            .check("c")
            .unwrap_err()
            .starts_with("rate limited (subject)"));
    }
}
