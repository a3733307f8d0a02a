"""MCPVaultAuth on a real FastAPI app (TestClient), against CLI-made tokens."""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from mcpvault import McpVaultError
from mcpvault.middleware.fastapi import MCPVaultAuth


class Call(BaseModel):
    method: str


def app_for(auth: MCPVaultAuth) -> TestClient:
    app = FastAPI()

    @app.post("/mcp")
    @auth.require_tool("db_query")
    async def handle(request: Request):
        facts = request.state.mcpvault_facts
        return {"result": "ok", "subject": facts["subject"], "depth": facts["delegation_depth"]}

    @app.post("/sync")
    @auth.require_tool("db_query")
    def handle_sync(call: Call):
        # No Request parameter, a body model, a plain function: all still work.
        return {"method": call.method}

    @app.get("/kv/{path:path}")
    @auth.require_tool("kv.read", resource=lambda req: f"kv:{req.path_params['path']}")
    async def read(path: str, request: Request):
        return {"path": path, "resources": request.state.mcpvault_facts["resources"]}

    return TestClient(app)


@pytest.fixture()
def client(cli) -> TestClient:
    return app_for(MCPVaultAuth(public_key_hex=cli.public_key))


def post(client: TestClient, token: str, path: str = "/mcp"):
    return client.post(path, headers={"X-MCPVault-Token": token}, json={"method": "tools/call"})


def test_header_token(client, cli):
    resp = post(client, cli.mint("db_query"))
    assert resp.status_code == 200
    assert resp.json() == {"result": "ok", "subject": "agent-1", "depth": 0}


def test_bearer_token(client, cli):
    resp = client.post("/mcp", headers={"Authorization": f"Bearer {cli.mint()}"})
    assert resp.status_code == 200


def test_jsonrpc_meta_token(client, cli):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "db_query", "_meta": {"token": cli.mint()}}}
    assert client.post("/mcp", json=body).status_code == 200


def test_missing_token_is_401(client):
    deep = b"[" * 100_000 + b"]" * 100_000
    for kwargs in ({}, {"json": {"params": {"_meta": {}}}}, {"content": b"not json"},
                   {"json": {"params": []}}, {"content": deep},
                   {"headers": {"X-MCPVault-Token": "  "}}):
        resp = client.post("/mcp", **kwargs)
        assert resp.status_code == 401, kwargs
        assert resp.json() == {"error": "missing_token", "reason": "no token", "code": "no_token"}
        assert resp.headers["WWW-Authenticate"] == "Bearer"


def test_wrong_tool_is_403(client, cli):
    resp = post(client, cli.mint("read_data"))
    assert resp.status_code == 403
    assert resp.json() == {
        "error": "denied", "reason": "tool not granted: db_query (token admits read_data)",
        "code": "tool_not_granted"
    }


def test_attenuated_tokens(client, cli):
    root = cli.mint("*")
    ok = post(client, cli.attenuate(root, "--tools", "db_query"))
    assert ok.status_code == 200 and ok.json()["depth"] == 1
    blocked = post(client, cli.attenuate(root, "--tools", "read_data"))
    assert blocked.status_code == 403 and blocked.json()["code"] == "tool_not_granted"


def test_expired_token_is_403(cli):
    token = cli.mint(ttl=60)
    later = app_for(MCPVaultAuth(public_key_hex=cli.public_key, clock=lambda: time.time() + 600))
    resp = post(later, token)
    assert resp.status_code == 403
    assert resp.json()["reason"] == "expired"


def test_revoked_token_is_403_and_revocation_is_live(cli):
    token = cli.mint()
    ids = cli.revoke(token, "fastapi-revoked.txt")
    auth = MCPVaultAuth(public_key_hex=cli.public_key, revocation_list=ids)
    client = app_for(auth)
    resp = post(client, token)
    assert (resp.status_code, resp.json()["reason"]) == (403, "revoked")
    auth.set_revocation_list([])
    assert post(client, token).status_code == 200
    auth.set_revocation_list(ids)
    assert post(client, token).status_code == 403
    assert auth.revocation_list == ids


def test_bad_signature_is_403(cli, vault, other_key):
    forged = vault.mint(other_key[0], {"tools": ["db_query"], "subject": "agent-1"})
    resp = post(app_for(MCPVaultAuth(public_key_hex=cli.public_key)), forged)
    assert resp.status_code == 403
    assert resp.json()["reason"] == "bad signature"
    # The token is never echoed back.
    assert forged not in resp.text


def test_subject_option(cli):
    auth = MCPVaultAuth(public_key_hex=cli.public_key, subject="agent-2")
    client = app_for(auth)
    resp = post(client, cli.mint(subject="agent-1"))
    assert resp.status_code == 403 and resp.json()["code"] == "wrong_subject"
    assert post(client, cli.mint(subject="agent-2")).status_code == 200


def test_sync_endpoint_with_body_model(client, cli):
    resp = post(client, cli.mint(), "/sync")
    assert resp.status_code == 200 and resp.json() == {"method": "tools/call"}
    assert post(client, cli.mint("other"), "/sync").status_code == 403


def test_resource_from_the_request(client, cli):
    token = cli.mint("kv.read", 3600, "agent-1", "--resource", "kv:app/*")
    resp = client.get("/kv/app/db", headers={"X-MCPVault-Token": token})
    assert resp.status_code == 200 and resp.json()["resources"] == ["kv:app/*"]
    resp = client.get("/kv/other/db", headers={"X-MCPVault-Token": token})
    assert resp.status_code == 403
    assert resp.json()["reason"] == "resource not granted: kv:other/db (token admits kv:app/*)"


def test_bad_configuration_fails_at_startup(cli):
    with pytest.raises(McpVaultError) as info:
        MCPVaultAuth(public_key_hex="not-a-key")
    assert info.value.code == "invalid_argument"
    with pytest.raises(McpVaultError):
        MCPVaultAuth(public_key_hex=cli.public_key, revocation_list=["xyz"])


def test_openapi_schema_hides_the_guard_parameter(client):
    schema = client.get("/openapi.json").json()
    params = schema["paths"]["/kv/{path}"]["get"].get("parameters", [])
    assert [p["name"] for p in params] == ["path"]
