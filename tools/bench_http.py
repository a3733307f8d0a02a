#!/usr/bin/env python3
"""mcpvault-http under load (section (j) of tools/bench.sh): many agents on one process,
over MCP streamable HTTP on loopback, against the real OpenBao of the dev stack.

  (j0) one client, sequential, the paths alternated call by call (the host's drift
       hits them alike, ../shared/notes.md "Measuring on shared machines"): raw
       OpenBao KV v2 GET (the floor), mcpvault-stdio kv.read (raw pipe), mcpvault-http
       kv.read in a 2025-11-25 session and stateless on 2026-07-28, each on one
       kept-alive http.client connection so client overhead stays small; and both HTTP
       paths again with the client acknowledging at once (TCP_QUICKACK), which shows
       what a reply written in pieces under Nagle's algorithm costs a client that
       delays its ACKs (Linux's default, and so the MCP Python SDK's).
  (j1) CLIENTS sessions on 2025-11-25, all open at once: initialize (-> Mcp-Session-Id),
       notifications/initialized, then, once every session is open, CALLS kv.read each
       with the session header; DELETE at the end.
  (j2) CLIENTS stateless clients on 2026-07-28: each probes server/discover once (what
       the MCP Python SDK 2.x `Client` does at connect), then, once all have, CALLS
       kv.read each; every request carries the protocol headers (MCP-Protocol-Version,
       Mcp-Method, Mcp-Name) and the `_meta` envelope the SDK stamps.

Printed: kv.read p50/p99 per call (ms), throughput, errors, and the server's memory
from /proc/PID/status (VmRSS, VmHWM, KiB): after priming, with everything open, and
per session. (j1) and (j2) each get a fresh server. Any error (HTTP status, JSON-RPC
error, tool error, wrong value, timeout) is counted and printed by kind, and makes the
exit status 1; nothing is retried.

Client: one Python asyncio process, raw JSON-RPC POSTs; each simulated agent has its
own HTTP/1.1 keep-alive connection (CLIENTS connections in all, each bounded at one),
written on asyncio streams, since httpx2 (the MCP Python SDK 2.x's HTTP client, in the
dev-stack venv) cost more CPU per call than the server did (BENCH_HTTP_CLIENT=httpx2
runs it, one shared pool bounded at POOL connections). The client shares the host's
cores with the server and OpenBao, so under load the figures include the client's own
queueing; the CPU each side used is printed next to them.

Inputs from the environment (tokens never on argv, never printed):

  BENCH_HTTP_BIN          mcpvault-http
  BENCH_SERVER_BIN        mcpvault-stdio, for (j0)
  BENCH_SERVER_ENV        JSON: mcpvault-stdio's environment (SUBJECT=agentA); the HTTP
                          server gets the same without SUBJECT, on 127.0.0.1:0
  BENCH_TOKEN             kv.read token of agentA, for (j0)
  BENCH_KV_PATH           the seeded secret's path in every subject's namespace
  BENCH_VAULT_URL         KV v2 data URL of agentA's secret, BENCH_VAULT_TOKEN: (j0)'s floor
  BENCH_HTTP_TOKENS_FILE  one token a line; client k uses line k (modulo the count).
                          A file: a thousand tokens exceed what one environment string
                          may hold (128 KiB), and a file keeps them out of `ps`
  BENCH_HTTP_CLIENTS      1000     BENCH_HTTP_CALLS  5 (kv.read per client)
  BENCH_HTTP_CLIENT       raw      (or httpx2, one shared pool of BENCH_HTTP_POOL,
                                    default CLIENTS, connections)
  BENCH_HTTP_SEQ          300      ((j0) calls per path)
  BENCH_HTTP_PHASE_TIMEOUT 600     (seconds; each of (j1), (j2) is cancelled after it)
  BENCH_HTTP_STDERR       prefix of the servers' stderr files (NAME.j0, .j1, .j2)
  BENCH_HTTP_SECTIONS     comma list of j0, j1, j2 (default: all)
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

import httpx2

from bench_common import BenchError, pct, run

HTTP_BIN = os.environ["BENCH_HTTP_BIN"]
STDIO_BIN = os.environ["BENCH_SERVER_BIN"]
STDIO_ENV = json.loads(os.environ["BENCH_SERVER_ENV"])
TOKEN = os.environ["BENCH_TOKEN"]
KV_PATH = os.environ["BENCH_KV_PATH"]
VAULT_URL = urllib.parse.urlsplit(os.environ["BENCH_VAULT_URL"])
VAULT_TOKEN = os.environ["BENCH_VAULT_TOKEN"]
with open(os.environ["BENCH_HTTP_TOKENS_FILE"]) as _f:
    TOKENS = [line.strip() for line in _f if line.strip()]
CLIENTS = int(os.environ.get("BENCH_HTTP_CLIENTS", "1000"))
CALLS = int(os.environ.get("BENCH_HTTP_CALLS", "5"))
POOL = int(os.environ.get("BENCH_HTTP_POOL", str(CLIENTS)))
SEQ = int(os.environ.get("BENCH_HTTP_SEQ", "300"))
PHASE_TIMEOUT = float(os.environ.get("BENCH_HTTP_PHASE_TIMEOUT", "600"))
STDERR_PREFIX = os.environ["BENCH_HTTP_STDERR"]
SECTIONS = os.environ.get("BENCH_HTTP_SECTIONS", "j0,j1,j2").split(",")
CLIENT = os.environ.get("BENCH_HTTP_CLIENT", "raw")
REQUEST_TIMEOUT = 60.0  # seconds, any one request of the load phases

LEGACY = "2025-11-25"
MODERN = "2026-07-28"
# The seeded secret (tools/bench.sh): checking a field proves a real read came back,
# not a fast refusal; the revealed password is never looked at or printed.
WANT_USERNAME = "bench"
ACCEPT = "application/json, text/event-stream"
CLIENT_INFO = {"name": "mcpvault-bench-http", "version": "1"}
# The envelope the MCP Python SDK 2.x stamps on every 2026-07-28 request (seen on the
# wire against this server: mcp 2.3.0, `Client(url)`); rmcp requires protocolVersion
# and clientCapabilities in it.
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
    "io.modelcontextprotocol/clientCapabilities": {},
}


class CallError(Exception):
    """One failed request; `kind` groups the error counts."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


