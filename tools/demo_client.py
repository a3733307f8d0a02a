#!/usr/bin/env python3
"""End-to-end demo client for mcpvault-stdio, driven by the official MCP Python SDK.

Run by tools/demo.sh, which starts the dev stack, builds the binaries and mints the
tokens. Inputs come from the environment (never argv, so tokens stay out of `ps`):

  DEMO_SERVER_BIN     path of mcpvault-stdio
  DEMO_CLI_BIN        path of mcpvault (token CLI), used for `revoke`
  DEMO_TOKEN          agentA token: kv.*, transit.*, kms.* on kv:app/*, transit:app-*, kms:alias/app
  DEMO_TOKEN_RO       DEMO_TOKEN attenuated to kv.read
  DEMO_TOKEN_AGENTB   a token minted for subject agentB
  DEMO_SERVER_ENV     JSON object: the server's environment (SUBJECT, key, Vault, AWS, ...)
  DEMO_REVOCATION_FILE, DEMO_AUDIT_LOG, DEMO_SERVER_STDERR  files the server uses
  DEMO_BAO_AUDIT_LOG  OpenBao's file audit device (to show denied calls never reached it)

Every step states what it expects; the script exits 1 when any expectation fails, so
the demo doubles as an end-to-end check. Tokens and secret values are never printed in
full.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

FAILURES: list[str] = []
PASSED = 0
# Authorization headers the demo's own loopback API received.
API_SEEN: list[str] = []


def start_api(port: int) -> None:
    """A loopback HTTP API of the demo's own: records the Authorization header it gets
    and echoes it back, as a careless API might (mcpvault redacts the echo)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            auth = self.headers.get("Authorization", "")
            API_SEEN.append(auth)
            body = json.dumps({"you_sent": auth}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()


def short(secret: str, n: int = 12) -> str:
    return secret[:n] + "…" if len(secret) > n else secret


def heading(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def expect(ok: bool, what: str, detail: str = "") -> bool:
    global PASSED
    mark = "ok  " if ok else "FAIL"
    print(f"  [{mark}] {what}{': ' + detail if detail else ''}", flush=True)
    if ok:
        PASSED += 1
    else:
        FAILURES.append(what)
    return ok


class Result:
    """A tools/call outcome: the SDK result, or the exception the SDK raised."""

    def __init__(self, res: Any = None, exc: BaseException | None = None):
        self.res = res
        self.exc = exc

    @property
    def is_error(self) -> bool:
        return self.exc is not None or bool(getattr(self.res, "is_error", False))

    @property
    def text(self) -> str:
        if self.exc is not None:
            return f"{type(self.exc).__name__}: {self.exc}"
        parts = [c.text for c in (self.res.content or []) if getattr(c, "type", "") == "text"]
        return "\n".join(parts)

    @property
    def structured(self) -> dict:
        if self.exc is not None or self.res is None:
            return {}
        return self.res.structured_content or {}


async def call(session: ClientSession, tool: str, args: dict, token: str | None) -> Result:
    meta = {"token": token} if token is not None else None
    try:
        res = await session.call_tool(tool, args, read_timeout_seconds=30, meta=meta)
        return Result(res)
    except Exception as e:  # an SDK-side failure (e.g. output schema mismatch) is a finding
        return Result(exc=e)


def show_call(tool: str, args: dict, who: str) -> None:
    def shown_value(k, v):
        if k in ("data", "plaintext"):
            return "<redacted>"
        if isinstance(v, str) and len(v) > 32:
            return short(v, 24)
        return v

    shown = {k: shown_value(k, v) for k, v in args.items()}
    print(f"  -> {tool} {json.dumps(shown, ensure_ascii=False)}  (token: {who})", flush=True)


async def expect_ok(session, tool, args, token, who, what) -> Result:
    show_call(tool, args, who)
    r = await call(session, tool, args, token)
    expect(not r.is_error, what, "" if not r.is_error else r.text[:300])
    return r


async def expect_denied(session, tool, args, token, who, reason, what) -> Result:
    show_call(tool, args, who)
    r = await call(session, tool, args, token)
    first = r.text.splitlines()[0] if r.text else ""
    expect(
        r.exc is None and r.is_error and first.startswith("denied: " + reason),
        what,
        f"isError={r.is_error}, {first[:200]!r}",
    )
    return r


def b64(s: bytes) -> str:
    return base64.b64encode(s).decode()


async def main() -> int:
    server_bin = os.environ["DEMO_SERVER_BIN"]
    cli_bin = os.environ["DEMO_CLI_BIN"]
    token = os.environ["DEMO_TOKEN"]
    token_ro = os.environ["DEMO_TOKEN_RO"]
    token_b = os.environ["DEMO_TOKEN_AGENTB"]
    server_env = json.loads(os.environ["DEMO_SERVER_ENV"])
    revocation_file = os.environ["DEMO_REVOCATION_FILE"]
    audit_log = os.environ["DEMO_AUDIT_LOG"]
    stderr_path = os.environ["DEMO_SERVER_STDERR"]
    subject = server_env["SUBJECT"]
    start_api(int(os.environ["DEMO_API_PORT"]))
    secret_value = "s3cr3t-" + os.urandom(6).hex()
    plaintext = b"attack at dawn " + os.urandom(4).hex().encode()

    heading("Spawning mcpvault-stdio with the official MCP Python SDK")
    print(f"  server : {server_bin}")
    print(f"  SUBJECT={subject}  VAULT_ADDR={server_env.get('VAULT_ADDR')}  "
          f"auth={'AppRole' if 'VAULT_ROLE_ID' in server_env else 'token'}")
    print(f"  tokens : full={short(token)}  read-only={short(token_ro)}  agentB={short(token_b)}")

    params = StdioServerParameters(command=server_bin, args=[], env=server_env)
    with open(stderr_path, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                t0 = time.perf_counter()
                init = await session.initialize()
                dt = (time.perf_counter() - t0) * 1000
                info = init.server_info
                expect(True, "initialize",
                       f"{info.name} {info.version}, protocol {init.protocol_version}, {dt:.1f} ms")

                heading("tools/list")
                tools = (await session.list_tools()).tools
                names = sorted(t.name for t in tools)
                print(f"  {len(names)} tools: {', '.join(names)}")
                for t in tools:
                    if t.name in ("kv.read", "kv.write"):
                        ann = t.annotations
                        print(f"    {t.name}: readOnlyHint={getattr(ann, 'read_only_hint', None)} "
                              f"destructiveHint={getattr(ann, 'destructive_hint', None)} "
                              f"outputSchema={'yes' if t.output_schema else 'no'}")
                for need in ("kv.read", "kv.write", "transit.encrypt", "transit.decrypt"):
                    expect(need in names, f"server offers {need}")

                heading("KV: write then read a secret in agentA's namespace (full token)")
                path = "app/demo-db"
                if "kv.write" in names:
                    r = await expect_ok(session, "kv.write",
                                        {"path": path, "data": {"username": "app", "password": secret_value}},
                                        token, "full", "kv.write app/demo-db")
                    if not r.is_error:
                        print(f"     version={r.structured.get('version')}")
                r = await expect_ok(session, "kv.read", {"path": path}, token, "full", "kv.read app/demo-db")
                if not r.is_error:
                    data = r.structured.get("data") or {}
                    expect(data.get("password") == secret_value, "read back the value written",
                           f"keys={sorted(data)}, version={r.structured.get('version')}, "
                           f"password={short(str(data.get('password', '')), 4)}")

                heading("Transit: encrypt / decrypt with key app-aes")
                if "transit.encrypt" in names:
                    r = await expect_ok(session, "transit.encrypt",
                                        {"key": "app-aes", "plaintext": b64(plaintext)},
                                        token, "full", "transit.encrypt")
                    ct = r.structured.get("ciphertext", "")
                    if ct:
                        print(f"     ciphertext={short(ct, 20)}")
                        r = await expect_ok(session, "transit.decrypt",
                                            {"key": "app-aes", "ciphertext": ct},
                                            token, "full", "transit.decrypt")
                        got = r.structured.get("plaintext", "")
                        expect(got and base64.b64decode(got) == plaintext, "decrypt gives back the plaintext")

                heading("Denials: nothing reaches Vault")
                await expect_denied(session, "kv.write", {"path": path, "data": {"x": "y"}}, token_ro,
                                    "read-only", "tool not granted",
                                    "attenuated (kv.read only) token cannot kv.write")
                r = await expect_ok(session, "kv.read", {"path": path}, token_ro, "read-only",
                                    "attenuated token can still kv.read app/")
                if not r.is_error:
                    pw = str((r.structured.get("data") or {}).get("password", ""))
                    expect(pw.startswith("mcpvault:handle:") and secret_value not in str(r.structured),
                           "without reveal (--reveal none) the value is a handle, never the secret",
                           f"password={pw[:24]}…")
                await expect_denied(session, "kv.read", {"path": "billing/key"}, token, "full",
                                    "resource not granted",
                                    "path outside app/ (token limited to kv:app/*)")
                await expect_denied(session, "transit.encrypt",
                                    {"key": "other-aes", "plaintext": b64(b"x")}, token, "full",
                                    "resource not granted",
                                    "transit key outside transit:app-*")
                await expect_denied(session, "kv.read", {"path": path}, token_b, "agentB",
                                    "wrong subject", "agentB's token at agentA's server")
                show_call("kv.read", {"path": "../agentB/app/x"}, "full")
                r = await call(session, "kv.read", {"path": "../agentB/app/x"}, token)
                expect(r.exc is None and r.is_error and ("denied" in r.text or "invalid" in r.text),
                       "escaping the namespace with '..' is refused", r.text[:200])
                await expect_denied(session, "kv.read", {"path": path}, None, "none", "no token",
                                    "a call without a token")
                await expect_denied(session, "kv.read", {"path": path}, token[:-8] + "AAAAAAA=", "tampered",
                                    "", "a tampered token")

                heading("Live revocation (no restart)")
                print(f"  revocation file: {revocation_file}")
                proc = subprocess.run([cli_bin, "revoke", "--token", "-", "--list", revocation_file],
                                      input=token_ro, capture_output=True, text=True, timeout=30)
                expect(proc.returncode == 0, "mcpvault revoke --token - --list FILE",
                       f"exit {proc.returncode} {proc.stderr.strip()[:200]}")
                with open(revocation_file) as f:
                    ids = [l.strip() for l in f if l.strip() and not l.startswith("#")]
                print(f"  file now lists {len(ids)} id(s): {', '.join(short(i, 16) for i in ids)}")
                t0 = time.monotonic()
                denied = None
                while time.monotonic() - t0 < 10:
                    r = await call(session, "kv.read", {"path": path}, token_ro)
                    if r.is_error and r.text.startswith("denied: revoked"):
                        denied = r
                        break
                    await asyncio.sleep(0.1)
                waited = time.monotonic() - t0
                show_call("kv.read", {"path": path}, "read-only, revoked")
                expect(denied is not None, "revoked token is refused by the running server",
                       f"{(denied.text if denied else r.text)[:120]!r} after {waited:.2f} s")
                await expect_ok(session, "kv.read", {"path": path}, token, "full",
                                "the parent token is not revoked and still works")

                heading("AWS KMS (moto)")
                if "kms.encrypt" in names and "kms.decrypt" in names:
                    r = await expect_ok(session, "kms.encrypt",
                                        {"key_id": "alias/app", "plaintext": b64(plaintext),
                                         "encryption_context": {"tenant": subject}},
                                        token, "full", "kms.encrypt with alias/app")
                    ct = r.structured.get("ciphertext", "")
                    if ct:
                        print(f"     ciphertext={short(ct, 20)} key_id={r.structured.get('key_id')}")
                        r = await expect_ok(session, "kms.decrypt",
                                            {"key_id": "alias/app", "ciphertext": ct,
                                             "encryption_context": {"tenant": subject}},
                                            token, "full", "kms.decrypt")
                        got = r.structured.get("plaintext", "")
                        expect(bool(got) and base64.b64decode(got) == plaintext,
                               "KMS decrypt gives back the plaintext")
                    await expect_denied(session, "kms.encrypt",
                                        {"key_id": "alias/other", "plaintext": b64(b"x")}, token, "full",
                                        "resource not granted", "KMS key outside kms:alias/app")
                else:
                    print("  the server offers no kms.encrypt/kms.decrypt yet: KMS part not shown")

                heading("Secrets without exposure: call an API with a key the agent never sees")
                token_api = os.environ["DEMO_TOKEN_API"]
                api = os.environ["DEMO_API_URL"]
                r = await expect_ok(session, "kv.read", {"path": path}, token_api, "api",
                                    "kv.read with a token that reveals nothing")
                handle = str((r.structured.get("data") or {}).get("password", ""))
                expect(handle.startswith("mcpvault:handle:") and secret_value not in str(r.structured),
                       "the password comes back as a handle", f"password={handle[:24]}…")
                r = await expect_ok(session, "http.request",
                                    {"method": "GET", "url": f"{api}/v1/whoami",
                                     "headers": {"Authorization": "Bearer {{" + handle + "}}"}},
                                    token_api, "api", "http.request with {{handle}} in a header")
                seen = API_SEEN[-1] if API_SEEN else ""
                expect(seen == f"Bearer {secret_value}",
                       "the API received the real secret (server-side substitution)",
                       f"the API saw 'Bearer ' + {len(seen) - 7} characters, equal to the stored value")
                body = str(r.structured.get("body", ""))
                expect(secret_value not in str(r.structured) and "[redacted]" in body,
                       "the API's echo of the secret comes back [redacted]", body[:80])
                await expect_denied(session, "http.request", {"method": "GET", "url": f"{api}/admin"},
                                    token_api, "api", "resource not granted",
                                    "a URL outside the token's http: pattern")

    heading("What the server wrote outside stdout")
    leaks = []
    for label, p in (("audit log", audit_log), ("stderr", stderr_path)):
        try:
            text = open(p, encoding="utf-8", errors="replace").read()
        except FileNotFoundError:
            text = ""
        lines = [l for l in text.splitlines() if l.strip()]
        print(f"  {label}: {p} ({len(lines)} lines)")
        for needle, name in ((token, "full token"), (token_ro, "read-only token"),
                             (os.environ["DEMO_TOKEN_API"], "api token"),
                             (token_b, "agentB token"), (secret_value, "secret value"),
                             (b64(plaintext), "plaintext")):
            if needle and needle in text:
                leaks.append(f"{name} in {label}")
        if label == "audit log" and lines:
            try:
                ev = json.loads(lines[-1])
                print(f"  last audit event keys: {', '.join(sorted(ev))}")
            except ValueError:
                print(f"  last audit line is not JSON: {lines[-1][:80]!r}")
    expect(not leaks, "no token, secret value or plaintext in the audit log or stderr",
           ", ".join(leaks))

    bao_audit = os.environ.get("DEMO_BAO_AUDIT_LOG")
    if bao_audit:
        heading("OpenBao's own audit device: what reached Vault")
        text = open(bao_audit, encoding="utf-8", errors="replace").read()
        ns = f"secret/data/mcp/{subject}/"
        hits = text.count(f'"path":"{ns}app/demo-db"')
        expect(hits > 0, f"allowed calls reached OpenBao ({ns}app/demo-db)", f"{hits} audit entries")
        for p, why in ((f"{ns}billing/key", "path outside the token's kv:app/*"),
                       ("transit/encrypt/other-aes", "transit key outside transit:app-*"),
                       ("secret/data/mcp/agentB/", "another subject's namespace")):
            n = text.count(f'"path":"{p}')
            expect(n == 0, f"denied call never reached OpenBao: {p} ({why})", f"{n} audit entries")

    heading("Result")
    print(f"  {PASSED} expectations met, {len(FAILURES)} failed")
    for f in FAILURES:
        print(f"  FAILED: {f}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
