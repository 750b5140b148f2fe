"""Certificate pinning (a client trusts exactly the certificate on a node's card) and loopback."""

from __future__ import annotations

import hashlib
import ipaddress
import ssl

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from genofed.errors import InputError

__all__ = ["certificate_fingerprint", "is_loopback", "pinned_context"]


def pinned_context(certificate_pem: str) -> ssl.SSLContext:
    """Build an SSL context that accepts only a server presenting ``certificate_pem``."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cadata=certificate_pem)
    except ssl.SSLError as exc:
        raise InputError(f"the pinned certificate is not a valid PEM certificate: {exc}") from exc
    return context


def certificate_fingerprint(certificate_pem: str) -> str:
    """SHA-256 of the certificate's DER encoding, as colon-separated hex."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