# ---------------------------------------------------------------- messages --

def initialize_body(rid: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "initialize",
                       "params": {"protocolVersion": LEGACY, "capabilities": {},
                                  "clientInfo": CLIENT_INFO}}).encode()


INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'


def legacy_call_body(rid: int) -> bytes:
    # Sessions carry the token in the X-MCPVault-Token header (what a host that sets
    # headers on its HTTP client does); the stateless calls carry it in _meta.
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": "kv.read", "arguments": {"path": KV_PATH}}}).encode()


def discover_body(rid: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "server/discover",
                       "params": {"_meta": MODERN_META}}).encode()


def modern_call_body(rid: int, token: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": "kv.read", "arguments": {"path": KV_PATH},
                                  "_meta": {**MODERN_META, "dev.mcpvault/token": token}}}).encode()


LEGACY_HEADERS = {"Accept": ACCEPT, "Content-Type": "application/json"}
MODERN_DISCOVER_HEADERS = {"Accept": ACCEPT, "Content-Type": "application/json",
                           "MCP-Protocol-Version": MODERN, "Mcp-Method": "server/discover"}
MODERN_CALL_HEADERS = {"Accept": ACCEPT, "Content-Type": "application/json",
                       "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call",
                       "Mcp-Name": "kv.read"}


def messages(content_type: str, body: bytes) -> list[dict]:
    """The JSON-RPC messages of a reply: one JSON body, or the `data:` of each SSE
    event (rmcp answers with text/event-stream, with an empty priming event first on
    sessions)."""
    if content_type.startswith("application/json"):
        return [json.loads(body)]
    out = []
    for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].removeprefix(b" ") for line in event.split(b"\n")
                if line.startswith(b"data:")]
        payload = b"\n".join(data).strip()
        if payload:
            out.append(json.loads(payload))
    return out


def reply(status: int, content_type: str, body: bytes, rid: int) -> dict:
    """The result of request `rid`, or CallError."""
    if status != 200:
        raise CallError(f"HTTP {status}", body[:200].decode(errors="replace"))
    try:
        msgs = messages(content_type, body)
    except ValueError as e:
        raise CallError("unparsable reply", str(e)) from None
    for m in msgs:
        if m.get("id") == rid:
            if "error" in m:
                raise CallError("JSON-RPC error", json.dumps(m["error"])[:200])
            return m.get("result", {})
    raise CallError("no reply", f"no message with id {rid} in {len(msgs)} received")


