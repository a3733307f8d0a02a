#!/usr/bin/env python3
"""Confirmation client for tests/it/confirm.rs: the official MCP Python SDK calls one
tool of mcpvault-stdio whose token requires confirmation, in one scenario, and prints
one JSON line per call result: {"is_error", "text", "asked"} (asked: how many times
the elicitation callback ran).

Usage: confirm_client.py SCENARIO
  legacy-accept | legacy-decline | legacy-nocap | legacy-hang   (ClientSession +
      initialize(): 2025-11-25, the server sends elicitation/create)
  modern-accept | modern-decline | modern-nocap                 (Client(...), auto mode:
      2026-07-28, input-required result and retry, driven by the SDK)
  modern-tamper     (2026-07-28 driven by hand: an altered state, the state with other
      arguments, the right retry, then a replay of it)

Environment: CONFIRM_SERVER_BIN, CONFIRM_SERVER_ENV (JSON object), CONFIRM_TOKEN,
CONFIRM_TOOL, CONFIRM_ARGS (JSON object), CONFIRM_OTHER_ARGS (JSON object, tamper).
The server's stderr goes to CONFIRM_SERVER_STDERR (default: discarded).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp import types as T
from mcp.client.client import Client
from mcp.client.stdio import stdio_client

SERVER = os.environ["CONFIRM_SERVER_BIN"]
SERVER_ENV = json.loads(os.environ["CONFIRM_SERVER_ENV"])
TOKEN = os.environ["CONFIRM_TOKEN"]
TOOL = os.environ["CONFIRM_TOOL"]
ARGS = json.loads(os.environ["CONFIRM_ARGS"])
OTHER_ARGS = json.loads(os.environ.get("CONFIRM_OTHER_ARGS", "{}"))
STDERR_FILE = os.environ.get("CONFIRM_SERVER_STDERR", os.devnull)
META = {"token": TOKEN}

asked = 0


def report(result) -> None:
    if isinstance(result, T.InputRequiredResult):
        print(json.dumps({"input_required": True, "asked": asked}), flush=True)
        return
    text = " ".join(getattr(c, "text", "") for c in result.content)
    print(json.dumps({"is_error": bool(result.is_error), "text": text, "asked": asked}), flush=True)


def answering(action: str | None):
    """An elicitation callback that answers `action` (None: never answers)."""

    async def callback(context, params):
        global asked
        asked += 1
        if action is None:
            await anyio.Event().wait()
        return T.ElicitResult(action=action)

    return callback


def params() -> StdioServerParameters:
    return StdioServerParameters(command=SERVER, args=[], env=SERVER_ENV)


async def legacy(action: str | None, declare: bool) -> None:
    callback = answering(action) if declare else None
    with open(STDERR_FILE, "a") as errlog:
        async with stdio_client(params(), errlog=errlog) as (read, write):
            async with ClientSession(read, write, elicitation_callback=callback) as session:
                init = await session.initialize()
                assert init.protocol_version <= "2025-11-25", init.protocol_version
                report(await session.call_tool(TOOL, ARGS, meta=META))


async def modern(action: str, declare: bool) -> None:
    client = Client(params(), elicitation_callback=answering(action) if declare else None)
    async with client:
        assert client.session.protocol_version == "2026-07-28", client.session.protocol_version
        report(await client.call_tool(TOOL, ARGS, meta=META))


async def tamper() -> None:
    client = Client(params(), elicitation_callback=answering("accept"))
    async with client:
        s = client.session
        assert s.protocol_version == "2026-07-28", s.protocol_version
        first = await s.call_tool(TOOL, ARGS, meta=META, allow_input_required=True)
        report(first)
        assert isinstance(first, T.InputRequiredResult), first
        state = first.request_state
        (key,) = first.input_requests.keys()
        accept = {key: T.ElicitResult(action="accept")}

        async def retry(args, st):
            return await s.call_tool(
                TOOL, args, meta=META, input_responses=accept, request_state=st, allow_input_required=True
            )

        # One character of the sealed body changed (the middle of it, not the tag).
        mid = len(state) // 2
        altered = state[:mid] + ("A" if state[mid] != "A" else "B") + state[mid + 1 :]
        report(await retry(ARGS, altered))
        report(await retry(OTHER_ARGS, state))
        report(await retry(ARGS, state))
        report(await retry(ARGS, state))


async def main() -> int:
    scenario = sys.argv[1]
    match scenario:
        case "legacy-accept":
            await legacy("accept", True)
        case "legacy-decline":
            await legacy("decline", True)
        case "legacy-nocap":
            await legacy("accept", False)
        case "legacy-hang":
            await legacy(None, True)
        case "modern-accept":
            await modern("accept", True)
        case "modern-decline":
            await modern("decline", True)
        case "modern-nocap":
            await modern("accept", False)
        case "modern-tamper":
            await tamper()
        case _:
            print(f"unknown scenario {scenario}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
