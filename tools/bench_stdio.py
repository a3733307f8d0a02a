#!/usr/bin/env python3
"""mcpvault-stdio benchmarks over a raw pipe, against raw HTTP to the same OpenBao.

Run by tools/bench.sh (which builds, starts the dev stack, mints the token and seeds
the secret). Inputs from the environment (never argv, so the token stays out of `ps`):

  BENCH_SERVER_BIN   mcpvault-stdio
  BENCH_SERVER_ENV   JSON: the server's full environment
  BENCH_TOKEN        token for kv.read on BENCH_KV_PATH
  BENCH_KV_PATH      path under the subject's namespace (e.g. bench/x)
  BENCH_VAULT_URL    full KV v2 data URL of that secret (for the raw HTTP baseline)
  BENCH_VAULT_TOKEN  Vault token for the raw HTTP baseline (same policy as the server)
  BENCH_JSON         optional: write all figures here as JSON

Sections (all loops bounded, loopback only):
  cold    spawn -> initialize reply, median of 20 fresh processes
  latency kv.read: 10 warm-up + 2000 sequential calls on one server, repeated token,
          vs raw HTTP KV v2 GET on one kept-alive http.client connection
  through 16 concurrent clients through ONE server (one pipe, writes under a lock,
          a reader thread dispatching replies by id) vs 16 raw HTTP clients
  rss     VmHWM of a fresh server after 10,000 kv.read calls

Every reply is checked: an error or a denial aborts the run rather than timing a fast
failure path.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

from bench_common import BenchError, pct, run

SERVER = os.environ["BENCH_SERVER_BIN"]
SERVER_ENV = json.loads(os.environ["BENCH_SERVER_ENV"])
TOKEN = os.environ["BENCH_TOKEN"]
KV_PATH = os.environ["BENCH_KV_PATH"]
VAULT_URL = urllib.parse.urlsplit(os.environ["BENCH_VAULT_URL"])
VAULT_TOKEN = os.environ["BENCH_VAULT_TOKEN"]
STDERR_FILE = os.environ.get("BENCH_SERVER_STDERR", os.devnull)

CLIENTS = 16
INIT = (json.dumps({
    "jsonrpc": "2.0", "id": 0, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "mcpvault-bench", "version": "1"}},
}) + "\n").encode()
INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
# The call line with the id spliced in: serialization cost stays out of the loop.
_CALL = json.dumps({
    "jsonrpc": "2.0", "id": 999999999, "method": "tools/call",
    "params": {"name": "kv.read", "arguments": {"path": KV_PATH}, "_meta": {"token": TOKEN}},
}) + "\n"
CALL_HEAD, CALL_TAIL = (s.encode() for s in _CALL.split("999999999"))


def call_line(i: int) -> bytes:
    return CALL_HEAD + str(i).encode() + CALL_TAIL


def check_reply(line: bytes, want_id: int | None = None) -> dict:
    if not line:
        raise BenchError("server closed stdout (crashed?)")
    msg = json.loads(line)
    if want_id is not None and msg.get("id") != want_id:
        raise BenchError(f"reply id {msg.get('id')} != {want_id}")
    if "error" in msg:
        raise BenchError(f"JSON-RPC error: {json.dumps(msg['error'])[:300]}")
    res = msg.get("result", {})
    if res.get("isError"):
        text = " ".join(c.get("text", "") for c in res.get("content", []))
        raise BenchError(f"tool error: {text[:300]}")
    return msg


class Server:
    """mcpvault-stdio over raw pipes (newline-delimited JSON-RPC)."""

    def __init__(self, binary: str = SERVER, env: dict | None = None):
        self.err = open(STDERR_FILE, "ab")
        self.t_spawn = time.perf_counter()
        self.p = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, env=SERVER_ENV if env is None else env,
                                  bufsize=0)
        self.fd_in = self.p.stdin.fileno()
        self.out = self.p.stdout  # unbuffered raw; wrap for readline
        self.reader = open(self.p.stdout.fileno(), "rb", buffering=1 << 16, closefd=False)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd_in, view)
            view = view[n:]

    def readline(self) -> bytes:
        return self.reader.readline()

    def initialize(self) -> float:
        """Send initialize; return seconds from spawn to the reply line."""
        self.write(INIT)
        line = self.readline()
        t = time.perf_counter() - self.t_spawn
        check_reply(line, 0)
        self.write(INITIALIZED)
        return t

    def status(self, field: str) -> int:
        """A /proc/PID/status field in KiB (VmHWM, VmRSS)."""
        with open(f"/proc/{self.p.pid}/status") as f:
            for l in f:
                if l.startswith(field + ":"):
                    return int(l.split()[1])
        raise BenchError(f"{field} not in /proc/{self.p.pid}/status")

    def cpu_s(self) -> float:
        """CPU seconds the server has used (user + system): its own cost, which
        steal and the backend's load do not inflate as they do wall time."""
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.reader.close()
        self.out.close()
        self.err.close()