def check_kv_read(result: dict) -> None:
    if result.get("isError"):
        text = " ".join(c.get("text", "") for c in result.get("content", []))
        # Denial texts never hold a token or a value (README); cut anyway.
        raise CallError("tool error", text[:200])
    data = (result.get("structuredContent") or {}).get("data") or {}
    if data.get("username") != WANT_USERNAME:
        raise CallError("wrong value", "kv.read did not return the seeded secret")


# ------------------------------------------------------------------ servers --

def status_kib(pid: int, field: str) -> int:
    """A /proc/PID/status field (VmRSS, VmHWM), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError(f"{field} not in /proc/{pid}/status")


def proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by process `pid` (nan if unknown)."""
    if pid is None:
        return float("nan")
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def bao_pid() -> int | None:
    """OpenBao's pid, from the dev stack's state directory (tools/devstack.sh)."""
    try:
        with open(os.path.join(os.environ["DEVSTACK_DIR"], "pids")) as f:
            for line in f:
                name, _, pid = line.partition(" ")
                if name == "bao":
                    return int(pid)
    except (KeyError, OSError, ValueError):
        pass
    return None


BAO_PID = bao_pid()


def die_with_parent() -> None:
    """In a child before exec: SIGTERM when this bench process dies, however it dies
    (`timeout` in tools/bench.sh kills it, not its children), so no server outlives it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def cpu(server_pid: int) -> dict:
    """Where the cores went: the server, OpenBao, and this client."""
    return {"server_s": proc_cpu(server_pid), "openbao_s": proc_cpu(BAO_PID),
            "client_s": time.process_time()}


def cpu_delta(a: dict, b: dict) -> dict:
    return {k: b[k] - a[k] for k in a}


class HttpServer:
    """A fresh mcpvault-http on 127.0.0.1:0; the bound address is read from the
    `mcpvault-http: listening on ADDR` line of its stderr (a file, so the server can
    never block on a full pipe)."""

    def __init__(self, name: str):
        env = {k: v for k, v in STDIO_ENV.items() if k != "SUBJECT"}
        env["MCPVAULT_LISTEN"] = "127.0.0.1:0"
        if "MCPVAULT_AUDIT_LOG" in env:
            # Its own audit file: the chains stay apart from the stdio runs'.
            env["MCPVAULT_AUDIT_LOG"] += f".http-{name}"
        self.err_path = f"{STDERR_PREFIX}.{name}"
        self.err = open(self.err_path, "wb")
        self.p = subprocess.Popen([HTTP_BIN], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=self.err, env=env,
                                  preexec_fn=die_with_parent)
        self.addr = self._wait_listening()
        self.url = f"http://{self.addr}/mcp"

    def _wait_listening(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.err_path, "rb") as f:
                for line in f:
                    if line.startswith(b"mcpvault-http: listening on "):
                        return line.split(b" on ", 1)[1].strip().decode()
            if self.p.poll() is not None:
                raise BenchError(f"mcpvault-http exited ({self.p.returncode}) before listening")
            time.sleep(0.05)
        raise BenchError("mcpvault-http did not listen within 60 s")

    def kib(self, field: str) -> int:
        return status_kib(self.p.pid, field)

    def memory(self) -> dict:
        return {"vmrss_kib": self.kib("VmRSS"), "vmhwm_kib": self.kib("VmHWM")}

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)  # graceful: audit checkpoints, then exit
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()


class StdioServer:
    """mcpvault-stdio over its pipes (newline-delimited JSON-RPC)."""

    def __init__(self):
        self.p = subprocess.Popen([STDIO_BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=STDIO_ENV,
                                  preexec_fn=die_with_parent)
        self.next_id = 1
        self.request("initialize", {"protocolVersion": LEGACY, "capabilities": {},
                                    "clientInfo": CLIENT_INFO})
        self.p.stdin.write(INITIALIZED + b"\n")
        self.p.stdin.flush()

    def request(self, method: str, params: dict) -> dict:
        rid = self.next_id
        self.next_id += 1
        self.p.stdin.write(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method,
                                       "params": params}).encode() + b"\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise BenchError("mcpvault-stdio closed its stdout")
        return reply(200, "application/json", line, rid)

    def close(self) -> None:
        self.p.stdin.close()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.p.stdout.close()


# ---------------------------------------------------- (j0) sequential, alternated --

def bench_sequential(n: int, warm: int = 20) -> dict:
    """The paths, one call each per round, rotating which goes first."""
    http_srv = HttpServer("j0")
    stdio = StdioServer()
    host, port = http_srv.addr.rsplit(":", 1)
    mcp = http.client.HTTPConnection(host, int(port), timeout=30)
    vault = http.client.HTTPConnection(VAULT_URL.hostname, VAULT_URL.port, timeout=30)
    rid = iter(range(1, 10**9))

    def post(headers: dict, body: bytes, quickack: bool = False) -> tuple[int, str, bytes, object]:
        mcp.request("POST", "/mcp", body=body, headers=headers)
        if quickack:
            # Acknowledge at once what arrives, instead of Linux's delayed ACK (up to
            # 40 ms): a server that writes its reply in several small pieces with
            # Nagle's algorithm on waits for that ACK before the next piece. The
            # kernel drops the flag again on its own, so it is set before each read.
            mcp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        r = mcp.getresponse()
        return r.status, r.getheader("Content-Type", ""), r.read(), r

    try:
        # A session of our own (the token in the header) for the legacy path.
        i = next(rid)
        st, ct, body, r = post(LEGACY_HEADERS, initialize_body(i))
        reply(st, ct, body, i)
        sid = r.getheader("Mcp-Session-Id")
        if not sid:
            raise BenchError("initialize answered without Mcp-Session-Id")
        session_headers = {**LEGACY_HEADERS, "Mcp-Session-Id": sid,
                           "MCP-Protocol-Version": LEGACY, "X-MCPVault-Token": TOKEN}
        st, _, body, _ = post(session_headers, INITIALIZED)
        if st != 202:
            raise BenchError(f"notifications/initialized -> HTTP {st}")

        def floor() -> None:
            vault.request("GET", VAULT_URL.path, headers={"X-Vault-Token": VAULT_TOKEN})
            r = vault.getresponse()
            body = r.read()
            if r.status != 200:
                raise BenchError(f"raw OpenBao GET -> {r.status}")
            if json.loads(body)["data"]["data"].get("username") != WANT_USERNAME:
                raise BenchError("raw OpenBao GET: not the seeded secret")

        def via_stdio() -> None:
            check_kv_read(stdio.request("tools/call", {"name": "kv.read", "arguments": {"path": KV_PATH},
                                                       "_meta": {"token": TOKEN}}))

        def via_session(quickack: bool = False) -> None:
            i = next(rid)
            st, ct, body, _ = post(session_headers, legacy_call_body(i), quickack)
            check_kv_read(reply(st, ct, body, i))

        def via_stateless(quickack: bool = False) -> None:
            i = next(rid)
            st, ct, body, _ = post(MODERN_CALL_HEADERS, modern_call_body(i, TOKEN), quickack)
            check_kv_read(reply(st, ct, body, i))

        # (name, call, the mcpvault process whose CPU the call is charged to)
        paths = [("raw OpenBao KV v2 GET (floor)", floor, None),
                 ("mcpvault-stdio kv.read (pipe)", via_stdio, stdio.p.pid),
                 (f"mcpvault-http session ({LEGACY})", via_session, http_srv.p.pid),
                 (f"mcpvault-http stateless ({MODERN})", via_stateless, http_srv.p.pid)]
        if hasattr(socket, "TCP_QUICKACK"):  # Linux
            paths += [("  session, client TCP_QUICKACK", lambda: via_session(True), http_srv.p.pid),
                      ("  stateless, client TCP_QUICKACK", lambda: via_stateless(True), http_srv.p.pid)]
        lat: dict[str, list[float]] = {name: [] for name, _, _ in paths}
        # Server CPU per call: the process's CPU time (clock ticks, so each call's delta
        # is coarse, but their sum over hundreds of calls is not) before and after.
        cpu_s = dict.fromkeys(lat, 0.0)
        for k in range(warm + n):
            rot = k % len(paths)
            for name, f, pid in paths[rot:] + paths[:rot]:
                c0 = proc_cpu(pid) if pid else 0.0
                t0 = time.perf_counter()
                f()
                dt = time.perf_counter() - t0
                if k >= warm:
                    lat[name].append(dt * 1000)
                    if pid:
                        cpu_s[name] += proc_cpu(pid) - c0
        mcp.request("DELETE", "/mcp", headers={"Mcp-Session-Id": sid, "MCP-Protocol-Version": LEGACY})
        mcp.getresponse().read()
    except CallError as e:
        raise BenchError(f"(j0) {e}") from None
    finally:
        mcp.close()
        vault.close()
        stdio.close()
        http_srv.close()
    rows = {name: {"p50": pct(xs, 50), "p99": pct(xs, 99), "cpu_ms": cpu_s[name] / n * 1000}
            for name, xs in lat.items()}
    return {"calls": n, "warmup": warm, "rows": rows, "order": [name for name, _, _ in paths]}


# ---------------------------------------------------------- (j1), (j2) load --

class Load:
    """What one phase's clients record, and the barriers between its steps."""

    def __init__(self, n: int):
        self.n = n
        self.call_ms: list[float] = []
        self.open_ms: list[float] = []
        self.errors: collections.Counter[str] = collections.Counter()
        self.example: dict[str, str] = {}
        self.ready = 0          # clients past their opening step (or failed in it)
        self.finished = 0       # clients done with their calls (or failed)
        self.all_ready = asyncio.Event()
        self.go = asyncio.Event()
        self.all_finished = asyncio.Event()
        self.close = asyncio.Event()

    def error(self, e: Exception) -> None:
        if isinstance(e, CallError):
            kind, detail = e.kind, e.detail
        else:  # transport errors: timeouts, refused or reset connections, pool exhausted
            kind, detail = type(e).__name__, (str(e) or repr(e))[:200]
        self.errors[kind] += 1
        self.example.setdefault(kind, detail)

    def mark_ready(self) -> None:
        self.ready += 1
        if self.ready == self.n:
            self.all_ready.set()

    def mark_finished(self) -> None:
        self.finished += 1
        if self.finished == self.n:
            self.all_finished.set()


