#!/usr/bin/env python3
"""What binding a lease to its capability token costs: db.issue_creds through a token
seen for the first time (the server creates a Vault child token for it) against the
same call through a token already seen (its child token is cached), alternated call
by call on one server so host drift hits both alike.

Run by tools/bench.sh. Inputs from the environment:

  BENCH_SERVER_BIN    mcpvault-stdio
  BENCH_SERVER_ENV    JSON: the server's full environment
  BENCH_LEASE_TOKENS  JSON list of distinct tokens (each granting db.*), one per
                      first-sight call; the first one is also the repeated token
Every lease is revoked again right after (not timed).
"""

from __future__ import annotations

import json
import os
import statistics
import time

from bench_pipe import Pipe

SERVER = os.environ["BENCH_SERVER_BIN"]
SERVER_ENV = json.loads(os.environ["BENCH_SERVER_ENV"])
TOKENS = json.loads(os.environ["BENCH_LEASE_TOKENS"])


def main() -> None:
    pipe = Pipe(SERVER, SERVER_ENV, "bench-leases")
    call = pipe.call

    def timed_issue(token: str) -> float:
        t0 = time.perf_counter()
        c = call("db.issue_creds", {"role": "readonly"}, token)
        dt = time.perf_counter() - t0
        call("db.revoke", {"lease_id": c["lease_id"]}, token)
        return dt * 1000

    repeated = TOKENS[0]
    timed_issue(repeated)  # warm-up: creates the repeated token's child
    first, cached = [], []
    for fresh in TOKENS[1:]:
        first.append(timed_issue(fresh))
        cached.append(timed_issue(repeated))
    pipe.close()
    m_first, m_cached = statistics.median(first), statistics.median(cached)
    print(f"(g) db.issue_creds, {len(first)} alternated pairs, median ms:")
    print(f"      token seen before (child token cached) {m_cached:8.2f}   <- floor")
    print(f"      token seen for the first time          {m_first:8.2f}   "
          f"(+{m_first - m_cached:.2f} ms: child token creation + its KV record)")


if __name__ == "__main__":
    main()
