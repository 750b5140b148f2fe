"""Passport verification: what a node accepts, and every way it refuses."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from genofed.aai import Issuer, init_issuer, issue_passport
from genofed.errors import AuthError, InputError
from genofed.node.auth import PassportVerifier, bearer_token
from tests.node.tokens import b64url, private_key, segments

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
T = int(NOW.timestamp())
DATASET = "genofed:EE"
USER = "alice@lifescience-ri.eu"
PASSPORT_TYPE = "vnd.ga4gh.passport+jwt"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return init_issuer(tmp_path_factory.mktemp("aai") / "issuer")


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return init_issuer(tmp_path_factory.mktemp("aai") / "other", issuer_url="https://other.test")


@pytest.fixture(scope="module")
def verifier(issuer: Issuer) -> PassportVerifier:
    return PassportVerifier([issuer.jwks])


def _visa(
    issuer: Issuer,
    *,
    key: Any = None,
    kid: str | None = None,
    iss: str | None = None,
    sub: str = USER,
    iat: int = T,
    exp: int = T + 3600,
    **assertion: Any,
) -> str:
    """A ControlledAccessGrants visa for DATASET; ``by=None`` drops a member."""
    content = {
        "type": "ControlledAccessGrants",
        "asserted": T,
        "value": DATASET,
        "source": issuer.source,
        "by": "dac",
        **assertion,
    }
    claims = {
        "iss": iss or issuer.visa_issuer_url,
        "sub": sub,
        "iat": iat,
        "exp": exp,
        "jti": "visa-1",
        "ga4gh_visa_v1": {name: v for name, v in content.items() if v is not None},
    }
    headers = {"typ": "vnd.ga4gh.visa+jwt", "kid": kid or issuer.visa_kid}
    return jwt.encode(
        claims, key or private_key(issuer.visa_key), algorithm="ES256", headers=headers
    )


def _claims(issuer: Issuer, visas: list[str], **claims: Any) -> dict[str, Any]:
    return {
        "iss": issuer.issuer_url,
        "sub": USER,
        "iat": T,
        "exp": T + 3600,
        "jti": "passport-1",
        "ga4gh_passport_v1": visas,
        **claims,
    }


def _passport(
    issuer: Issuer,
    visas: list[str],
    *,
    key: Any = None,
    kid: str | None = None,
    typ: str = PASSPORT_TYPE,
    **claims: Any,
) -> str:
    return jwt.encode(
        _claims(issuer, visas, **claims),
        key or private_key(issuer.broker_key),
        algorithm="ES256",
        headers={"typ": typ, "kid": kid or issuer.broker_kid},
    )


def _refusal(verifier: PassportVerifier, token: str, *, now: datetime = NOW) -> AuthError:
    with pytest.raises(AuthError) as caught:
        verifier.verify(token, DATASET, now=now)
    return caught.value


# --- what passes ---------------------------------------------------------------------------


def test_verify__accepts_a_passport_from_the_local_issuer(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    token = issue_passport(issuer.directory, user=USER, grants=[DATASET, "genofed:CZ"], now=NOW)
    principal = verifier.verify(token, DATASET, now=NOW + timedelta(minutes=10))
    assert principal.user == USER
    assert principal.issuer == issuer.issuer_url
    assert principal.datasets == (DATASET, "genofed:CZ")
    assert principal.expires == NOW + timedelta(hours=1)
    assert principal.token_id == jwt.decode(token, options={"verify_signature": False})["jti"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        principal.user = "mallory"  # type: ignore[misc]


def test_verify__tolerates_the_clock_skew_and_no_more(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    token = issue_passport(issuer.directory, user=USER, grants=[DATASET], now=NOW)
    assert verifier.verify(token, DATASET, now=NOW + timedelta(seconds=3659)).user == USER
    early = issue_passport(
        issuer.directory, user=USER, grants=[DATASET], now=NOW + timedelta(seconds=59)
    )
    assert verifier.verify(early, DATASET, now=NOW).user == USER
    with pytest.raises(AuthError, match="passport expired"):
        verifier.verify(token, DATASET, now=NOW + timedelta(seconds=3660))


def test_verify__access_ends_with_the_visa_when_it_expires_first(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    token = _passport(issuer, [_visa(issuer, exp=T + 1800)])
    principal = verifier.verify(token, DATASET, now=NOW)
    assert principal.expires == NOW + timedelta(minutes=30)


def test_verify__ignores_visas_the_request_does_not_need(
    issuer: Issuer, stranger: Issuer, verifier: PassportVerifier
) -> None:
    other_dataset_expired = _visa(issuer, value="genofed:CZ", exp=T - 600)
    untrusted_affiliation = jwt.encode(
        {
            "iss": stranger.visa_issuer_url,
            "sub": USER,
            "iat": T,
            "exp": T + 3600,
            "ga4gh_visa_v1": {
                "type": "AffiliationAndRole",
                "asserted": T,
                "value": "faculty@example.org",
                "source": "https://example.org",
                "by": "so",
            },
        },
        private_key(stranger.visa_key),
        algorithm="ES256",
        headers={"kid": stranger.visa_kid},
    )
    token = _passport(
        issuer, ["garbage", untrusted_affiliation, other_dataset_expired, _visa(issuer)]
    )
    assert verifier.verify(token, DATASET, now=NOW).datasets == (DATASET,)


def test_verify__accepts_one_valid_visa_among_refused_ones(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    token = _passport(issuer, [_visa(issuer, by=None), _visa(issuer, exp=T - 600), _visa(issuer)])
    assert verifier.verify(token, DATASET, now=NOW).datasets == (DATASET,)


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
def test_verify__accepts_the_other_allowed_algorithms(algorithm: str) -> None:
    key: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[algorithm].to_jwk(key.public_key()))
    broker = "https://broker.example.org"
    verifier = PassportVerifier([{"issuer": broker, "keys": [{**jwk, "kid": "k1"}]}])
    visa = jwt.encode(
        {
            "iss": broker,
            "sub": USER,
            "iat": T,
            "exp": T + 60,
            "ga4gh_visa_v1": {
                "type": "ControlledAccessGrants",
                "asserted": T,
                "value": DATASET,
                "source": broker,
                "by": "dac",
            },
        },
        key,
        algorithm=algorithm,
        headers={"kid": "k1"},
    )
    passport = jwt.encode(
        {
            "iss": broker,
            "sub": USER,
            "iat": T,
            "exp": T + 60,
            "jti": "j",
            "ga4gh_passport_v1": [visa],
        },
        key,
        algorithm=algorithm,
        headers={"kid": "k1", "typ": PASSPORT_TYPE},
    )
    assert verifier.verify(passport, DATASET, now=NOW).issuer == broker


def test_verify__checks_the_audience_when_the_passport_names_one(issuer: Issuer) -> None:
    token = _passport(issuer, [_visa(issuer)], aud=["https://ee.node.example"])
    with pytest.raises(
        AuthError, match=re.escape("passport is addressed to 'https://ee.node.example'")
    ):
        PassportVerifier([issuer.jwks]).verify(token, DATASET, now=NOW)
    verifier = PassportVerifier([issuer.jwks], audience="https://ee.node.example")
    assert verifier.verify(token, DATASET, now=NOW).user == USER


# --- refused: 401 ---------------------------------------------------------------------------


def test_verify__refuses_a_forged_signature(
    issuer: Issuer, stranger: Issuer, verifier: PassportVerifier
) -> None:
    forged = _passport(issuer, [_visa(issuer)], key=private_key(stranger.broker_key))
    error = _refusal(verifier, forged)
    assert error.status == 401
    assert "passport has an invalid signature for key" in str(error)


def test_verify__refuses_algorithm_none(issuer: Issuer, verifier: PassportVerifier) -> None:
    header = {"alg": "none", "typ": PASSPORT_TYPE, "kid": issuer.broker_kid}
    unsigned = segments(header, _claims(issuer, [_visa(issuer)])) + "."
    with pytest.raises(AuthError, match="passport algorithm 'none' is not allowed") as caught:
        verifier.verify(unsigned, DATASET, now=NOW)
    assert caught.value.status == 401


def test_verify__refuses_hs256_keyed_with_the_public_key(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    public = private_key(issuer.broker_key).public_key()
    secret = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": PASSPORT_TYPE, "kid": issuer.broker_kid}
    signing_input = segments(header, _claims(issuer, [_visa(issuer)]))
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(AuthError, match="passport algorithm 'HS256' is not allowed") as caught:
        verifier.verify(f"{signing_input}.{b64url(mac)}", DATASET, now=NOW)
    assert caught.value.status == 401


def test_verify__refuses_an_algorithm_the_key_is_not_for(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        _claims(issuer, [_visa(issuer)]),
        rsa_key,
        algorithm="RS256",
        headers={"typ": PASSPORT_TYPE, "kid": issuer.broker_kid},
    )
    with pytest.raises(AuthError, match="algorithm 'RS256' does not match key"):
        verifier.verify(token, DATASET, now=NOW)


def test_verify__refuses_an_expired_passport(issuer: Issuer, verifier: PassportVerifier) -> None:
    token = issue_passport(issuer.directory, user=USER, grants=[DATASET], now=NOW)
    error = _refusal(verifier, token, now=NOW + timedelta(hours=2))
    assert error.status == 401
    assert str(error) == "passport expired at 2026-11-23T10:00:00Z"


def test_verify__refuses_a_passport_issued_in_the_future(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    token = issue_passport(
        issuer.directory, user=USER, grants=[DATASET], now=NOW + timedelta(minutes=10)
    )
    with pytest.raises(AuthError, match=r"passport was issued in the future, at 2026-11-23T09:10"):
        verifier.verify(token, DATASET, now=NOW)


def test_verify__refuses_a_passport_not_yet_valid(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    token = _passport(issuer, [_visa(issuer)], nbf=T + 600)
    with pytest.raises(AuthError, match="passport is not valid before 2026-11-23T09:10:00Z"):
        verifier.verify(token, DATASET, now=NOW)


def test_verify__refuses_a_passport_without_times(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    token = _passport(issuer, [_visa(issuer)], exp="tomorrow")
    with pytest.raises(AuthError, match="passport claim 'exp' is missing or not a time"):
        verifier.verify(token, DATASET, now=NOW)


def test_verify__refuses_an_expired_visa(issuer: Issuer, verifier: PassportVerifier) -> None:
    token = _passport(issuer, [_visa(issuer, exp=T - 600)])
    error = _refusal(verifier, token)
    assert error.status == 401
    assert str(error) == "visa for dataset 'genofed:EE' expired at 2026-11-23T08:50:00Z"


def test_verify__refuses_a_visa_asserted_in_the_future(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    token = _passport(issuer, [_visa(issuer, asserted=T + 3600)])
    with pytest.raises(AuthError, match="visa for dataset 'genofed:EE' was asserted in the future"):
        verifier.verify(token, DATASET, now=NOW)


def test_verify__refuses_an_untrusted_passport_issuer(
    stranger: Issuer, verifier: PassportVerifier
) -> None:
    token = issue_passport(stranger.directory, user=USER, grants=[DATASET], now=NOW)
    error = _refusal(verifier, token)
    assert error.status == 401
    assert str(error) == "passport is signed by untrusted issuer https://other.test"


def test_verify__refuses_a_visa_from_an_untrusted_issuer_in_a_trusted_passport(
    issuer: Issuer,
) -> None:
    document = json.loads(issuer.jwks.read_text())
    broker_only = [key for key in document["keys"] if key["iss"] == issuer.issuer_url]
    verifier = PassportVerifier([{"keys": broker_only}])
    token = issue_passport(issuer.directory, user=USER, grants=[DATASET], now=NOW)
    with pytest.raises(
        AuthError,
        match=re.escape(
            "visa for dataset 'genofed:EE' is signed by untrusted issuer "
            "https://aai.genofed.test/rems"
        ),
    ) as caught:
        verifier.verify(token, DATASET, now=NOW)
    assert caught.value.status == 401


def test_verify__refuses_a_visa_forged_in_a_trusted_issuers_name(
    issuer: Issuer, stranger: Issuer, verifier: PassportVerifier
) -> None:
    token = _passport(issuer, [_visa(issuer, key=private_key(stranger.visa_key))])
    with pytest.raises(AuthError, match="visa for dataset 'genofed:EE' has an invalid signature"):
        verifier.verify(token, DATASET, now=NOW)


def test_verify__refuses_a_key_id_the_issuer_does_not_have(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    token = _passport(issuer, [_visa(issuer)], kid="retired-key")
    with pytest.raises(AuthError, match="signed with key 'retired-key', which is not among"):
        verifier.verify(token, DATASET, now=NOW)


def test_verify__refuses_a_visa_presented_as_a_passport(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    with pytest.raises(AuthError, match=re.escape("passport has type 'vnd.ga4gh.visa+jwt'")):
        verifier.verify(_visa(issuer), DATASET, now=NOW)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b.c",
        "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0",
        "eyJhbGciOiJFUzI1NiJ9.W10.c2ln",  # claims are a JSON list
        "eyJhbGciOiJFUzI1NiJ9.eyJhIjoxLCJhIjoyfQ.c2ln",  # duplicate claim names
    ],
)
def test_verify__refuses_a_malformed_token(token: str, verifier: PassportVerifier) -> None:
    with pytest.raises(AuthError, match=r"passport is (not a JWT|empty)") as caught:
        verifier.verify(token, DATASET, now=NOW)
    assert caught.value.status == 401


def test_verify__refuses_an_oversized_token(verifier: PassportVerifier) -> None:
    with pytest.raises(AuthError, match="more than the 262,144 a node accepts"):
        verifier.verify("a" * 300_000, DATASET, now=NOW)


def test_verify__refuses_critical_header_extensions(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    token = jwt.encode(
        _claims(issuer, [_visa(issuer)]),
        private_key(issuer.broker_key),
        algorithm="ES256",
        headers={"typ": PASSPORT_TYPE, "kid": issuer.broker_kid, "crit": ["exp"], "exp": 1},
    )
    with pytest.raises(AuthError, match="critical extensions"):
        verifier.verify(token, DATASET, now=NOW)


def test_verify__messages_never_repeat_the_token(
    issuer: Issuer, stranger: Issuer, verifier: PassportVerifier
) -> None:
    forged = _passport(issuer, [_visa(issuer)], key=private_key(stranger.broker_key))
    message = str(_refusal(verifier, forged))
    assert all(part not in message for part in forged.split("."))


# --- refused: 403 ---------------------------------------------------------------------------


def test_verify__refuses_a_passport_for_another_dataset(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    token = issue_passport(issuer.directory, user=USER, grants=["genofed:CZ"], now=NOW)
    error = _refusal(verifier, token)
    assert error.status == 403
    assert str(error) == (
        "no ControlledAccessGrants visa for dataset 'genofed:EE' in the passport; "
        "it grants 'genofed:CZ'"
    )


def test_verify__refuses_a_passport_without_visas(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    error = _refusal(verifier, _passport(issuer, ["junk"]))
    assert error.status == 403
    assert str(error).endswith("it grants no dataset (1 visa could not be read)")


def test_verify__refuses_a_visa_without_by(issuer: Issuer, verifier: PassportVerifier) -> None:
    token = _passport(issuer, [_visa(issuer, by=None)])
    with pytest.raises(AuthError, match="visa for dataset 'genofed:EE' has no 'by' claim") as e:
        verifier.verify(token, DATASET, now=NOW)
    assert e.value.status == 403


def test_verify__refuses_a_visa_granted_by_the_user_themselves(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    error = _refusal(verifier, _passport(issuer, [_visa(issuer, by="self")]))
    assert error.status == 403
    assert "was granted by 'self'" in str(error)


def test_verify__refuses_a_visa_with_conditions(issuer: Issuer, verifier: PassportVerifier) -> None:
    conditions = [[{"type": "AffiliationAndRole", "value": "const:faculty@example.org"}]]
    token = _passport(issuer, [_visa(issuer, conditions=conditions)])
    with pytest.raises(AuthError, match="has conditions, which a node does not evaluate") as e:
        verifier.verify(token, DATASET, now=NOW)
    assert e.value.status == 403


def test_verify__accepts_empty_conditions(issuer: Issuer, verifier: PassportVerifier) -> None:
    token = _passport(issuer, [_visa(issuer, conditions=[])])
    assert verifier.verify(token, DATASET, now=NOW).datasets == (DATASET,)


def test_verify__refuses_a_visa_for_another_subject(
    issuer: Issuer, verifier: PassportVerifier
) -> None:
    error = _refusal(verifier, _passport(issuer, [_visa(issuer, sub="mallory")]))
    assert error.status == 403
    assert "is for another subject than the passport" in str(error)


# --- the Authorization header ---------------------------------------------------------------


def test_bearer_token__returns_the_token() -> None:
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("bearer  abc.def.ghi ") == "abc.def.ghi"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_bearer_token__refuses_a_missing_header(value: str | None) -> None:
    with pytest.raises(AuthError, match="no passport: send it in an 'Authorization: Bearer") as e:
        bearer_token(value)
    assert e.value.status == 401


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Basic dXNlcjpwYXNz", "uses the 'Basic' scheme"),
        ("eyJhbGciOi.eyJzdWIi.c2ln", "uses no scheme"),
        ("Bearer", "holds no token"),
        ("Bearer a b", "characters no token has"),
    ],
)
def test_bearer_token__refuses_other_schemes_and_junk(value: str, message: str) -> None:
    with pytest.raises(AuthError, match=message) as caught:
        bearer_token(value)
    assert caught.value.status == 401
    assert "eyJ" not in str(caught.value)


# --- trusted keys ---------------------------------------------------------------------------


def test_passport_verifier__reads_the_jwks_once(issuer: Issuer, tmp_path: Path) -> None:
    copy = tmp_path / "jwks.json"
    copy.write_text(issuer.jwks.read_text())
    verifier = PassportVerifier([copy])
    copy.unlink()
    token = issue_passport(issuer.directory, user=USER, grants=[DATASET], now=NOW)
    assert verifier.verify(token, DATASET, now=NOW).user == USER
    assert verifier.trusted_issuers == (issuer.issuer_url, issuer.visa_issuer_url)


def test_passport_verifier__takes_the_issuer_from_the_jwks_document(issuer: Issuer) -> None:
    keys = json.loads(issuer.jwks.read_text())["keys"]
    broker = {k: v for k, v in keys[0].items() if k != "iss"}
    verifier = PassportVerifier([{"issuer": issuer.issuer_url, "keys": [broker]}, {"keys": keys}])
    assert verifier.trusted_issuers == (issuer.issuer_url, issuer.visa_issuer_url)


def _jwks_file(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "trusted.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def _ec_jwk(**members: Any) -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": "k1", "iss": "https://aai.example.org", **members}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "is not JSON"),
        ([], "is not a JSON object"),
        ({"keys": []}, "is not a JWKS: it needs a non-empty 'keys' list"),
        ({"keys": [_ec_jwk(kid=None)]}, "key 1 has no 'kid'"),
        ({"keys": [_ec_jwk(iss=None)]}, "names no issuer"),
        ({"keys": [_ec_jwk(d="c2VjcmV0")]}, "holds private key material \\(d\\)"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1", "iss": "x"}]}, "private key"),
        ({"keys": [{"kty": "oct", "kid": "k1", "iss": "x"}]}, "is a 'oct' key"),
        ({"keys": [_ec_jwk(alg="HS256")]}, "is for algorithm 'HS256'"),
        ({"keys": [_ec_jwk(use="enc")]}, "is for 'enc', not for signatures"),
        ({"keys": [_ec_jwk(x="AAAA")]}, "is not a valid public key"),
        ({"keys": [_ec_jwk(), _ec_jwk()]}, "already has a different key with id 'k1'"),
    ],
)
def test_passport_verifier__refuses_a_bad_jwks_naming_the_file(
    document: Any, message: str, tmp_path: Path
) -> None:
    path = _jwks_file(tmp_path, document)
    with pytest.raises(InputError, match=message) as caught:
        PassportVerifier([path])
    assert str(path) in str(caught.value)


def test_passport_verifier__refuses_a_weak_rsa_key(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    path = _jwks_file(tmp_path, {"issuer": "https://x.example", "keys": [{**jwk, "kid": "r"}]})
    with pytest.raises(InputError, match="is a 1024-bit RSA key"):
        PassportVerifier([path])


def test_passport_verifier__refuses_a_missing_file_and_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"cannot read trusted JWKS {tmp_path / 'none.json'}"):
        PassportVerifier([tmp_path / "none.json"])
    with pytest.raises(InputError, match="no trusted JWKS given"):
        PassportVerifier([])
    with pytest.raises(InputError, match="clock skew must be 0 to 3600 seconds, not -1"):
        PassportVerifier([{"keys": [_ec_jwk()]}], clock_skew=-1)


def test_verify__wants_a_timezone_aware_now(issuer: Issuer, verifier: PassportVerifier) -> None:
    token = issue_passport(issuer.directory, user=USER, grants=[DATASET], now=NOW)
    with pytest.raises(InputError, match="timezone-aware"):
        verifier.verify(token, DATASET, now=NOW.replace(tzinfo=None))
