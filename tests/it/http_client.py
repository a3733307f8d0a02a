"""Drives mcpvault-http with the official MCP Python SDK, on both protocol generations:
`Client(url)` (2026-07-28, stateless; token in `_meta`) and `ClientSession` over
`streamable_http_client` (2025-11-25 sessions; token in a header). Prints one JSON
object with what each step saw; the tests in tests/it/ assert on it.

MH_MODE selects what it does:
- `tour` (default): MH_URL, TOKEN_A, TOKEN_B (two subjects), TOKEN_BAD (bad
  signature), TOKEN_NARROW (subject A, kv.read only), KV_PATH.
- `call`: one tools/call of TOOL with ARGS (JSON) and TOKEN in `_meta` on MH_URL;
  over https when MH_CA (a CA file) is given, with MH_CERT + MH_KEY as the client
  certificate. A failure to connect is reported (`error`), not raised.
- `revocation`: MH_URLS (comma list: replicas), TOKEN_PARENT, TOKEN_CHILD. Checks
  the child works on each, prints `ready`, waits for a line on stdin (the test
  revokes the child meanwhile), then calls each replica until the child is refused
  (at most MH_LIMIT seconds) and reports how long each took, and what the parent
  then gets.
"""

import asyncio
import json
import os
import ssl
import sys
import time

import httpx2
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

URL = os.environ.get("MH_URL", "")


def text(r) -> str:
    return r.content[0].text if r.content else ""


async def session(headers: dict, f):
    client = create_mcp_http_client(headers=headers)
    async with client:
        async with streamable_http_client(URL, http_client=client) as (read, write, *_):
            async with ClientSession(read, write) as s:
                init = await s.initialize()
                return await f(s, init)


def innermost(e: BaseException) -> BaseException:
    """The first leaf of an exception group (anyio wraps transport errors)."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return e


async def call() -> None:
    ca, cert, key = (os.environ.get(k) for k in ("MH_CA", "MH_CERT", "MH_KEY"))
    verify: ssl.SSLContext | bool = True
    if ca:
        verify = ssl.create_default_context(cafile=ca)
        if cert:
            verify.load_cert_chain(cert, key)
    client = httpx2.AsyncClient(verify=verify, timeout=httpx2.Timeout(30.0, read=300.0))
    try:
        async with client:
            async with Client(streamable_http_client(URL, http_client=client)) as c:
                r = await asyncio.wait_for(
                    c.call_tool(os.environ["TOOL"], json.loads(os.environ["ARGS"]),
                                meta={"token": os.environ["TOKEN"]}), 60)
        out = {"is_error": r.is_error, "text": text(r),
               "structured_content": r.structured_content}
    except Exception as e:  # noqa: BLE001 - the test asserts on what failed
        leaf = innermost(e)
        out = {"error": f"{type(leaf).__name__}: {leaf}"}
    print(json.dumps(out))


async def revocation() -> None:
    urls = os.environ["MH_URLS"].split(",")
    parent, child = os.environ["TOKEN_PARENT"], os.environ["TOKEN_CHILD"]
    limit = float(os.environ.get("MH_LIMIT", "10"))
    args = {"prefix": "none-here/"}
    out: dict = {"before": [], "took": [], "last": [], "parent_after": []}
    async with Client(urls[0]) as c0, Client(urls[1]) as c1:
        clients = [c0, c1]
        for c in clients:
            out["before"].append(text(await c.call_tool("kv.list", args, meta={"token": child})))
        print("ready", flush=True)
        # The test revokes the child, then writes a line.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        start = time.monotonic()
        for c in clients:
            last = ""
            while time.monotonic() - start < limit:
                last = text(await c.call_tool("kv.list", args, meta={"token": child}))
                if last == "denied: revoked":
                    break
                await asyncio.sleep(0.05)  # poll interval, as harness::poll_until
            out["took"].append(time.monotonic() - start)
            out["last"].append(last)
        for c in clients:
            r = await c.call_tool("kv.list", args, meta={"token": parent})
            out["parent_after"].append(text(r))
    print(json.dumps(out), flush=True)


async def tour() -> None:
    A, B = os.environ["TOKEN_A"], os.environ["TOKEN_B"]
    BAD, NARROW = os.environ["TOKEN_BAD"], os.environ["TOKEN_NARROW"]
    PATH = os.environ["KV_PATH"]
    out: dict = {}
    # 2026-07-28: token in _meta, two subjects on one process.
    async with Client(URL) as c:
        for who, tok in (("a", A), ("b", B)):
            r = await c.call_tool("kv.write", {"path": PATH, "data": {"owner": who}},
                                  meta={"token": tok})
            out[f"modern_write_{who}"] = {"is_error": r.is_error, "text": text(r)}
        r = await c.call_tool("kv.read", {"path": PATH})
        out["modern_no_token"] = text(r)
        r = await c.call_tool("kv.read", {"path": PATH}, meta={"token": BAD})
        out["modern_bad_token"] = text(r)

    # 2025-11-25 sessions: the token in a header.
    async def read(s, init):
        r = await s.call_tool("kv.read", {"path": PATH})
        return {"protocol": init.protocol_version,
                "data": (r.structured_content or {}).get("data"), "text": text(r)}

    out["legacy_x_header_a"] = await session({"X-MCPVault-Token": A}, read)
    out["legacy_bearer_b"] = await session({"Authorization": f"Bearer {B}"}, read)

    async def tools(s, init):
        return sorted(t.name for t in (await s.list_tools()).tools)

    out["legacy_narrow_tools"] = await session({"X-MCPVault-Token": NARROW}, tools)
    out["legacy_no_token_tools"] = len(await session({}, tools))
    print(json.dumps(out))


MODES = {"tour": tour, "call": call, "revocation": revocation}
asyncio.run(MODES[os.environ.get("MH_MODE", "tour")]())
