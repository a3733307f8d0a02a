"""Shared fixtures: a root key made by the Rust CLI (`mcpvault keygen`) and helpers
that mint, attenuate and revoke with the CLI, so the bindings are tested against
tokens they did not make themselves."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import List

import pytest

REPO = Path(__file__).resolve().parents[3]


def cli_path() -> Path:
    explicit = os.environ.get("MCPVAULT_CLI")
    if explicit:
        return Path(explicit)
    # A relative CARGO_TARGET_DIR is relative to the repository, where cargo ran.
    target = REPO / os.environ.get("CARGO_TARGET_DIR", "target")
    return target / "debug" / "mcpvault"


class Cli:
    """The `mcpvault` binary, with one key file."""

    def __init__(self, exe: Path, workdir: Path) -> None:
        self.exe = exe
        self.workdir = workdir
        self.key = workdir / "root.json"
        self.public_key = self.run("keygen", "--output", str(self.key))
        self.private_key = json.loads(self.key.read_text())["private_key"]

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [str(self.exe), *args], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise AssertionError(f"mcpvault {args[0]} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def mint(
        self, tools: str = "db_query", ttl: int = 3600, subject: str = "agent-1", *extra: str
    ) -> str:
        return self.run(
            "mint", "--key", str(self.key), "--tools", tools, "--ttl", str(ttl),
            "--subject", subject, "--issuer", "test-issuer", *extra,
        )

    def attenuate(self, token: str, *extra: str) -> str:
        return self.run("attenuate", "--token", token, "--pubkey", self.public_key, *extra)

    def revoke(self, token: str, name: str = "revoked.txt") -> List[str]:
        listing = self.workdir / name
        self.run("revoke", "--token", token, "--list", str(listing))
        return [l for l in listing.read_text().splitlines() if l.strip()]


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    exe = cli_path()
    if not exe.is_file():
        pytest.fail(f"{exe} not found: run `cargo build --bin mcpvault` (bindings/test.sh does)")
    return Cli(exe, tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="session")
def vault():
    from mcpvault import MCPVault

    return MCPVault()


@pytest.fixture(scope="session")
def other_key(vault):
    """A second root key pair: tokens it signs must not verify under the CLI's key."""
    return vault.generate_keypair()
