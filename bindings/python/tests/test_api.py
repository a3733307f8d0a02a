"""MCPVault API against tokens minted, attenuated and revoked by the Rust CLI."""

from __future__ import annotations

import base64
import json
import subprocess
import time

import pytest

from mcpvault import MCPVault, McpVaultError

HOUR = 3600


def denied(fn, *args) -> McpVaultError:
    with pytest.raises(McpVaultError) as info:
        fn(*args)
    return info.value


def test_generate_keypair_is_hex_ed25519(vault):
    priv, pub = vault.generate_keypair()
    for k in (priv, pub):
        assert len(k) == 64 and all(c in "0123456789abcdef" for c in k)
    assert vault.generate_keypair() != (priv, pub)


def test_cli_token_verifies_with_its_facts(vault, cli):
    token = cli.mint("db_query,kv.*")
    facts = vault.verify(token, cli.public_key, {"requested_tool": "db_query"})
    assert facts["tools"] == ["db_query", "kv.*"]
    assert facts["issuer"] == "test-issuer"
    assert facts["subject"] == "agent-1"
    assert facts["delegation_depth"] == 0
    assert facts["tool_wildcard"] is False
    assert facts["expires_at"].endswith("Z")
    assert facts["revocation_ids"] == vault.inspect(token)["revocation_ids"]
    # A family grant admits its members.
    vault.verify(token, cli.public_key, {"requested_tool": "kv.read"})


def test_wrong_tool_is_denied_with_the_core_reason(vault, cli):
    token = cli.mint("read_data")
    err = denied(vault.verify, token, cli.public_key, {"requested_tool": "db_query"})
    assert err.reason == "tool not granted: db_query (token admits read_data)" == str(err)
    assert err.code == "tool_not_granted"
    assert err.denied is True


def test_cli_attenuated_token_narrows(vault, cli):
    root = cli.mint("*")
    narrowed = cli.attenuate(root, "--tools", "db_query")
    facts = vault.verify(narrowed, cli.public_key, {"requested_tool": "db_query"})
    assert facts["delegation_depth"] == 1
    err = denied(vault.verify, narrowed, cli.public_key, {"requested_tool": "file_read"})
    assert err.code == "tool_not_granted"
    # The root token still grants everything.
    assert vault.verify(root, cli.public_key, {"requested_tool": "file_read"})["tool_wildcard"]


def test_attenuate_both_call_forms(vault, cli):
    root = cli.mint("db_query,file_read")
    with_key = vault.attenuate(root, cli.public_key, {"tools": ["db_query"], "ttl": 600})
    without_key = vault.attenuate(root, {"tools": ["db_query"]})
    for t in (with_key, without_key):
        vault.verify(t, cli.public_key, {"requested_tool": "db_query"})
        assert denied(vault.verify, t, cli.public_key, {"requested_tool": "file_read"}).code == (
            "tool_not_granted"
        )
    # The CLI accepts what the binding attenuated.
    out = cli.run("verify", "--token", with_key, "--pubkey", cli.public_key, "--tool", "db_query")
    assert json.loads(out)["delegation_depth"] == 1


def test_attenuate_with_the_wrong_key_refuses(vault, cli, other_key):
    err = denied(vault.attenuate, cli.mint(), other_key[1], {"tools": ["db_query"]})
    assert err.code == "bad_signature"


def test_expired_token_via_now(vault, cli):
    token = cli.mint(ttl=60)
    opts = {"requested_tool": "db_query"}
    vault.verify(token, cli.public_key, {**opts, "now": time.time() + 30})
    err = denied(vault.verify, token, cli.public_key, {**opts, "now": time.time() + HOUR})
    assert (err.code, err.reason) == ("expired", "expired")


def test_attenuated_ttl_expires_before_the_root(vault, cli):
    narrowed = cli.attenuate(cli.mint(ttl=HOUR), "--ttl", "60")
    later = {"requested_tool": "db_query", "now": time.time() + 120}
    assert denied(vault.verify, narrowed, cli.public_key, later).code == "expired"


