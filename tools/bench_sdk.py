#!/usr/bin/env python3
"""mcpvault-stdio measured the way peers.md measured its peers: the official MCP Python
SDK as the client, 200 kv.read calls after 10 warm-up calls, median of 3 fresh
processes; cold start is spawn -> initialize() returning.

Same environment inputs as tools/bench_stdio.py (BENCH_SERVER_BIN, BENCH_SERVER_ENV,
BENCH_TOKEN, BENCH_KV_PATH, BENCH_JSON_SDK optional).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

SERVER = os.environ["BENCH_SERVER_BIN"]
SERVER_ENV = json.loads(os.environ["BENCH_SERVER_ENV"])
TOKEN = os.environ["BENCH_TOKEN"]
KV_PATH = os.environ["BENCH_KV_PATH"]
STDERR_FILE = os.environ.get("BENCH_SERVER_STDERR", os.devnull)

PROCESSES = 3
WARM = 10
CALLS = 200


def children() -> set[int]:
    pids: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            pass
    return pids


def vmhwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


async def one_process() -> dict:
    before = children()
    params = StdioServerParameters(command=SERVER, args=[], env=SERVER_ENV)
    with open(STDERR_FILE, "a") as errlog:
        t_spawn = time.perf_counter()
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                cold_ms = (time.perf_counter() - t_spawn) * 1000
                new = [p for p in children() - before]
                lat = []
                for i in range(WARM + CALLS):
                    t0 = time.perf_counter()
                    r = await session.call_tool("kv.read", {"path": KV_PATH}, meta={"token": TOKEN})
                    dt = time.perf_counter() - t0
                    if r.is_error:
                        text = " ".join(getattr(c, "text", "") for c in r.content)
                        raise SystemExit(f"[bench-sdk] kv.read failed: {text[:300]}")
                    if i >= WARM:
                        lat.append(dt * 1000)
                hwm = vmhwm_kib(new[0]) if len(new) == 1 else None
    return {"cold_ms": cold_ms, "p50_ms": statistics.median(lat), "vmhwm_kib": hwm}


async def main() -> int:
    runs = []
    for _ in range(PROCESSES):
        runs.append(await one_process())
    out = {
        "processes": PROCESSES, "warmup": WARM, "calls": CALLS,
        "cold_ms_median": statistics.median(r["cold_ms"] for r in runs),
        "kv_read_p50_ms_median": statistics.median(r["p50_ms"] for r in runs),
        "vmhwm_kib_max": max((r["vmhwm_kib"] or 0) for r in runs),
        "runs": runs,
    }
    print(f"(f) official MCP Python SDK client (as peers.md measured: {CALLS} calls after {WARM} warm-up,"
          f" median of {PROCESSES} fresh processes):")
    print(f"      cold start spawn -> initialize(): {out['cold_ms_median']:.1f} ms"
          f"   (runs: {', '.join('%.1f' % r['cold_ms'] for r in runs)})")
    print(f"      kv.read p50: {out['kv_read_p50_ms_median']:.3f} ms"
          f"   (runs: {', '.join('%.3f' % r['p50_ms'] for r in runs)})")
    if out["vmhwm_kib_max"]:
        print(f"      peak RSS (VmHWM) after {WARM + CALLS} calls: {out['vmhwm_kib_max'] / 1024:.1f} MiB")
    if os.environ.get("BENCH_JSON_SDK"):
        with open(os.environ["BENCH_JSON_SDK"], "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
