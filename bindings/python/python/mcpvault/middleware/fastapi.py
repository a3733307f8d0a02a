"""FastAPI guard for mcpvault capability tokens.

    from fastapi import FastAPI, Request
    from mcpvault.middleware.fastapi import MCPVaultAuth

    app = FastAPI()
    auth = MCPVaultAuth(public_key_hex=PUBLIC_KEY_HEX, revocation_list=[...])

    @app.post("/mcp")
    @auth.require_tool("db_query")
    async def handle(request: Request):
        facts = request.state.mcpvault_facts   # tools, issuer, subject, ...
        return {"result": "ok"}

The token is read from the ``X-MCPVault-Token`` header, then ``Authorization:
Bearer``, then the JSON-RPC body's ``params._meta.token``. No token: 401
``{"error": "missing_token", "reason": "no token"}``. Denied: 403 ``{"error":
"denied", "reason": ..., "code": ...}`` with the core's reason (``expired``,
``revoked``, ``bad signature``, ``tool not granted: db_query``, ...). The token is
never echoed.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from typing import Any, Awaitable, Callable, Iterable, List, Optional, Union

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .. import McpVaultError, _native

__all__ = ["MCPVaultAuth", "extract_token"]

TOKEN_HEADER = "X-MCPVault-Token"

# A resource for the route: fixed ("kv:app/db") or computed from the request.
ResourceSpec = Union[
    str, Callable[[Request], Union[Optional[str], Awaitable[Optional[str]]]], None
]

# The hidden parameter through which FastAPI hands the wrapper the Request.
_REQUEST_PARAM = "_mcpvault_request"


async def extract_token(request: Request) -> Optional[str]:
    """The token of a request: header, then bearer, then ``params._meta.token``."""
    token = request.headers.get(TOKEN_HEADER, "").strip()
    if token:
        return token
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    body = await request.body()
    if not body:
        return None
    try:
        meta = json.loads(body).get("params", {}).get("_meta", {})
        token = meta.get("token")
    except (ValueError, AttributeError, RecursionError):
        # Not JSON (or absurdly nested), or not a JSON-RPC object: no token there.
        return None
    if not isinstance(token, str) or not token.strip():
        return None
    return token.strip()


def _deny(status: int, error: str, reason: str, code: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        status_code=status,
        content={"error": error, "reason": reason, "code": code},
        headers=headers,
    )


def _is_request(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Request)


class MCPVaultAuth:
    """Verifies mcpvault tokens on FastAPI endpoints.

    Args:
        public_key_hex: the root public key (hex); several comma-separated during a
            key rotation.
        revocation_list: revoked ids (hex, as ``mcpvault revoke`` writes them).
        subject: if set, only tokens minted for this subject are accepted.
        clock: a function returning the current unix time (seconds), for tests;
            default the system clock.

    A bad key or revocation id raises :class:`McpVaultError` here, at start-up.
    """

    def __init__(
        self,
        public_key_hex: str,
        revocation_list: Optional[Iterable[str]] = None,
        subject: Optional[str] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        self._public_key_hex = public_key_hex
        self._subject = subject
        self._clock = clock
        self._revocation_list: List[str] = list(revocation_list or [])
        self._guard = _native.Guard(public_key_hex, self._revocation_list)

    @property
    def revocation_list(self) -> List[str]:
        return list(self._revocation_list)

    def set_revocation_list(self, revocation_list: Iterable[str]) -> None:
        """Replace the revoked ids; takes effect on the next request."""
        ids = list(revocation_list)
        guard = _native.Guard(self._public_key_hex, ids)
        self._revocation_list, self._guard = ids, guard

    async def check(
        self, request: Request, tool_name: str, resource: Optional[str] = None
    ) -> Union[dict, JSONResponse]:
        """Verify the request's token for ``tool_name``: the facts, or the error
        response to send. Sets ``request.state.mcpvault_facts`` on success."""
        token = await extract_token(request)
        if token is None:
            return _deny(401, "missing_token", "no token", "no_token")
        options: dict = {"requested_tool": tool_name}
        if resource is not None:
            options["resource"] = resource
        if self._subject is not None:
            options["subject"] = self._subject
        if self._clock is not None:
            options["now"] = self._clock()
        try:
            facts = self._guard.verify(token, options)
        except McpVaultError as exc:
            if not exc.denied:
                # A server-side mistake (e.g. a bad resource string): fail closed.
                return _deny(500, "server_error", exc.reason, exc.code)
            if exc.code == "no_token":
                return _deny(401, "missing_token", exc.reason, exc.code)
            return _deny(403, "denied", exc.reason, exc.code)
        request.state.mcpvault_facts = facts
        return facts

    def require_tool(
        self, tool_name: str, resource: ResourceSpec = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: the endpoint runs only for tokens that grant ``tool_name``
        (and ``resource``, ``"KIND:VALUE"`` or a function of the request, if given).

        Place it below ``@app.post(...)``. The endpoint needs no ``Request``
        parameter of its own; if it has one it gets the same request, with
        ``request.state.mcpvault_facts`` set.
        """

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            sig = inspect.signature(func)
            is_async = inspect.iscoroutinefunction(func)
            # Resolve string annotations (`from __future__ import annotations` in the
            # endpoint's module) here, so FastAPI never has to look them up in this
            # module's globals.
            try:
                hints = typing.get_type_hints(func, include_extras=True)
            except Exception:  # unresolvable annotations: leave them as they are
                hints = {}
            params = [
                p.replace(annotation=hints.get(p.name, p.annotation))
                for p in sig.parameters.values()
            ]
            # FastAPI injects the Request into one parameter only: reuse the
            # endpoint's own if it has one, else add a hidden keyword-only one.
            own = next((p.name for p in params if _is_request(p.annotation)), None)
            if own is None:
                extra = inspect.Parameter(
                    _REQUEST_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=Request
                )
                var_kw = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
                rest = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
                params = rest + [extra] + var_kw

            @functools.wraps(func)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                if own is None:
                    request: Request = kwargs.pop(_REQUEST_PARAM)
                else:
                    request = kwargs[own]
                res = resource(request) if callable(resource) else resource
                if inspect.isawaitable(res):
                    res = await res
                outcome = await self.check(request, tool_name, res)
                if isinstance(outcome, JSONResponse):
                    return outcome
                if is_async:
                    return await func(*args, **kwargs)
                return await run_in_threadpool(func, *args, **kwargs)

            # FastAPI reads this signature to decide what to inject.
            wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
                parameters=params,
                return_annotation=hints.get("return", sig.return_annotation),
            )
            return wrapper

        return decorator
