"""Verify GA4GH Passports: the first check a node makes on every request.

A node answers a request only for a passport (GA4GH Passport 1.2 under the
AAI OIDC profile 1.2) that

* is a JWT of type ``vnd.ga4gh.passport+jwt``, signed with an allowed
  algorithm (ES256, EdDSA or RS256; never ``none``, never HMAC) by a broker
  whose key the node trusts;
* is inside its ``iat``, ``nbf`` and ``exp`` window, give or take the clock skew;
* carries a ControlledAccessGrants visa whose ``value`` is the node's dataset
  id. That visa is a JWT of its own, and it must be signed by a trusted visa
  issuer, be unexpired, be for the passport's subject, have been asserted in
  the past, say ``by`` whom it was granted, and carry no ``conditions``: a
  node evaluates none, so the Passport specification requires it to refuse
  any visa that has them. Visas the request does not need are ignored.

Trust comes only from the JWKS documents the operator configures: a node never
fetches a key and ignores ``jku``, ``x5u`` and ``jwk`` headers. Each key names
the issuer it signs for in an ``iss`` member, or the document names one issuer
for all its keys in a top-level ``issuer`` member::

    {"keys": [{"kty": "EC", "crv": "P-256", "x": "...", "y": "...",
               "kid": "...", "alg": "ES256", "iss": "https://aai.genofed.test"}]}

Every refusal is an :class:`~genofed.errors.AuthError` naming the reason. Its
status is 401 when the passport, or the visa for the dataset, is missing,
malformed, forged, signed by an untrusted party, expired or not yet valid;
and 403 when a genuine passport grants no access to the dataset: it has no
visa for it, or that visa lacks ``by``, has ``conditions`` or is for another
subject. Messages never repeat a token.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from genofed.errors import AuthError, InputError

__all__ = [
    "ALLOWED_ALGORITHMS",
    "DEFAULT_CLOCK_SKEW",
    "PassportVerifier",
    "Principal",
    "bearer_token",
]

logger = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("ES256", "EdDSA", "RS256")
DEFAULT_CLOCK_SKEW = 60
MAX_TOKEN_CHARS = 256 * 1024
MIN_RSA_BITS = 2048

PASSPORT_CLAIM, VISA_CLAIM = "ga4gh_passport_v1", "ga4gh_visa_v1"
PASSPORT_TYPE = "vnd.ga4gh.passport+jwt"
VISA_TYPES = frozenset({"vnd.ga4gh.visa+jwt", "jwt", "at+jwt"})
GRANT = "ControlledAccessGrants"
# Who may grant access to a dataset ("by"); "self", a user granting themselves, is refused.
GRANTING_AUTHORITIES = ("dac", "so", "system", "peer")

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPES = ("EC", "OKP", "RSA")
_LATEST = 253_402_300_799  # 9999-12-31T23:59:59Z
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_BEARER = re.compile(r"[A-Za-z0-9._~+/-]+=*")  # RFC 6750 b64token

_JWS = jwt.PyJWS(algorithms=list(ALLOWED_ALGORITHMS), options={"enforce_minimum_key_length": True})


@dataclass(frozen=True)
class Principal:
    """Whom a verified passport speaks for, and what it grants.

    Attributes
    ----------
    user
        The passport's subject (``sub``).
    issuer
        The broker that signed the passport (``iss``).
    datasets
        Every dataset id that a valid ControlledAccessGrants visa in the
        passport grants, in passport order.
    token_id
        The passport's ``jti``, for the audit log.
    expires
        When access to the requested dataset ends: the passport's expiry, or
        the expiry of the visa granting the dataset if that comes first.
    """

    user: str
    issuer: str
    datasets: tuple[str, ...]
    token_id: str
    expires: datetime


@dataclass(frozen=True)
class _Token:
    text: str
    header: dict[str, Any]
    claims: dict[str, Any]


def _shown(value: object, limit: int = 80) -> str:
    """Make a value from an untrusted token printable and short enough for a message."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _quoted(value: object) -> str:
    return f"'{_shown(value)}'"


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate member names")
    return document


