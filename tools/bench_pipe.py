"""A minimal JSON-RPC client for mcpvault-stdio over its pipes, shared by the bench
scripts that drive whole tool calls (bench_handles.py, bench_leases.py). A reply that
is an error or a tool error stops the bench: a fast failure must never be timed."""

from __future__ import annotations

import json
import subprocess


class Pipe:
    def __init__(self, server: str, env: dict, name: str):
        self.p = subprocess.Popen([server], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=env)
        assert self.p.stdin and self.p.stdout
        self.next_id = 0
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": name, "version": "1"}})
        self.p.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        self.p.stdin.flush()

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        i = self.next_id
        self.p.stdin.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method,
                                        "params": params}) + "\n").encode())
        self.p.stdin.flush()
        while True:
            msg = json.loads(self.p.stdout.readline())
            if msg.get("id") == i:
                return msg

    def call(self, tool: str, args: dict, token: str) -> dict:
        r = self.request("tools/call", {"name": tool, "arguments": args,
                                        "_meta": {"token": token}})
        res = r.get("result", {})
        if res.get("isError") or "error" in r:
            raise SystemExit(f"{tool} failed: {json.dumps(r)[:300]}")
        return res["structuredContent"]

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait(timeout=30)
