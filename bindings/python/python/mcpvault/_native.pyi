from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

__version__: str
INVALID_ARGUMENT: str

class McpVaultError(Exception):
    reason: str
    code: str
    denied: bool

def generate_keypair() -> Tuple[str, str]: ...
def mint(private_key_hex: str, config: Optional[Mapping[str, Any]] = None) -> str: ...
def attenuate(
    token: str, public_key_hex: Optional[str], config: Optional[Mapping[str, Any]] = None
) -> str: ...
def verify(
    token: str, public_key_hex: str, options: Optional[Mapping[str, Any]] = None
) -> Dict[str, Any]: ...
def inspect(token: str) -> Dict[str, Any]: ...

class Guard:
    def __init__(
        self, public_key_hex: str, revocation_list: Optional[Iterable[str]] = None
    ) -> None: ...
    def verify(
        self, token: str, options: Optional[Mapping[str, Any]] = None
    ) -> Dict[str, Any]: ...
