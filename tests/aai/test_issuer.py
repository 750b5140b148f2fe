"""The local issuer: its files, and the passports and visas it signs."""

from __future__ import annotations

import json
import stat
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from genofed.aai import (
    DEFAULT_ISSUER_URL,
    Issuer,
    init_issuer,
    issue_passport,
    read_issuer,
    write_passport,
)
from genofed.errors import InputError
from genofed.node.auth import PassportVerifier

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return init_issuer(tmp_path_factory.mktemp("aai") / "issuer")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def test_init_issuer__writes_config_private_keys_and_public_jwks(issuer: Issuer) -> None:
    names = sorted(path.name for path in issuer.directory.iterdir())
    assert names == ["issuer.toml", "jwks.json", "private-key.pem", "visa-private-key.pem"]
    assert _mode(issuer.broker_key) == 0o600
    assert _mode(issuer.visa_key) == 0o600
    assert issuer.broker_key.read_text().startswith("-----BEGIN PRIVATE KEY-----")

    config = tomllib.loads(issuer.config.read_text())
    assert config["broker"]["issuer"] == DEFAULT_ISSUER_URL == issuer.issuer_url
    assert config["visa_issuer"]["issuer"] == f"{DEFAULT_ISSUER_URL}/rems"
    assert read_issuer(issuer.directory) == issuer

    keys = json.loads(issuer.jwks.read_text())["keys"]
    assert [(k["iss"], k["kid"]) for k in keys] == [
        (issuer.issuer_url, issuer.broker_kid),
        (issuer.visa_issuer_url, issuer.visa_kid),
    ]
    for key in keys:
        assert {"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig"}.items() <= key.items()
        assert "d" not in key
    assert issuer.broker_kid != issuer.visa_kid


def test_init_issuer__refuses_to_overwrite_an_issuer_unless_forced(tmp_path: Path) -> None:
    first = init_issuer(tmp_path / "issuer")
    jwks = first.jwks.read_text()
    with pytest.raises(InputError, match="already holds an issuer; pass --force to replace it"):
        init_issuer(tmp_path / "issuer")
    assert first.jwks.read_text() == jwks
    second = init_issuer(tmp_path / "issuer", issuer_url="https://aai.example.org/", force=True)
    assert second.issuer_url == "https://aai.example.org"
    assert second.broker_kid != first.broker_kid
    assert read_issuer(tmp_path / "issuer") == second


def test_init_issuer__refuses_a_directory_holding_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="is not empty; pass --force"):
        init_issuer(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    "url", ["http://aai.example.org", "aai.example.org", "https://", "https://x.org/?a=1"]
)
def test_init_issuer__refuses_an_issuer_url_that_is_not_https(url: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="issuer URL must be an https:// URL"):
        init_issuer(tmp_path / "issuer", issuer_url=url)
    assert not (tmp_path / "issuer").exists()


def test_issue_passport__signs_one_visa_per_grant(issuer: Issuer) -> None:
    grants = ["genofed:EE", "genofed:CZ", "genofed:EE"]
    token = issue_passport(issuer.directory, user="alice", grants=grants, ttl=600, now=NOW)
    header, passport = _unverified(token)
    assert header == {"alg": "ES256", "typ": "vnd.ga4gh.passport+jwt", "kid": issuer.broker_kid}
    issued = int(NOW.timestamp())
    assert passport["iss"] == issuer.issuer_url
    assert passport["sub"] == "alice"
    assert (passport["iat"], passport["exp"]) == (issued, issued + 600)
    assert passport["jti"]
    visas = passport["ga4gh_passport_v1"]
    assert len(visas) == 2
    for visa, dataset in zip(visas, ["genofed:EE", "genofed:CZ"], strict=True):
        header, claims = _unverified(visa)
        assert header["kid"] == issuer.visa_kid
        assert header["typ"] == "vnd.ga4gh.visa+jwt"
        assert header["jku"] == f"{issuer.visa_issuer_url}/jwks.json"
        assert (claims["iss"], claims["sub"], claims["exp"]) == (
            issuer.visa_issuer_url,
            "alice",
            issued + 600,
        )
        assert claims["ga4gh_visa_v1"] == {
            "type": "ControlledAccessGrants",
            "asserted": issued,
            "value": dataset,
            "source": issuer.source,
            "by": "dac",
        }


def test_issue_passport__verifies_at_a_node_trusting_the_jwks(issuer: Issuer) -> None:
    token = issue_passport(issuer.directory, user="alice", grants=["genofed:EE"])
    principal = PassportVerifier([issuer.jwks]).verify(token, "genofed:EE")
    assert principal.user == "alice"
    assert principal.datasets == ("genofed:EE",)


def test_issue_passport__gives_every_passport_its_own_id(issuer: Issuer) -> None:
    ids = {
        _unverified(issue_passport(issuer.directory, user="a", grants=["d"], now=NOW))[1]["jti"]
        for _ in range(3)
    }
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"user": "", "grants": ["d"]}, "needs a user id"),
        ({"user": "a", "grants": []}, "needs at least one dataset grant"),
        ({"user": "a", "grants": [""]}, "dataset id '' must be a string of 1 to 255"),
        ({"user": "a", "grants": ["d"], "ttl": 0}, "ttl must be 1 to 31,622,400 seconds, not 0"),
        ({"user": "a", "grants": ["d"], "now": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_issue_passport__refuses_bad_arguments(
    issuer: Issuer, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        issue_passport(issuer.directory, **arguments)


def test_issue_passport__names_a_directory_without_an_issuer(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"{tmp_path} holds no issuer"):
        issue_passport(tmp_path, user="a", grants=["d"])


def test_issue_passport__names_an_unreadable_key(tmp_path: Path) -> None:
    issuer = init_issuer(tmp_path / "issuer")
    issuer.broker_key.write_text("not a key")
    with pytest.raises(InputError, match=f"{issuer.broker_key} is not an unencrypted PEM"):
        issue_passport(issuer.directory, user="a", grants=["d"])


def test_write_passport__writes_it_for_the_owner_only(issuer: Issuer, tmp_path: Path) -> None:
    out = tmp_path / "tokens" / "passport.jwt"
    first = issue_passport(issuer.directory, user="a", grants=["d"], now=NOW)
    assert write_passport(first, out) == out
    later = issue_passport(issuer.directory, user="a", grants=["d"], now=NOW + timedelta(hours=1))
    write_passport(later, out)
    assert out.read_text() == later
    assert _mode(out) == 0o600
    assert [p.name for p in out.parent.iterdir()] == ["passport.jwt"]
    with pytest.raises(InputError, match="is a directory"):
        write_passport(later, tmp_path)
