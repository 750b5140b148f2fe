"""A local passport broker and visa issuer: make keys, then sign GA4GH Passports.

An issuer directory, written by :func:`init_issuer`, holds::

    issuer.toml            the broker's and the visa issuer's URLs and key ids
    private-key.pem        the broker's ES256 signing key (mode 0600)
    visa-private-key.pem   the visa issuer's ES256 signing key (mode 0600)
    jwks.json              both public keys, each naming its issuer: the file nodes trust

The broker (LS-AAI's part) signs passports under the issuer URL; the visa
issuer (REMS's part) signs the ControlledAccessGrants visas inside them under
``<issuer URL>/rems``, as a data access committee's decision (``by: "dac"``).
Passports follow GA4GH Passport 1.2: a JWT with ``typ: vnd.ga4gh.passport+jwt``
whose ``ga4gh_passport_v1`` claim lists visa JWTs in compact serialization.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from genofed._files import atomic_directory
from genofed._toml import read_toml, write_toml
from genofed.aai import DEFAULT_ISSUER_URL
from genofed.errors import InputError

__all__ = [
    "Issuer",
    "init_issuer",
    "issue_passport",
    "read_issuer",
    "write_passport",
]

logger = logging.getLogger(__name__)

CONFIG, JWKS = "issuer.toml", "jwks.json"
BROKER_KEY, VISA_KEY = "private-key.pem", "visa-private-key.pem"
ALGORITHM = "ES256"
PASSPORT_TYPE, VISA_TYPE = "vnd.ga4gh.passport+jwt", "vnd.ga4gh.visa+jwt"
MAX_TTL = 366 * 24 * 3600
MAX_URL_LENGTH = 200  # visa URL claims may not exceed 255 characters; leave room for paths


@dataclass(frozen=True)
class Issuer:
    """A local issuer: where its files are, and the identities it signs under.

    Attributes
    ----------
    directory
        The issuer directory.
    issuer_url
        ``iss`` of the passports it signs (the broker).
    visa_issuer_url
        ``iss`` of the visas it signs (the visa issuer).
    source
        ``source`` of its visas: the organisation that granted access.
    broker_kid, visa_kid
        Key ids (RFC 7638 thumbprints) of the two signing keys.
    """

    directory: Path
    issuer_url: str
    visa_issuer_url: str
    source: str
    broker_kid: str
    visa_kid: str

    @property
    def config(self) -> Path:
        """``issuer.toml``."""
        return self.directory / CONFIG

    @property
    def jwks(self) -> Path:
        """``jwks.json``: the public keys nodes trust."""
        return self.directory / JWKS

    @property
    def broker_key(self) -> Path:
        """The broker's private key file."""
        return self.directory / BROKER_KEY

    @property
    def visa_key(self) -> Path:
        """The visa issuer's private key file."""
        return self.directory / VISA_KEY


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _public_jwk(key: ec.EllipticCurvePrivateKey, *, issuer: str) -> dict[str, str]:
    """Return the public half of ``key`` as a JWK, its RFC 7638 thumbprint as ``kid``."""
    numbers = key.public_key().public_numbers()
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    kid = _b64url(hashlib.sha256(canonical).digest())
    return {**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM, "iss": issuer}


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable and writable by its owner only (mode 0600)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issuer_url(url: str) -> str:
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username
        or len(url) > MAX_URL_LENGTH
        or not url.isprintable()
    ):
        raise InputError(
            f"issuer URL must be an https:// URL of at most {MAX_URL_LENGTH} characters, "
            f"without user, query or fragment, not {url[:MAX_URL_LENGTH]!r}; nothing was written"
        )
    return url.rstrip("/")


