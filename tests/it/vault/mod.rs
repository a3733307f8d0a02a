//! The Vault / OpenBao tools and connection against the dev stack. The denial tests
//! that count OpenBao's audit log live in the `stack_exclusive` test binary.

mod backend;
mod rotation;
mod tools;
