"""Drives mcpvault-http with the official MCP Python SDK, on both protocol generations:
`Client(url)` (2026-07-28, stateless; token in `_meta`) and `ClientSession` over
`streamable_http_client` (2025-11-25 sessions; token in a header). Prints one JSON
object with what each step saw; tests/it/http_server.rs asserts on it.

Inputs (environment): MH_URL, TOKEN_A, TOKEN_B (two subjects), TOKEN_BAD (bad
signature), TOKEN_NARROW (subject A, kv.read only), KV_PATH.
"""

import asyncio
import json
import os

from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

URL = os.environ["MH_URL"]
A, B = os.environ["TOKEN_A"], os.environ["TOKEN_B"]
BAD, NARROW = os.environ["TOKEN_BAD"], os.environ["TOKEN_NARROW"]
PATH = os.environ["KV_PATH"]


def text(r) -> str:
    return r.content[0].text if r.content else ""


async def session(headers: dict, f):
    client = create_mcp_http_client(headers=headers)
    async with client:
        async with streamable_http_client(URL, http_client=client) as (read, write, *_):
            async with ClientSession(read, write) as s:
                init = await s.initialize()
                return await f(s, init)


async def main() -> None:
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


asyncio.run(main())