def test_revoked_by_the_cli(vault, cli):
    root = cli.mint("db_query", HOUR, "agent-1")
    child = cli.attenuate(root, "--tools", "db_query")
    ids = cli.revoke(child, "child-revoked.txt")
    assert ids == [vault.inspect(child)["revocation_ids"][-1]]
    opts = {"requested_tool": "db_query", "revocation_list": ids}
    err = denied(vault.verify, child, cli.public_key, opts)
    assert (err.code, err.reason) == ("revoked", "revoked")
    # Revoking the child leaves its parent alive; revoking the root kills both.
    vault.verify(root, cli.public_key, opts)
    root_ids = cli.revoke(root, "root-revoked.txt")
    for t in (root, child):
        opts = {"requested_tool": "db_query", "revocation_list": root_ids}
        assert denied(vault.verify, t, cli.public_key, opts).code == "revoked"


def test_bad_signature(vault, cli, other_key):
    token = cli.mint()
    err = denied(vault.verify, token, other_key[1], {"requested_tool": "db_query"})
    assert (err.code, err.reason) == ("bad_signature", "bad signature")
    # Key rotation: a list of keys accepts a token signed by any of them.
    keys = f"{other_key[1]},{cli.public_key}"
    vault.verify(token, keys, {"requested_tool": "db_query"})


