"""Building blocks for hand-made JWTs: forged, unsigned or tampered passports in tests."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization


def private_key(path: Path) -> Any:
    """Load an unencrypted PEM private key, such as an issuer's signing key."""
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def b64url(data: bytes) -> str:
    """Base64url without padding, as in a JWT's segments."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """The signing input of a JWT: its encoded header and claims, joined by a dot."""
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
