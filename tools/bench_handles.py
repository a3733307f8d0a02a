#!/usr/bin/env python3
"""What keeping secrets out of the model costs, alternated call by call on one server
so host drift hits every variant alike:

  (h) kv.read whose values come back as handles (token without reveal) against the
      same read in clear (token with --reveal): the cost of issuing handles;
  (i) http.request to a loopback API of our own, against the same GET sent directly
      on one kept-alive connection (the floor), and http.request with a
      {{mcpvault:handle:...}} placeholder in a header against the same call with the
      value written out: the cost of a handle lookup and substitution.

Run by tools/bench.sh. Inputs from the environment:

  BENCH_SERVER_BIN     mcpvault-stdio
  BENCH_SERVER_ENV     JSON: the server's full environment
  BENCH_KV_PATH        the seeded secret (field `password`)
  BENCH_TOKEN_REVEAL   kv.read on it, revealing
  BENCH_TOKEN_SEALED   kv.read on it and http.request to the API, revealing nothing
  BENCH_API_PORT       the loopback port the API listens on (the token names it)
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import statistics
import threading
import time

from bench_pipe import Pipe

SERVER = os.environ["BENCH_SERVER_BIN"]
SERVER_ENV = dict(json.loads(os.environ["BENCH_SERVER_ENV"]))
SERVER_ENV["MCPVAULT_HTTP_ALLOW_NETS"] = "127.0.0.1/32"
KV_PATH = os.environ["BENCH_KV_PATH"]
REVEAL = os.environ["BENCH_TOKEN_REVEAL"]
SEALED = os.environ["BENCH_TOKEN_SEALED"]
N = int(os.environ.get("BENCH_HANDLES_N", "500"))


class Api(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        # One write for head and body: two small writes meet Nagle and the client's
        # delayed ACK and cost 40 ms, which would be the API's fault, not ours.
        body = b'{"ok":true}'
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.wfile.flush()

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    api = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["BENCH_API_PORT"])), Api)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    port = api.server_address[1]
    url = f"http://127.0.0.1:{port}/v1/ping"

    pipe = Pipe(SERVER, SERVER_ENV, "bench-handles")
    call = pipe.call

    def timed(f) -> float:
        t0 = time.perf_counter()
        f()
        return (time.perf_counter() - t0) * 1e6

    clear = call("kv.read", {"path": KV_PATH}, REVEAL)["data"]["password"]
    handle = call("kv.read", {"path": KV_PATH}, SEALED)["data"]["password"]
    assert handle.startswith("mcpvault:handle:") and handle != clear

    # (h) handles issued vs values in clear.
    sealed_us, clear_us = [], []
    for _ in range(N):
        sealed_us.append(timed(lambda: call("kv.read", {"path": KV_PATH}, SEALED)))
        clear_us.append(timed(lambda: call("kv.read", {"path": KV_PATH}, REVEAL)))

    # (i) http.request vs a direct GET; with a placeholder vs the value written out.
    direct = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def direct_get() -> None:
        direct.request("GET", "/v1/ping", headers={"Authorization": f"Bearer {clear}"})
        r = direct.getresponse()
        r.read()
        assert r.status == 200

    def via(auth: str) -> None:
        out = call("http.request", {"method": "GET", "url": url,
                                    "headers": {"Authorization": auth}}, SEALED)
        assert out["status"] == 200, out

    floor_us, plain_us, placeholder_us = [], [], []
    for _ in range(N):
        floor_us.append(timed(direct_get))
        plain_us.append(timed(lambda: via(f"Bearer {clear}")))
        placeholder_us.append(timed(lambda: via("Bearer {{" + handle + "}}")))
    pipe.close()
    api.shutdown()

    med = statistics.median
    print(f"(h) kv.read, {N} alternated pairs, median us:")
    print(f"      values in clear (token with --reveal)   {med(clear_us):9.1f}   <- floor")
    print(f"      values as handles (no reveal)           {med(sealed_us):9.1f}   "
          f"(x{med(sealed_us) / med(clear_us):.2f}, {med(sealed_us) - med(clear_us):+.1f} us)")
    print(f"(i) GET to a loopback API, {N} alternated triples, median us:")
    print(f"      direct, one kept-alive connection       {med(floor_us):9.1f}   <- floor")
    print(f"      http.request, value written out         {med(plain_us):9.1f}   "
          f"(x{med(plain_us) / med(floor_us):.2f})")
    print(f"      http.request, {{{{handle}}}} placeholder     {med(placeholder_us):9.1f}   "
          f"(x{med(placeholder_us) / med(floor_us):.2f}; lookup + substitution + redaction "
          f"{med(placeholder_us) - med(plain_us):+.1f} us over the value written out)")


if __name__ == "__main__":
    main()