def http_conn() -> http.client.HTTPConnection:
    return http.client.HTTPConnection(VAULT_URL.hostname, VAULT_URL.port, timeout=30)


def http_get(conn: http.client.HTTPConnection) -> None:
    conn.request("GET", VAULT_URL.path, headers={"X-Vault-Token": VAULT_TOKEN})
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise BenchError(f"raw HTTP GET -> {r.status}: {body[:200]!r}")


# ------------------------------------------------------------------ sections --

def bench_cold(n: int = 20) -> dict:
    times = []
    for _ in range(n):
        s = Server()
        try:
            times.append(s.initialize())
        finally:
            s.close()
    ms = [t * 1000 for t in times]
    return {"runs": n, "median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms)}


def bench_latency(warm: int = 10, n: int = 2000, block: int = 100) -> dict:
    """Server and raw HTTP calls alternate in blocks of `block`, so a change in
    machine load during the run hits both sides alike."""
    s = Server()
    conn = http_conn()
    lat: list[float] = []
    raw: list[float] = []
    try:
        s.initialize()
        next_id = 1

        def server_calls(count: int, keep: bool) -> None:
            nonlocal next_id
            for _ in range(count):
                i = next_id
                next_id += 1
                line = call_line(i)
                t0 = time.perf_counter()
                s.write(line)
                reply = s.readline()
                dt = time.perf_counter() - t0
                check_reply(reply, i)
                if keep:
                    lat.append(dt * 1e6)

        def raw_calls(count: int, keep: bool) -> None:
            for _ in range(count):
                t0 = time.perf_counter()
                http_get(conn)
                dt = time.perf_counter() - t0
                if keep:
                    raw.append(dt * 1e6)

        server_calls(warm, False)
        raw_calls(warm, False)
        for _ in range(n // block):
            server_calls(block, True)
            raw_calls(block, True)
    finally:
        s.close()
        conn.close()
    out = {"calls": len(lat), "warmup": warm, "interleaved_block": block}
    for name, xs in (("server_us", lat), ("raw_http_us", raw)):
        out[name] = {f"p{p}": pct(xs, p) for p in (50, 90, 99)}
        out[name]["mean"] = statistics.fmean(xs)
    out["overhead_us"] = {k: out["server_us"][k] - out["raw_http_us"][k] for k in ("p50", "p90", "p99")}
    return out


def throughput_round(per_client: int, warm: int) -> tuple[float, float]:
    server_cps = server_throughput(per_client, warm, Server())
    return server_cps, raw_throughput(per_client, warm)


def server_throughput(per_client: int, warm: int, s: Server) -> float:
    """16 client threads share one server's stdin (under a lock)."""
    s.initialize()
    wlock = threading.Lock()
    inbox = [queue.SimpleQueue() for _ in range(CLIENTS)]
    errors: list[str] = []
    stride = 1_000_000

    def reader():
        while True:
            line = s.readline()
            if not line:
                for q in inbox:
                    q.put(b"")
                return
            try:
                rid = json.loads(line)["id"]
                inbox[rid // stride].put(line)
            except Exception as e:  # noqa: BLE001 - report, keep dispatching
                errors.append(f"undispatchable reply {line[:120]!r}: {e}")

    def client(k: int, count: int, start: threading.Barrier | None, done: list):
        base = k * stride
        try:
            for j in range(warm):
                rid = base + j + 1
                with wlock:
                    s.write(call_line(rid))
                check_reply(inbox[k].get(timeout=30), rid)
            if start is not None:
                start.wait()
            for j in range(count):
                rid = base + warm + j + 1
                with wlock:
                    s.write(call_line(rid))
                check_reply(inbox[k].get(timeout=30), rid)
        except Exception as e:  # noqa: BLE001
            errors.append(f"client {k}: {e}")
            if start is not None:
                start.abort()
        done.append(time.perf_counter())

    rt = threading.Thread(target=reader, daemon=True)
    rt.start()
    barrier = threading.Barrier(CLIENTS + 1)
    done: list[float] = []
    threads = [threading.Thread(target=client, args=(k, per_client, barrier, done)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = max(done) - t0
    s.p.stdin.close()
    s.p.wait(timeout=10)
    rt.join(timeout=10)
    s.close()
    if errors:
        raise BenchError("; ".join(errors[:3]))
    return CLIENTS * per_client / elapsed


def raw_throughput(per_client: int, warm: int) -> float:
    """16 raw HTTP clients, each with its own kept-alive connection."""
    errors: list[str] = []
    barrier = threading.Barrier(CLIENTS + 1)
    done: list[float] = []

    def http_client(k: int):
        try:
            conn = http_conn()
            for _ in range(warm):
                http_get(conn)
            barrier.wait()
            for _ in range(per_client):
                http_get(conn)
            conn.close()
        except Exception as e:  # noqa: BLE001
            errors.append(f"http client {k}: {e}")
            barrier.abort()
        done.append(time.perf_counter())

    threads = [threading.Thread(target=http_client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed_raw = max(done) - t0
    if errors:
        raise BenchError("; ".join(errors[:3]))
    return CLIENTS * per_client / elapsed_raw


def variants() -> list[dict]:
    """BENCH_VARIANTS: [{"label", "bin", "env": {NAME: value or null (= unset)}}],
    servers compared side by side (builds before/after a change, audit modes)."""
    out = []
    for v in json.loads(os.environ.get("BENCH_VARIANTS", "[]")):
        env = dict(SERVER_ENV)
        for k, val in v.get("env", {}).items():
            if val is None:
                env.pop(k, None)
            else:
                env[k] = val
        out.append({"label": v["label"], "bin": v["bin"], "env": env})
    return out


def bench_compare(warm: int = 20, rounds: int = 1000) -> dict:
    """kv.read on every variant's server and a raw HTTP GET, one call each in turn,
    `rounds` times: load drift hits every column alike. p50 per column and its ratio
    to the raw floor."""
    vs = variants()
    if not vs:
        raise BenchError("compare: BENCH_VARIANTS is empty")
    servers = [Server(v["bin"], v["env"]) for v in vs]
    conn = http_conn()
    lat: list[list[float]] = [[] for _ in vs]
    raw: list[float] = []
    try:
        for s in servers:
            s.initialize()
        cpu0 = []
        for r in range(warm + rounds):
            if r == warm:
                cpu0 = [s.cpu_s() for s in servers]
            for k, s in enumerate(servers):
                t0 = time.perf_counter()
                s.write(call_line(r + 1))
                reply = s.readline()
                dt = time.perf_counter() - t0
                check_reply(reply, r + 1)
                if r >= warm:
                    lat[k].append(dt * 1e6)
            t0 = time.perf_counter()
            http_get(conn)
            if r >= warm:
                raw.append((time.perf_counter() - t0) * 1e6)
        cpu = [(s.cpu_s() - c0) / rounds * 1e6 for s, c0 in zip(servers, cpu0)]
    finally:
        for s in servers:
            s.close()
        conn.close()
    floor = pct(raw, 50)
    rows = [{"label": v["label"], "p50_us": pct(x, 50), "p99_us": pct(x, 99),
             "ratio_p50": pct(x, 50) / floor, "added_p50_us": pct(x, 50) - floor,
             "server_cpu_us": c}
            for v, x, c in zip(vs, lat, cpu)]
    return {"rounds": rounds, "raw_p50_us": floor, "raw_p99_us": pct(raw, 99), "rows": rows}


def bench_compare_through(per_client: int = 200, warm: int = 10, rounds: int = 3) -> dict:
    """(c) for every variant: rounds of [each variant's server, raw], medians."""
    vs = variants()
    if not vs:
        raise BenchError("compare_through: BENCH_VARIANTS is empty")
    got: list[list[float]] = [[] for _ in vs]
    raws: list[float] = []
    for _ in range(rounds):
        for k, v in enumerate(vs):
            got[k].append(server_throughput(per_client, warm, Server(v["bin"], v["env"])))
        raws.append(raw_throughput(per_client, warm))
    raw = statistics.median(raws)
    return {"clients": CLIENTS, "calls_per_client": per_client, "rounds": rounds,
            "raw_calls_per_s": raw,
            "rows": [{"label": v["label"], "calls_per_s": statistics.median(x),
                      "ratio": statistics.median(x) / raw} for v, x in zip(vs, got)]}


def bench_throughput(per_client: int = 250, warm: int = 10, rounds: int = 3) -> dict:
    """`rounds` rounds, each server then raw HTTP; medians reported (load drift
    hits both sides alike)."""
    runs = [throughput_round(per_client, warm) for _ in range(rounds)]
    server_cps = statistics.median(r[0] for r in runs)
    raw_cps = statistics.median(r[1] for r in runs)
    return {"clients": CLIENTS, "calls_per_client": per_client, "rounds": rounds,
            "server_calls_per_s": server_cps, "raw_http_calls_per_s": raw_cps,
            "ratio": server_cps / raw_cps,
            "runs": [{"server": a, "raw_http": b} for a, b in runs]}


def bench_rss(n: int = 10_000, window: int = 16) -> dict:
    """A fresh server; n kv.read calls with `window` requests in flight."""
    s = Server()
    try:
        s.initialize()
        after_init = s.status("VmHWM")
        sent = done = 0
        while done < n:
            while sent < n and sent - done < window:
                sent += 1
                s.write(call_line(sent))
            check_reply(s.readline())
            done += 1
        return {"calls": n, "in_flight": window, "vmhwm_after_init_kib": after_init,
                "vmhwm_kib": s.status("VmHWM"), "vmrss_kib": s.status("VmRSS")}
    finally:
        s.close()


def main() -> int:
    sections = sys.argv[1:] or ["cold", "latency", "through", "rss"]
    results: dict = {}
    for sec in sections:
        t0 = time.monotonic()
        print(f"[bench] {sec} ...", file=sys.stderr, flush=True)
        results[sec] = {"cold": bench_cold, "latency": bench_latency,
                        "through": bench_throughput, "rss": bench_rss,
                        "compare": bench_compare,
                        "compare_through": bench_compare_through}[sec]()
        print(f"[bench] {sec} done in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)

    print()
    if "cold" in results:
        c = results["cold"]
        print(f"(a) cold start, spawn -> initialize reply (raw pipe), {c['runs']} fresh processes:")
        print(f"      median {c['median_ms']:.1f} ms   (min {c['min_ms']:.1f}, max {c['max_ms']:.1f})")
    if "latency" in results:
        l = results["latency"]
        sv, rw, ov = l["server_us"], l["raw_http_us"], l["overhead_us"]
        print(f"(b) kv.read latency, {l['calls']} sequential calls after {l['warmup']} warm-up, repeated token"
              f" (server and raw HTTP interleaved in blocks of {l['interleaved_block']}):")
        w = 34
        print(f"      {'':{w}}{'p50':>10}{'p90':>10}{'p99':>10}")
        for label, row, fmt in (("mcpvault-stdio kv.read (pipe)", sv, ">8.0f"),
                                ("raw HTTP KV v2 GET (keep-alive)", rw, ">8.0f"),
                                ("difference", ov, ">+8.0f")):
            print(f"      {label:{w}}" + "".join(f"{row[k]:{fmt}}us" for k in ("p50", "p90", "p99")))
    if "through" in results:
        t = results["through"]
        print(f"(c) throughput, {t['clients']} concurrent clients x {t['calls_per_client']} kv.read,"
              f" median of {t['rounds']} alternating rounds:")
        print(f"      through ONE mcpvault-stdio (one pipe): {t['server_calls_per_s']:8.0f} calls/s")
        print(f"      raw HTTP, {t['clients']} kept-alive connections:  {t['raw_http_calls_per_s']:8.0f} calls/s")
        print(f"      ratio server/raw: {t['ratio']:.2f}   (rounds: "
              + ", ".join("%.0f/%.0f" % (r["server"], r["raw_http"]) for r in t["runs"]) + ")")
    if "rss" in results:
        r = results["rss"]
        print(f"(d) memory after {r['calls']} kv.read calls ({r['in_flight']} in flight):")
        print(f"      peak RSS (VmHWM) {r['vmhwm_kib'] / 1024:.1f} MiB; current RSS {r['vmrss_kib'] / 1024:.1f} MiB;"
              f" VmHWM right after initialize {r['vmhwm_after_init_kib'] / 1024:.1f} MiB")
    if "compare" in results:
        c = results["compare"]
        print(f"(k1) kv.read, every server below and the raw HTTP floor called in turn, one call each,"
              f" {c['rounds']} rounds:")
        print(f"      {'':44}{'p50':>9}{'p99':>9}{'x floor':>9}{'added':>9}{'cpu/call':>10}")
        print(f"      {'raw HTTP KV v2 GET (keep-alive): the floor':44}{c['raw_p50_us']:>7.0f}us"
              f"{c['raw_p99_us']:>7.0f}us{1:>9.2f}")
        for r in c["rows"]:
            print(f"      {r['label']:44}{r['p50_us']:>7.0f}us{r['p99_us']:>7.0f}us"
                  f"{r['ratio_p50']:>9.2f}{r['added_p50_us']:>+7.0f}us{r['server_cpu_us']:>8.0f}us")
    if "compare_through" in results:
        t = results["compare_through"]
        print(f"(k2) throughput, {t['clients']} clients x {t['calls_per_client']} kv.read, median of"
              f" {t['rounds']} rounds (each round: every server below, then raw HTTP):")
        print(f"      {'raw HTTP, 16 kept-alive connections: the floor':50}{t['raw_calls_per_s']:>8.0f}/s")
        for r in t["rows"]:
            print(f"      {r['label']:50}{r['calls_per_s']:>8.0f}/s  ratio {r['ratio']:.2f}")
    if os.environ.get("BENCH_JSON"):
        with open(os.environ["BENCH_JSON"], "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    run(main)
