"""Verify latency from Python: the same token and request as the Rust criterion
bench (`cargo bench --bench verify`, cached/depth1 and first_sight/depth1).

    python verify.py [iterations]
"""

from __future__ import annotations

import sys
import time

from mcpvault import MCPVault, _native

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
vault = MCPVault()
priv, pub = vault.generate_keypair()


def chain() -> str:
    root = vault.mint(priv, {
        "tools": ["kv.*", "transit.encrypt"], "subject": "agentA",
        "max_delegation_depth": 10, "resources": ["kv:app/*"],
    })
    return vault.attenuate(root, {
        "tools": ["kv.read", "kv.list"], "ttl": 1800, "resources": ["kv:app/*"],
        "max_delegation_depth": 8,
    })


OPTS = {"requested_tool": "kv.read", "resource": "kv:app/x/x/x/x/x/secret", "subject": "agentA"}


def timed(label: str, fn, n: int) -> None:
    for _ in range(min(n, 1000)):  # warm-up
        fn()
    start = time.perf_counter_ns()
    for _ in range(n):
        fn()
    per = (time.perf_counter_ns() - start) / n / 1000
    print(f"python {label:<34} {per:8.2f} us/call  ({n} calls)")


token = chain()
vault.verify(token, pub, OPTS)
guard = _native.Guard(pub, [])
timed("MCPVault.verify cached/depth1", lambda: vault.verify(token, pub, OPTS), N)
timed("Guard.verify (middleware) cached", lambda: guard.verify(token, OPTS), N)

# First sight: every token new to the verifier (signature chain + facts + Datalog).
fresh = [chain() for _ in range(300)]
start = time.perf_counter_ns()
for t in fresh:
    vault.verify(t, pub, OPTS)
per = (time.perf_counter_ns() - start) / len(fresh) / 1000
print(f"python {'first_sight/depth1':<34} {per:8.2f} us/call  ({len(fresh)} tokens)")