def init_issuer(out: Path, *, issuer_url: str = DEFAULT_ISSUER_URL, force: bool = False) -> Issuer:
    """Create a local issuer in ``out``: two fresh ES256 keys and the public ``jwks.json``.

    Parameters
    ----------
    out
        Directory to create; it must not exist or be empty unless ``force``.
    issuer_url
        The broker's ``iss``; visas are signed as ``<issuer_url>/rems``.
    force
        Replace an existing issuer (or other directory) in ``out``. Passports
        the old issuer signed will not verify against the new ``jwks.json``.

    Returns
    -------
    Issuer
        The new issuer.

    Raises
    ------
    InputError
        If the URL is not an https:// URL, or ``out`` holds an issuer or other
        files and ``force`` is false; nothing is written then.
    """
    out = Path(out)
    url = _issuer_url(issuer_url)
    if (out / CONFIG).exists() and not force:
        raise InputError(
            f"{out} already holds an issuer; pass --force to replace it, after which the "
            "passports it signed no longer verify (nothing was written)"
        )
    visa_url = f"{url}/rems"
    broker_key = ec.generate_private_key(ec.SECP256R1())
    visa_key = ec.generate_private_key(ec.SECP256R1())
    broker_jwk = _public_jwk(broker_key, issuer=url)
    visa_jwk = _public_jwk(visa_key, issuer=visa_url)
    issuer = Issuer(
        directory=out,
        issuer_url=url,
        visa_issuer_url=visa_url,
        source=f"{url}/dac",
        broker_kid=broker_jwk["kid"],
        visa_kid=visa_jwk["kid"],
    )
    document = {
        "jwks": JWKS,
        "broker": {
            "issuer": issuer.issuer_url,
            "kid": issuer.broker_kid,
            "algorithm": ALGORITHM,
            "key": BROKER_KEY,
        },
        "visa_issuer": {
            "issuer": issuer.visa_issuer_url,
            "kid": issuer.visa_kid,
            "algorithm": ALGORITHM,
            "key": VISA_KEY,
            "source": issuer.source,
        },
    }
    with atomic_directory(out, force=force) as staging:
        _write_private(staging / BROKER_KEY, _pem(broker_key))
        _write_private(staging / VISA_KEY, _pem(visa_key))
        (staging / JWKS).write_text(json.dumps({"keys": [broker_jwk, visa_jwk]}, indent=2) + "\n")
        write_toml(
            staging / CONFIG,
            document,
            comment="genofed local passport issuer: the broker (LS-AAI's part) signs passports,\n"
            "the visa issuer (REMS's part) signs ControlledAccessGrants visas.\n"
            f"Nodes trust {JWKS}; the private keys never leave this directory.",
        )
    logger.info("created issuer %s in %s", url, out)
    return issuer


def _text(document: Mapping[str, Any], table: str, key: str, config: Path) -> str:
    section = document.get(table)
    value = section.get(key) if isinstance(section, Mapping) else None
    if not isinstance(value, str) or not value:
        raise InputError(f"{config}: [{table}] {key} is missing or not a string")
    return value


def read_issuer(directory: Path) -> Issuer:
    """Read the issuer in ``directory``.

    Raises
    ------
    InputError
        If ``directory`` holds no ``issuer.toml`` or it lacks a field.
    """
    directory = Path(directory)
    config = directory / CONFIG
    if not config.is_file():
        raise InputError(
            f"{directory} holds no issuer ({CONFIG} is missing); "
            f"create one with: genofed aai init --out {directory}"
        )
    document = read_toml(config)
    for table, name in (("broker", BROKER_KEY), ("visa_issuer", VISA_KEY)):
        if _text(document, table, "key", config) != name:
            raise InputError(f"{config}: [{table}] key must be {name!r}")
    return Issuer(
        directory=directory,
        issuer_url=_text(document, "broker", "issuer", config),
        visa_issuer_url=_text(document, "visa_issuer", "issuer", config),
        source=_text(document, "visa_issuer", "source", config),
        broker_kid=_text(document, "broker", "kid", config),
        visa_kid=_text(document, "visa_issuer", "kid", config),
    )


def _private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise InputError(f"cannot read signing key {path}: {exc.strerror or exc}") from exc
    if mode & 0o077:
        logger.warning("signing key %s is readable by others (mode %o)", path, mode & 0o777)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise InputError(f"{path} is not an EC P-256 key, which {ALGORITHM} needs")
    return key


