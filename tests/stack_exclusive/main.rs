//! Tests that need the shared dev stack to themselves: they count every request in
//! OpenBao's audit log, so no other test may talk to that OpenBao meanwhile. Cargo
//! runs test binaries one after another, so keeping them out of `tests/it` is what
//! isolates them; inside this binary they share one lock. Same harness and
//! dev-stack modules as `tests/it`.

#[path = "../it/devstack.rs"]
mod devstack;
#[path = "../it/harness.rs"]
mod harness;

mod vault_denials;
