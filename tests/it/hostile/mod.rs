//! Hostile clients and a hostile environment: malformed and oversized input,
//! pipelining, rate limits, and the process lifecycle (EOF, SIGTERM).

mod input;
mod lifecycle;
mod pipeline;
mod ratelimit;