def _epoch(now: datetime | None) -> int:
    if now is None:
        now = datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError(f"now must be a timezone-aware datetime, not {now.isoformat()}")
    return int(now.timestamp())


def _sign(key: ec.EllipticCurvePrivateKey, payload: dict[str, Any], headers: dict[str, str]) -> str:
    return jwt.encode(payload, key, algorithm=ALGORITHM, headers=headers)


def issue_passport(
    issuer_dir: Path,
    *,
    user: str,
    grants: Sequence[str],
    ttl: int = 3600,
    now: datetime | None = None,
) -> str:
    """Sign a passport for ``user`` with one ControlledAccessGrants visa per dataset.

    Parameters
    ----------
    issuer_dir
        A directory written by :func:`init_issuer`.
    user
        The researcher's identifier, the passport's and each visa's ``sub``.
    grants
        Dataset ids (a node's ``dataset_id``, e.g. ``genofed:EE``) to grant;
        repeats are dropped.
    ttl
        Seconds until the passport and its visas expire.
    now
        Issue time (timezone-aware); the current time by default.

    Returns
    -------
    str
        The passport, a JWT in compact serialization. Its visas are asserted
        ``by: "dac"`` at issue time and expire with it.

    Raises
    ------
    InputError
        If the user, a grant or ``ttl`` is invalid, or the issuer's files are
        missing or unreadable.
    """
    issuer = read_issuer(issuer_dir)
    if not isinstance(user, str) or not user.strip() or len(user) > 255:
        raise InputError("a passport needs a user id of 1 to 255 characters; nothing was issued")
    if isinstance(grants, str):
        grants = [grants]
    datasets = list(dict.fromkeys(grants))
    if not datasets:
        raise InputError("a passport needs at least one dataset grant; nothing was issued")
    for dataset in datasets:
        if not isinstance(dataset, str) or not dataset or len(dataset) > 255:
            raise InputError(
                f"dataset id {dataset!r} must be a string of 1 to 255 characters; "
                "nothing was issued"
            )
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL:
        raise InputError(f"ttl must be 1 to {MAX_TTL:,} seconds, not {ttl!r}; nothing was issued")
    issued = _epoch(now)
    expires = issued + ttl
    visa_key, broker_key = _private_key(issuer.visa_key), _private_key(issuer.broker_key)
    visa_headers = {
        "typ": VISA_TYPE,
        "kid": issuer.visa_kid,
        # where the visa issuer publishes its keys; nodes never fetch it, they trust jwks.json
        "jku": f"{issuer.visa_issuer_url}/jwks.json",
    }
    visas = [
        _sign(
            visa_key,
            {
                "iss": issuer.visa_issuer_url,
                "sub": user,
                "iat": issued,
                "exp": expires,
                "jti": str(uuid.uuid4()),
                "ga4gh_visa_v1": {
                    "type": "ControlledAccessGrants",
                    "asserted": issued,
                    "value": dataset,
                    "source": issuer.source,
                    "by": "dac",
                },
            },
            visa_headers,
        )
        for dataset in datasets
    ]
    passport = {
        "iss": issuer.issuer_url,
        "sub": user,
        "iat": issued,
        "exp": expires,
        "jti": str(uuid.uuid4()),
        "ga4gh_passport_v1": visas,
    }
    logger.info("issued a passport for %d datasets, valid for %d s", len(datasets), ttl)
    return _sign(broker_key, passport, {"typ": PASSPORT_TYPE, "kid": issuer.broker_kid})


def write_passport(token: str, out: Path) -> Path:
    """Write a passport to ``out``, readable by its owner only (mode 0600).

    The file is written under a temporary name and renamed into place, so an
    existing passport is replaced whole or not at all.

    Raises
    ------
    InputError
        If ``out`` is a directory.
    """
    out = Path(out)
    if out.is_dir():
        raise InputError(f"passport path {out} is a directory; nothing was written")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.partial-{secrets.token_hex(4)}")
    try:
        _write_private(staging, token.encode("ascii"))
        staging.replace(out)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return out