def _json_object(segment: str) -> dict[str, Any] | None:
    if not _BASE64URL.fullmatch(segment):
        return None
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _parse(token: object, what: str) -> _Token:
    """Split a compact JWS into its header and claims, without trusting either."""
    if not isinstance(token, str) or not token:
        raise AuthError(f"{what} is empty or not a string")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]) or not _BASE64URL.fullmatch(parts[2]):
        raise AuthError(f"{what} is not a JWT: it must be three base64url parts joined by dots")
    header, claims = _json_object(parts[0]), _json_object(parts[1])
    if header is None or claims is None:
        raise AuthError(f"{what} is not a JWT: its header or claims are not base64url JSON objects")
    return _Token(token, header, claims)


def _media_type(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.lower()
    return value.removeprefix("application/")


def _time(claims: Mapping[str, Any], name: str, what: str) -> float:
    value = claims.get(name)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= _LATEST
    ):
        raise AuthError(f"{what} claim '{name}' is missing or not a time in seconds since 1970")
    return float(value)


def _optional_time(claims: Mapping[str, Any], name: str, what: str) -> float | None:
    return None if claims.get(name) is None else _time(claims, name, what)


def _text(claims: Mapping[str, Any], name: str, what: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise AuthError(f"{what} claim '{name}' is missing or not a string")
    return value


def _moment(now: datetime | None) -> float:
    if now is None:
        return time.time()
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError(f"now must be a timezone-aware datetime, not {now.isoformat()}")
    return now.timestamp()


def _public_members(jwk: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(
        (name, str(jwk[name])) for name in ("kty", "crv", "x", "y", "n", "e") if name in jwk
    )


def _read_jwks(source: Path | str | Mapping[str, Any], index: int) -> tuple[str, Mapping[str, Any]]:
    if isinstance(source, Mapping):
        return f"trusted JWKS #{index}", source
    path = Path(source)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read trusted JWKS {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise InputError(f"trusted JWKS {path} is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InputError(f"trusted JWKS {path} is not a JSON object with a 'keys' list")
    return str(path), document


def _trusted_key(jwk: object, issuer: object, label: str) -> tuple[str, str, jwt.PyJWK]:
    if not isinstance(jwk, Mapping):
        raise InputError(f"{label} is not a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InputError(f"{label} has no 'kid', by which passports name their signing key")
    label = f"{label} ({kid!r})"
    issuer = jwk.get("iss", issuer)
    if not isinstance(issuer, str) or not issuer:
        raise InputError(
            f"{label} names no issuer: add an 'iss' member to the key "
            "or an 'issuer' member to the JWKS"
        )
    private = sorted(_PRIVATE_MEMBERS & set(jwk))
    if private:
        raise InputError(
            f"{label} holds private key material ({', '.join(private)}); "
            "a node must be given public keys only"
        )
    if jwk.get("kty") not in _KEY_TYPES:
        raise InputError(
            f"{label} is a {jwk.get('kty')!r} key; a node trusts only "
            f"{', '.join(_KEY_TYPES)} public keys"
        )
    if jwk.get("use", "sig") != "sig":
        raise InputError(f"{label} is for {jwk.get('use')!r}, not for signatures ('sig')")
    allowed = ", ".join(ALLOWED_ALGORITHMS)
    if jwk.get("alg", ALLOWED_ALGORITHMS[0]) not in ALLOWED_ALGORITHMS:
        raise InputError(f"{label} is for algorithm {jwk.get('alg')!r}; a node allows {allowed}")
    try:
        key = jwt.PyJWK(dict(jwk))
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{label} is not a valid public key") from exc
    if key.algorithm_name not in ALLOWED_ALGORITHMS:
        raise InputError(f"{label} is a key for {key.algorithm_name}; a node allows {allowed}")
    if isinstance(key.key, RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        raise InputError(
            f"{label} is a {key.key.key_size}-bit RSA key; a node needs {MIN_RSA_BITS} bits or more"
        )
    return issuer, kid, key


def _load_trust(
    sources: Sequence[Path | str] | Sequence[Mapping[str, Any]],
) -> dict[str, dict[str, jwt.PyJWK]]:
    """Index the trusted public keys by issuer, then key id."""
    listed: list[Any] = [sources] if isinstance(sources, str | Path | Mapping) else list(sources)
    trusted: dict[str, dict[str, jwt.PyJWK]] = {}
    seen: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    for index, source in enumerate(listed, 1):
        name, document = _read_jwks(source, index)
        keys = document.get("keys")
        if not isinstance(keys, list) or not keys:
            raise InputError(f"{name} is not a JWKS: it needs a non-empty 'keys' list")
        for position, jwk in enumerate(keys, 1):
            issuer, kid, key = _trusted_key(jwk, document.get("issuer"), f"{name}: key {position}")
            public = _public_members(jwk)
            if seen.setdefault((issuer, kid), public) != public:
                raise InputError(
                    f"{name}: key {position}: issuer {issuer} already has "
                    f"a different key with id {kid!r}"
                )
            trusted.setdefault(issuer, {})[kid] = key
    if not trusted:
        raise InputError("no trusted JWKS given: a node needs the public keys of its issuers")
    return trusted


class PassportVerifier:
    """Check GA4GH Passports against the issuers a node trusts.

    Parameters
    ----------
    trusted_jwks
        JWKS files, or their parsed documents, holding the public keys of the
        trusted passport brokers and visa issuers. They are read once, here.
    clock_skew
        Seconds of clock difference to tolerate on ``exp``, ``iat``, ``nbf``
        and ``asserted``.
    audience
        This node's audience name. A passport with an ``aud`` claim is
        accepted only if the claim lists it; one without ``aud`` is accepted
        regardless.

    Raises
    ------
    InputError
        If a JWKS file is unreadable or not a JWKS, a key is private,
        symmetric, too weak or names no issuer, or ``clock_skew`` is not
        0 to 3600 seconds. The message names the file and key.
    """

    def __init__(
        self,
        trusted_jwks: Sequence[Path | str] | Sequence[Mapping[str, Any]],
        *,
        clock_skew: int = DEFAULT_CLOCK_SKEW,
        audience: str | None = None,
    ) -> None:
        if isinstance(clock_skew, bool) or not isinstance(clock_skew, int):
            raise InputError(f"clock skew must be whole seconds, not {clock_skew!r}")
        if not 0 <= clock_skew <= 3600:
            raise InputError(f"clock skew must be 0 to 3600 seconds, not {clock_skew}")
        self._keys = _load_trust(trusted_jwks)
        self._skew = clock_skew
        self._audience = audience
        logger.info(
            "trusting %d keys of %d issuers: %s",
            sum(map(len, self._keys.values())),
            len(self._keys),
            ", ".join(self.trusted_issuers),
        )

    @property
    def trusted_issuers(self) -> tuple[str, ...]:
        """The issuers whose keys this verifier holds, sorted."""
        return tuple(sorted(self._keys))

    def verify(self, token: str, dataset_id: str, *, now: datetime | None = None) -> Principal:
        """Check a passport and its visas; return whom it speaks for if it grants ``dataset_id``.

        Parameters
        ----------
        token
            The passport, a JWT in compact serialization.
        dataset_id
            The node's dataset id, matched exactly against visa values.
        now
            The time to check against (timezone-aware); the current time by default.

        Returns
        -------
        Principal
            The passport's subject, issuer, granted datasets, id and expiry.

        Raises
        ------
        AuthError
            Status 401 if the passport or the visa for ``dataset_id`` is
            malformed, forged, untrusted, expired or not yet valid; status 403
            if a valid passport grants no access to ``dataset_id``.
        """
        moment = _moment(now)
        if isinstance(token, str) and len(token) > MAX_TOKEN_CHARS:
            raise AuthError(
                f"passport is {len(token):,} characters long, "
                f"more than the {MAX_TOKEN_CHARS:,} a node accepts"
            )
        passport = _parse(token, "passport")
        issuer = self._check_signature(passport, "passport")
        if _media_type(passport.header.get("typ")) != PASSPORT_TYPE:
            raise AuthError(
                f"passport has type {_quoted(passport.header.get('typ'))}, not {PASSPORT_TYPE}"
            )
        expires = self._check_times(passport.claims, "passport", moment)
        user = _text(passport.claims, "sub", "passport")
        token_id = _text(passport.claims, "jti", "passport")
        self._check_audience(passport.claims)
        visas = passport.claims.get(PASSPORT_CLAIM)
        if not isinstance(visas, list):
            raise AuthError(f"passport has no {PASSPORT_CLAIM} claim listing visas")

        granted: dict[str, float] = {}
        refusals: list[AuthError] = []
        unreadable = 0
        for entry in visas:
            try:
                visa = _parse(entry, "visa")
            except AuthError:
                unreadable += 1
                continue
            assertion = visa.claims.get(VISA_CLAIM)
            if not isinstance(assertion, dict) or assertion.get("type") != GRANT:
                continue  # a clearinghouse ignores visas it does not need
            value = assertion.get("value")
            if not isinstance(value, str):
                unreadable += 1
                continue
            try:
                until = self._check_grant(visa, assertion, value, user, moment)
            except AuthError as exc:
                if value == dataset_id:
                    refusals.append(exc)
                else:
                    logger.debug("ignoring a visa for another dataset: %s", exc)
                continue
            granted[value] = max(granted.get(value, until), until)

        if dataset_id not in granted:
            refusal = (
                refusals[0]
                if refusals
                else AuthError(_no_grant(dataset_id, granted, unreadable), status=403)
            )
            refusal.user = user  # the passport itself verified, so the refusal names its user
            raise refusal
        return Principal(
            user=user,
            issuer=issuer,
            datasets=tuple(granted),
            token_id=token_id,
            expires=datetime.fromtimestamp(min(expires, granted[dataset_id]), UTC),
        )

    def _check_signature(self, token: _Token, what: str) -> str:
        """Check the algorithm, issuer, key and signature; return the trusted issuer."""
        alg = token.header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthError(
                f"{what} algorithm {_quoted(alg)} is not allowed "
                f"(a node accepts {', '.join(ALLOWED_ALGORITHMS)})"
            )
        if "crit" in token.header or "b64" in token.header:
            raise AuthError(
                f"{what} header uses critical extensions, which a node does not support"
            )
        issuer = _text(token.claims, "iss", what)
        keys = self._keys.get(issuer)
        if keys is None:
            raise AuthError(f"{what} is signed by untrusted issuer {_shown(issuer)}")
        kid = token.header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError(f"{what} header has no key id ('kid')")
        key = keys.get(kid)
        if key is None:
            raise AuthError(
                f"{what} is signed with key {_quoted(kid)}, which is not among "
                f"the trusted keys of {_shown(issuer)}"
            )
        if alg != key.algorithm_name:
            raise AuthError(
                f"{what} algorithm {_quoted(alg)} does not match key {_quoted(kid)} "
                f"of {_shown(issuer)}, an {key.algorithm_name} key"
            )
        try:
            _JWS.decode_complete(token.text, key, algorithms=[key.algorithm_name])
        except jwt.InvalidSignatureError:
            raise AuthError(
                f"{what} has an invalid signature for key {_quoted(kid)} of {_shown(issuer)}"
            ) from None
        except jwt.PyJWTError:
            raise AuthError(f"{what} could not be verified: its signature is malformed") from None
        return issuer

    def _check_times(self, claims: Mapping[str, Any], what: str, now: float) -> float:
        """Check ``exp``, ``iat`` and ``nbf`` with the clock skew; return ``exp``."""
        expires = _time(claims, "exp", what)
        issued = _time(claims, "iat", what)
        not_before = _optional_time(claims, "nbf", what)
        if now >= expires + self._skew:
            raise AuthError(f"{what} expired at {_iso(expires)}")
        if issued > now + self._skew:
            raise AuthError(
                f"{what} was issued in the future, at {_iso(issued)}; is the issuer's clock right?"
            )
        if not_before is not None and not_before > now + self._skew:
            raise AuthError(f"{what} is not valid before {_iso(not_before)}")
        return expires

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        audience = claims.get("aud")
        if audience is None:
            return
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise AuthError("passport claim 'aud' is neither a string nor a list of strings")
        if self._audience is None or self._audience not in audiences:
            listed = ", ".join(_quoted(a) for a in audiences[:3])
            raise AuthError(f"passport is addressed to {listed or 'nobody'}, not to this node")

    def _check_grant(
        self, visa: _Token, assertion: Mapping[str, Any], value: str, user: str, now: float
    ) -> float:
        """Check one ControlledAccessGrants visa; return when it expires."""
        what = f"visa for dataset {_quoted(value)}"
        self._check_signature(visa, what)
        kind = visa.header.get("typ")
        if kind is not None and _media_type(kind) not in VISA_TYPES:
            raise AuthError(f"{what} has type {_quoted(kind)}, not vnd.ga4gh.visa+jwt")
        expires = self._check_times(visa.claims, what, now)
        asserted = _time(assertion, "asserted", what)
        if asserted > now + self._skew:
            raise AuthError(f"{what} was asserted in the future, at {_iso(asserted)}")
        _text(assertion, "source", what)
        if visa.claims.get("sub") != user:
            raise AuthError(
                f"{what} is for another subject than the passport, "
                "and a node does not link identities",
                status=403,
            )
        by = assertion.get("by")
        if by is None:
            raise AuthError(
                f"{what} has no 'by' claim, so nobody is known to have granted it", status=403
            )
        if by not in GRANTING_AUTHORITIES:
            raise AuthError(
                f"{what} was granted by {_quoted(by)}; a node accepts grants by "
                f"{', '.join(GRANTING_AUTHORITIES)}",
                status=403,
            )
        if assertion.get("conditions") not in (None, []):
            raise AuthError(
                f"{what} has conditions, which a node does not evaluate, so it refuses the visa",
                status=403,
            )
        return expires


def _no_grant(dataset_id: str, granted: Mapping[str, float], unreadable: int) -> str:
    message = f"no ControlledAccessGrants visa for dataset {_quoted(dataset_id)} in the passport"
    if granted:
        names = [_quoted(name) for name in list(granted)[:5]]
        more = f" and {len(granted) - 5} more" if len(granted) > 5 else ""
        message += f"; it grants {', '.join(names)}{more}"
    else:
        message += "; it grants no dataset"
    if unreadable:
        message += f" ({unreadable} visa{'s' if unreadable != 1 else ''} could not be read)"
    return message


def bearer_token(header_value: str | None) -> str:
    """Return the passport from an ``Authorization: Bearer <passport>`` header value.

    Raises
    ------
    AuthError
        Status 401 if the header is missing, uses another scheme or holds no token.
    """
    if header_value is None or not header_value.strip():
        raise AuthError("no passport: send it in an 'Authorization: Bearer <passport>' header")
    scheme, _, credentials = header_value.strip().partition(" ")
    if scheme.lower() != "bearer":
        shown = f"the {scheme!r} scheme" if scheme.isalpha() and len(scheme) <= 20 else "no scheme"
        raise AuthError(
            f"Authorization header uses {shown}; send the passport as 'Bearer <passport>'"
        )
    token = credentials.strip()
    if not token:
        raise AuthError("Authorization header holds no token after 'Bearer'")
    if not _BEARER.fullmatch(token):
        raise AuthError("Authorization header holds a bearer token with characters no token has")
    return token