def test_tampered_and_malformed_tokens(vault, cli):
    raw = bytearray(base64.b64decode(cli.mint()))
    raw[len(raw) // 2] ^= 0x01
    tampered = base64.b64encode(bytes(raw)).decode()
    err = denied(vault.verify, tampered, cli.public_key, {"requested_tool": "db_query"})
    assert err.code in ("bad_signature", "malformed")
    garbage = base64.b64encode(b"\xde\xad\xbe\xef\x00\x11\x22").decode()
    err = denied(vault.verify, garbage, cli.public_key, {"requested_tool": "db_query"})
    assert err.code == "malformed"
    assert denied(vault.verify, "", cli.public_key, {"requested_tool": "x"}).code == "no_token"


def test_resources_and_subject(vault, cli):
    token = cli.mint("kv.*", HOUR, "agent-1", "--resource", "kv:app/*")
    vault.verify(token, cli.public_key, {"requested_tool": "kv.read", "resource": "kv:app/db"})
    err = denied(
        vault.verify, token, cli.public_key, {"requested_tool": "kv.read", "resource": "kv:other"}
    )
    assert (err.code, err.reason) == ("resource_not_granted", "resource not granted: kv:other (token admits kv:app/*)")
    vault.verify(token, cli.public_key, {"requested_tool": "kv.read", "subject": "agent-1"})
    err = denied(vault.verify, token, cli.public_key, {"requested_tool": "kv.read", "subject": "b"})
    assert err.code == "wrong_subject"


def test_non_ascii_input_is_a_value_or_an_error_never_a_panic(vault, cli):
    # Regression: "kv:é" raised PanicException (the core sliced a string inside a
    # character). Non-ASCII patterns are ordinary values; bad ones are invalid_argument.
    config = {"ttl": 600, "subject": "agént", "resources": ["kv:é", "transit:ключ*"]}
    token = vault.mint(cli.private_key, config)
    facts = vault.verify(
        token, cli.public_key, {"requested_tool": "kv.read", "resource": "kv:é", "subject": "agént"}
    )
    assert facts["resources"] == ["kv:é", "transit:ключ*"]
    vault.verify(token, cli.public_key, {"requested_tool": "x", "resource": "transit:ключ-1"})
    err = denied(vault.verify, token, cli.public_key, {"requested_tool": "x", "resource": "kv:éé"})
    assert (err.code, err.reason) == ("resource_not_granted", "resource not granted: kv:éé (token admits kv:é)")
    child = vault.attenuate(token, {"resources": ["kv:é*"], "tools": ["kv.*"]})
    vault.verify(child, cli.public_key, {"requested_tool": "kv.read", "resource": "kv:é"})
    for bad in ["kv:é*é", "kv:*é", "é:x", "é"]:
        for call in (lambda: vault.mint(cli.private_key, {"resources": [bad]}),
                     lambda: vault.attenuate(token, {"resources": [bad]})):
            err = denied(call)
            assert err.code == "invalid_argument" and "invalid resource" in err.reason
    err = denied(vault.mint, cli.private_key, {"tools": ["é"]})
    assert "invalid tool name" in err.reason
    err = denied(vault.verify, token, cli.public_key, {"requested_tool": "x", "resource": "é:x"})
    assert "invalid resource" in err.reason


def test_delegation_depth_cap(vault, cli):
    token = cli.mint("db_query", HOUR, "agent-1", "--max-delegation-depth", "0")
    child = vault.attenuate(token, {"tools": ["db_query"]})
    err = denied(vault.verify, child, cli.public_key, {"requested_tool": "db_query"})
    assert err.code == "delegation_too_deep"


def test_binding_minted_token_verifies_in_the_cli(vault, cli):
    token = vault.mint(
        cli.private_key,
        {"tools": ["db_query"], "ttl": 600, "subject": "agent-9", "resources": {"kv": "app/*"}},
    )
    out = cli.run(
        "verify", "--token", token, "--pubkey", cli.public_key, "--tool", "db_query",
        "--resource", "kv:app/x", "--subject", "agent-9",
    )
    assert json.loads(out)["resources"] == ["kv:app/*"]
    refused = subprocess.run(
        [str(cli.exe), "verify", "--token", token, "--pubkey", cli.public_key, "--tool", "x"],
        capture_output=True, text=True,
    )
    assert refused.returncode == 1 and "denied: tool not granted: x" in refused.stderr


def test_wildcard_mint_and_seed_style_config(vault):
    priv, pub = vault.generate_keypair()
    token = vault.mint(priv, {"tools": None, "ttl": 3600, "issuer": "me", "subject": "agent"})
    facts = vault.verify(token, pub, {"requested_tool": "anything"})
    assert facts["tool_wildcard"] is True and facts["issuer"] == "me"


def test_inspect(vault, cli):
    token = cli.mint("db_query")
    info = vault.inspect(token)
    assert info["block_count"] == 1
    assert any("db_query" in f for f in info["facts"])
    assert any("time(" in c for c in info["checks"])
    child = vault.attenuate(token, {"ttl": 60})
    info2 = vault.inspect(child)
    assert info2["block_count"] == 2 == len(info2["blocks"]) == len(info2["revocation_ids"])
    assert info2["revocation_ids"][0] == info["revocation_ids"][0]


@pytest.mark.parametrize(
    "config, needle",
    [
        ({"tool": ["x"]}, 'unknown mint config key "tool"'),
        ({"tools": []}, "empty tool list"),
        ({"tools": ["a b"]}, "invalid tool name"),
        ({"ttl": -1}, '"ttl" must be a non-negative integer'),
        ({"ttl": 0}, "ttl must be between"),
        ({"resources": ["vault:x"]}, "invalid resource"),
        ({"operations": [("db_query", "read")]}, "not supported"),
        ({"max_delegation_depth": 99}, "max delegation depth"),
    ],
)
def test_invalid_mint_config(vault, cli, config, needle):
    err = denied(vault.mint, cli.private_key, config)
    assert err.code == "invalid_argument" and err.denied is False
    assert needle in err.reason


def test_invalid_verify_arguments(vault, cli):
    token = cli.mint()
    for opts, needle in [
        ({}, "requested_tool"),
        ({"requested_tool": "db_query", "subjct": "a"}, "unknown verify options key"),
        ({"requested_tool": "db_query", "resource": "nope"}, "invalid resource"),
        ({"requested_tool": "db_query", "revocation_list": ["zz"]}, "not a hex id"),
        ({"requested_tool": "db_query", "now": float("nan")}, "now must be"),
    ]:
        err = denied(vault.verify, token, cli.public_key, opts)
        assert err.code == "invalid_argument" and needle in err.reason, (opts, err.reason)
    assert "invalid key" in denied(vault.verify, token, "abcd", {"requested_tool": "x"}).reason
    assert "invalid key" in denied(vault.mint, "not-hex", {}).reason


def test_verify_hits_the_cache(vault, cli):
    """Repeated verifies of one token reuse the cached verifier: far below a
    signature check each (~100 us even in release)."""
    token = cli.mint()
    opts = {"requested_tool": "db_query"}
    vault.verify(token, cli.public_key, opts)
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        vault.verify(token, cli.public_key, opts)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 1e-3, f"{per_call * 1e6:.0f} us per verify"


def test_module_surface():
    import mcpvault

    assert set(mcpvault.__all__) >= {"MCPVault", "McpVaultError"}
    assert issubclass(McpVaultError, Exception)
    assert McpVaultError.__module__ == "mcpvault"
    assert isinstance(MCPVault(), MCPVault)
