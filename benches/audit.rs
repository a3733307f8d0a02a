//! What durability costs per audit entry, next to its floor.
//!
//! - `floor/no-sync`: the same entry written to /dev/null (serialize, hash, one write);
//! - `always`: fsync before the call goes on (the default);
//! - `batch`: group commit, one fsync shared by the entries written meanwhile;
//! - `.../8-writers`: eight threads writing at once (concurrent calls), time per entry.
//!
//! The file lives under the target directory (a real disk: /tmp may be tmpfs, where
//! fsync costs nothing). Figures are per entry; compare each to the floor of the same
//! run, never to another run (shared hosts drift).

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use mcpvault::audit::{AuditLog, Event, SyncMode};

fn event() -> Event<'static> {
    Event {
        subject: "agentA",
        tool: "kv.read",
        resource: Some("kv:app/db".into()),
        decision: "allow",
        reason: None,
        token_id: Some("a".repeat(64)),
        phase: Some("intent"),
        outcome: None,
        backend_ms: None,
        request_id: "1".into(),
    }
}

fn per_entry(log: &AuditLog, writers: usize, iters: u64) -> Duration {
    let each = iters.div_ceil(writers as u64);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..writers {
            s.spawn(|| {
                for _ in 0..each {
                    log.record(&event()).expect("audit write");
                }
            });
        }
    });
    // Wall time for `iters` entries, as criterion expects for `iters` iterations.
    start
        .elapsed()
        .mul_f64(iters as f64 / (each * writers as u64) as f64)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let mut g = c.benchmark_group("audit_entry");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    let open = |name: &str, sync| {
        let path = if name == "null" {
            Path::new("/dev/null").to_path_buf()
        } else {
            dir.path().join(name)
        };
        AuditLog::open_with(&path, sync, None).expect("open audit log")
    };
    for writers in [1usize, 8] {
        let floor = open("null", SyncMode::Always);
        g.bench_function(format!("floor/no-sync/{writers}-writers"), |b| {
            b.iter_custom(|n| per_entry(&floor, writers, n))
        });
        let always = open(&format!("always-{writers}.log"), SyncMode::Always);
        g.bench_function(format!("always/{writers}-writers"), |b| {
            b.iter_custom(|n| per_entry(&always, writers, n))
        });
        let batch = open(&format!("batch-{writers}.log"), SyncMode::Batch);
        g.bench_function(format!("batch/{writers}-writers"), |b| {
            b.iter_custom(|n| per_entry(&batch, writers, n))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
