"""mcpvault: Biscuit capability tokens for MCP tools, on the mcpvault Rust core.

    from mcpvault import MCPVault, McpVaultError

    vault = MCPVault()
    priv, pub = vault.generate_keypair()
    token = vault.mint(priv, {"tools": ["db_query"], "ttl": 3600, "subject": "agent-1"})
    worker = vault.attenuate(token, pub, {"tools": ["db_query"], "ttl": 600})
    facts = vault.verify(worker, pub, {"requested_tool": "db_query"})

Every decision (signatures, expiry, tools, resources, delegation depth, revocation)
is made by the Rust core that the ``mcpvault-stdio`` server and the ``mcpvault`` CLI
use; this package only converts Python values. Denials raise :class:`McpVaultError`
whose ``reason`` is the same text the server prints after ``denied:``.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple, Union

from . import _native
from ._native import McpVaultError, __version__

__all__ = ["MCPVault", "McpVaultError", "__version__"]

Config = Mapping[str, Any]


class MCPVault:
    """Token operations. Stateless: verifiers are cached inside the native module
    per public key list, so repeated :meth:`verify` calls are cheap."""

    def generate_keypair(self) -> Tuple[str, str]:
        """A new Ed25519 root key pair as ``(private_key_hex, public_key_hex)``."""
        return _native.generate_keypair()

    def mint(self, private_key_hex: str, config: Optional[Config] = None) -> str:
        """Mint a token signed by the root private key.

        ``config`` keys: ``tools`` (list of tool names or families like ``"kv.*"``;
        omitted or ``None`` grants every tool), ``ttl`` (seconds, default 3600),
        ``issuer``, ``subject``, ``max_delegation_depth`` (default 3), ``resources``
        (``["kv:app/*"]`` or ``{"kv": ["app/*"]}``).
        """
        return _native.mint(private_key_hex, config)

    def attenuate(
        self,
        token: str,
        public_key_or_config: Union[str, Config, None] = None,
        config: Optional[Config] = None,
    ) -> str:
        """Append a narrowing block; no private key needed.

        ``attenuate(token, config)`` appends without checking the signature;
        ``attenuate(token, public_key_hex, config)`` refuses a token that does not
        verify under that key first. ``config`` keys: ``tools``, ``ttl``,
        ``resources``, ``max_delegation_depth`` (further delegations allowed).
        """
        if config is None and (
            public_key_or_config is None or isinstance(public_key_or_config, Mapping)
        ):
            return _native.attenuate(token, None, public_key_or_config)
        return _native.attenuate(token, public_key_or_config, config)

    def verify(
        self, token: str, public_key_hex: str, options: Config
    ) -> Dict[str, Any]:
        """Authorize one request; return the token's facts or raise McpVaultError.

        ``options`` keys: ``requested_tool`` (required), ``resource``
        (``"kv:app/db"``), ``subject`` (require this subject), ``revocation_list``
        (revoked ids, hex), ``now`` (unix seconds instead of the clock; for tests).
        ``public_key_hex`` may list several keys, comma-separated (rotation).

        Facts: ``tools``, ``tool_wildcard``, ``issuer``, ``subject``,
        ``delegation_depth``, ``max_delegation_depth``, ``expires_at``,
        ``resources``, ``revocation_ids``.
        """
        return _native.verify(token, public_key_hex, options)

    def inspect(self, token: str) -> Dict[str, Any]:
        """Read a token WITHOUT checking its signature (never use it to decide).

        Keys: ``block_count``, ``facts`` and ``checks`` (all blocks), ``blocks``
        (per block: ``facts``, ``rules``, ``checks``), ``revocation_ids`` (one per
        block; revoking the last one revokes this token and everything derived).
        """
        return _native.inspect(token)