class RawConn:
    """One agent's own HTTP/1.1 keep-alive connection, on asyncio streams: each request
    written in one piece, the reply read by Content-Length or by chunks. The default
    client: httpx2 spent ~6 ms of client CPU per call in a 1,000-connection pool (more
    than the server's ~1.7 ms) and ~60 ms to create a client per agent, so with it the
    bench mostly measured the client (BENCH_HTTP_CLIENT=httpx2 shows it)."""

    def __init__(self, addr: str):
        self.authority = addr
        host, port = addr.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, headers: dict, body: bytes = b"") -> tuple[int, dict, bytes]:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                return await self._request(method, headers, body)
        except BaseException:
            # A half-read reply leaves the connection unusable: start a fresh one.
            await self.aclose()
            raise

    async def _request(self, method: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"{method} /mcp HTTP/1.1", f"Host: {self.authority}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        r = self.reader
        status_line = await r.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split(None, 2)[1])
        hdrs: dict[str, str] = {}
        while (line := await r.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            hdrs[name.strip().lower()] = value.strip()
        if "content-length" in hdrs:
            data = await r.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while (size := int((await r.readline()).split(b";")[0], 16)) > 0:
                parts.append((await r.readexactly(size + 2))[:-2])
            while (await r.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            data = b"".join(parts)
        else:
            raise CallError("unframed reply", f"HTTP {status} without length or chunks")
        if hdrs.get("connection", "").lower() == "close":
            await self.aclose()
        return status, hdrs, data

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


class HttpxConn:
    """The same interface over one shared httpx2 pool (BENCH_HTTP_CLIENT=httpx2)."""

    def __init__(self, client: httpx2.AsyncClient, url: str):
        self.client, self.url = client, url

    async def request(self, method: str, headers: dict, body: bytes = b"") -> tuple[int, dict, bytes]:
        r = await self.client.request(method, self.url, content=body, headers=headers)
        return r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content

    async def aclose(self) -> None:
        pass


def httpx_pool(pool: int) -> httpx2.AsyncClient:
    # Bounded pool: `pool` connections at most, kept alive long enough (300 s) that
    # none is dropped while the others are still opening; every wait has a timeout.
    # trust_env=False: no proxy from the environment between us and loopback.
    return httpx2.AsyncClient(
        limits=httpx2.Limits(max_connections=pool, max_keepalive_connections=pool,
                             keepalive_expiry=300),
        timeout=httpx2.Timeout(REQUEST_TIMEOUT, pool=2 * REQUEST_TIMEOUT),
        trust_env=False)


async def rpc(conn, headers: dict, body: bytes, rid: int) -> tuple[dict, dict]:
    """POST one JSON-RPC request; its result and the reply's headers."""
    status, hdrs, data = await conn.request("POST", headers, body)
    return reply(status, hdrs.get("content-type", ""), data, rid), hdrs



async def timed_calls(conn, headers: dict, body, load: Load, ok: bool) -> None:
    """CALLS kv.read calls (none if opening failed), each timed; errors counted."""
    try:
        for rid in range(2, 2 + (CALLS if ok else 0)):
            t0 = time.perf_counter()
            result, _ = await rpc(conn, headers, body(rid), rid)
            check_kv_read(result)
            load.call_ms.append((time.perf_counter() - t0) * 1000)
    except Exception as e:  # noqa: BLE001 - counted and printed, the others go on
        load.error(e)

async def session_client(k: int, conn, load: Load) -> None:
    token = TOKENS[k % len(TOKENS)]
    headers = {**LEGACY_HEADERS, "X-MCPVault-Token": token}
    sid = None
    ok = False
    try:
        t0 = time.perf_counter()
        _, hdrs = await rpc(conn, headers, initialize_body(1), 1)
        sid = hdrs.get("mcp-session-id")
        if not sid:
            raise CallError("no session id", "initialize answered without Mcp-Session-Id")
        headers = {**headers, "Mcp-Session-Id": sid, "MCP-Protocol-Version": LEGACY}
        status, _, _ = await conn.request("POST", headers, INITIALIZED)
        if status != 202:
            raise CallError(f"HTTP {status}", "notifications/initialized not accepted")
        load.open_ms.append((time.perf_counter() - t0) * 1000)
        ok = True
    except Exception as e:  # noqa: BLE001 - counted and printed, the others go on
        load.error(e)
    load.mark_ready()
    await load.go.wait()
    await timed_calls(conn, headers, legacy_call_body, load, ok)
    load.mark_finished()
    # Every session stays open until all are done, so "open" memory is read with all
    # of them alive; then a clean DELETE, as a well-behaved client ends its session.
    await load.close.wait()
    if sid:
        try:
            status, _, _ = await conn.request("DELETE", {"Mcp-Session-Id": sid,
                                                         "MCP-Protocol-Version": LEGACY})
            if status not in (200, 202, 204):
                raise CallError(f"HTTP {status}", "DELETE of the session refused")
        except Exception as e:  # noqa: BLE001
            load.error(e)


async def stateless_client(k: int, conn, load: Load) -> None:
    token = TOKENS[k % len(TOKENS)]
    ok = False
    try:
        t0 = time.perf_counter()
        result, _ = await rpc(conn, MODERN_DISCOVER_HEADERS, discover_body(1), 1)
        if MODERN not in result.get("supportedVersions", []):
            raise CallError("discover", f"{MODERN} not in supportedVersions")
        load.open_ms.append((time.perf_counter() - t0) * 1000)
        ok = True
    except Exception as e:  # noqa: BLE001
        load.error(e)
    load.mark_ready()
    await load.go.wait()
    await timed_calls(conn, MODERN_CALL_HEADERS, lambda rid: modern_call_body(rid, token), load, ok)
    load.mark_finished()


async def prime(conns: list, width: int = 32) -> None:
    """One stateless kv.read per distinct token before the baseline: each subject's
    pipeline is built and each token verified once, so the per-session figure counts
    sessions, not subjects or token caches, and the timed calls are steady state (an
    agent calls with a token it has used before)."""
    todo = iter(range(len(TOKENS)))
    errors: list[str] = []

    async def worker(conn) -> None:
        for i in todo:
            try:
                result, _ = await rpc(conn, MODERN_CALL_HEADERS, modern_call_body(1, TOKENS[i]), 1)
                check_kv_read(result)
            except Exception as e:  # noqa: BLE001
                errors.append(str(e)[:200])

    await asyncio.gather(*(worker(c) for c in conns[:width]))
    if errors:
        raise BenchError(f"priming: {len(errors)} of {len(TOKENS)} failed, e.g. {errors[0]}")


async def run_load(name: str, client_fn) -> dict:
    srv = HttpServer(name)
    pool = httpx_pool(POOL) if CLIENT == "httpx2" else None
    try:

        def conns(n: int) -> list:
            return [HttpxConn(pool, srv.url) if pool else RawConn(srv.addr) for _ in range(n)]

        idle = srv.memory()
        primers = conns(32)
        await prime(primers)
        await asyncio.gather(*(c.aclose() for c in primers))
        # The priming connections are closed (the raw client's; an httpx2 pool keeps
        # them): the baseline holds no client connection.
        await asyncio.sleep(0.5)
        base = srv.memory()
        load = Load(CLIENTS)
        agents = conns(CLIENTS)
        tasks = [asyncio.create_task(client_fn(k, agents[k], load)) for k in range(CLIENTS)]
        out: dict = {}
        try:
            async with asyncio.timeout(PHASE_TIMEOUT):
                t0, c0 = time.perf_counter(), cpu(srv.p.pid)
                await load.all_ready.wait()
                out["open_s"] = time.perf_counter() - t0
                out["open_cpu"] = cpu_delta(c0, cpu(srv.p.pid))
                out["open"] = srv.memory()
                t0, c0 = time.perf_counter(), cpu(srv.p.pid)
                load.go.set()
                await load.all_finished.wait()
                out["calls_s"] = time.perf_counter() - t0
                out["calls_cpu"] = cpu_delta(c0, cpu(srv.p.pid))
                out["after_calls"] = srv.memory()
                load.close.set()
                await asyncio.gather(*tasks)
        except TimeoutError:
            load.errors["phase timeout"] += 1
            load.example.setdefault("phase timeout", f"(j) phase not done in {PHASE_TIMEOUT:.0f} s")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(c.aclose() for c in agents), return_exceptions=True)
            if pool is not None:
                await pool.aclose()
        await asyncio.sleep(0.5)
        out["after_close"] = srv.memory()
    finally:
        srv.close()
    out.update(idle=idle, base=base, calls_ok=len(load.call_ms),
               calls_wanted=CLIENTS * CALLS, errors=dict(load.errors), examples=load.example,
               call_p50=pct(load.call_ms, 50), call_p99=pct(load.call_ms, 99),
               open_p50=pct(load.open_ms, 50), open_p99=pct(load.open_ms, 99),
               opened=len(load.open_ms))
    return out


# ------------------------------------------------------------------- report --

def print_load(title: str, r: dict, opened_what: str, per_what: str) -> None:
    print(title)
    if "open_s" in r:
        print(f"      open: {r['opened']}/{CLIENTS} {opened_what} in {r['open_s']:.2f} s;"
              f" per client p50 {r['open_p50']:.1f} ms, p99 {r['open_p99']:.1f} ms")
    if "open_cpu" in r:
        c = r["open_cpu"]
        print(f"      CPU while opening: server {c['server_s']:.1f} s, OpenBao {c['openbao_s']:.1f} s,"
              f" client {c['client_s']:.1f} s (of {os.cpu_count()} cores x {r['open_s']:.1f} s)")
    if "calls_s" in r:
        print(f"      kv.read: p50 {r['call_p50']:.1f} ms, p99 {r['call_p99']:.1f} ms per call;"
              f" {r['calls_ok']}/{r['calls_wanted']} calls in {r['calls_s']:.2f} s ="
              f" {r['calls_ok'] / r['calls_s']:.0f} calls/s")
        c = r["calls_cpu"]
        print(f"      CPU during the calls: server {c['server_s']:.1f} s"
              f" ({c['server_s'] / r['calls_ok'] * 1000:.2f} ms a call), OpenBao {c['openbao_s']:.1f} s,"
              f" client {c['client_s']:.1f} s (of {os.cpu_count()} cores x {r['calls_s']:.1f} s)")
    n_err = sum(r["errors"].values())
    print(f"      errors: {n_err}" + ("" if not n_err else "  " + "; ".join(
        f"{k} x{v} (e.g. {r['examples'].get(k, '')})" for k, v in r["errors"].items())))
    b, idle = r["base"], r["idle"]
    print(f"      server memory (KiB): idle VmRSS {idle['vmrss_kib']}; primed (baseline) VmRSS"
          f" {b['vmrss_kib']}, VmHWM {b['vmhwm_kib']}")
    if "open" in r:
        o = r["open"]
        print(f"        {CLIENTS} {opened_what} open: VmRSS {o['vmrss_kib']}, VmHWM {o['vmhwm_kib']};"
              f" per {per_what} (open - baseline)/{CLIENTS}:"
              f" {(o['vmrss_kib'] - b['vmrss_kib']) / CLIENTS:.1f} KiB")
    if "after_calls" in r:
        a = r["after_calls"]
        print(f"        after the calls, still open: VmRSS {a['vmrss_kib']}, VmHWM {a['vmhwm_kib']};"
              f" per {per_what}: {(a['vmrss_kib'] - b['vmrss_kib']) / CLIENTS:.1f} KiB")
    c = r["after_close"]
    print(f"        all closed: VmRSS {c['vmrss_kib']}, VmHWM {c['vmhwm_kib']}")


def main() -> int:
    results: dict = {}
    t_all = time.monotonic()
    for sec in SECTIONS:
        t0 = time.monotonic()
        print(f"[bench] (j) {sec} ...", file=sys.stderr, flush=True)
        if sec == "j0":
            results[sec] = bench_sequential(SEQ)
        elif sec == "j1":
            results[sec] = asyncio.run(run_load("j1", session_client))
        elif sec == "j2":
            results[sec] = asyncio.run(run_load("j2", stateless_client))
        else:
            raise BenchError(f"unknown section {sec!r}")
        print(f"[bench] (j) {sec} done in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)

    print()
    client = (f"httpx2, one pool of {POOL} connections" if CLIENT == "httpx2"
              else f"one HTTP/1.1 keep-alive connection per agent ({CLIENTS})")
    print(f"(j) mcpvault-http, streamable HTTP on loopback; kv.read of one seeded secret;"
          f" {len(TOKENS)} distinct tokens (client k uses token k mod {len(TOKENS)}),"
          f" rate limits off; client: one Python asyncio process, raw JSON-RPC POSTs, {client}")
    if "j0" in results:
        r = results["j0"]
        stdio = r["rows"]["mcpvault-stdio kv.read (pipe)"]
        print(f"  (j0) one client, sequential, {r['calls']} calls per path after {r['warmup']} warm-up,"
              f" the paths alternated call by call (http.client, one kept-alive connection):")
        w = 42
        print(f"      {'':{w}}{'p50':>9}{'p99':>9}  p50/stdio  server CPU a call")
        for i, name in enumerate(r["order"]):
            row = r["rows"][name]
            cpu_ms = f"{row['cpu_ms']:>9.2f}ms" if i else f"{'(OpenBao)':>11}"
            print(f"      {name:{w}}{row['p50']:>7.2f}ms{row['p99']:>7.2f}ms{row['p50'] / stdio['p50']:>9.2f}  {cpu_ms}")
    if "j1" in results:
        print_load(f"  (j1) {CLIENTS} sessions ({LEGACY}): initialize + notifications/initialized, all open"
                   f" at once, then {CALLS} kv.read each (token in X-MCPVault-Token), then DELETE:",
                   results["j1"], "sessions", "session")
    if "j2" in results:
        print_load(f"  (j2) {CLIENTS} stateless clients ({MODERN}): server/discover, all at once, then"
                   f" {CALLS} kv.read each (token in _meta):",
                   results["j2"], "clients (connections, no session)", "client")
    print(f"      whole (j) in {time.monotonic() - t_all:.0f} s")
    if os.environ.get("BENCH_JSON_HTTP"):
        with open(os.environ["BENCH_JSON_HTTP"], "w") as f:
            json.dump(results, f, indent=2)
    n_err = sum(sum(results[s]["errors"].values()) for s in ("j1", "j2") if s in results)
    if n_err:
        print(f"[bench] (j) FAILED: {n_err} errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run(main)
