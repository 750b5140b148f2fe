"""``genofed aai init`` and ``genofed aai passport`` as a user runs them."""

from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path

import pytest

from genofed.cli import aai
from genofed.errors import InputError
from genofed.node.auth import PassportVerifier


def _run(*argv: str) -> int:
    """Parse and run an ``aai`` command the way ``genofed.cli.main`` does."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0)
    common.add_argument("--format", choices=("text", "json"), default="text")
    parser = argparse.ArgumentParser(prog="genofed")
    commands = parser.add_subparsers(dest="command", required=True)
    aai.register(commands, common)
    args = parser.parse_args(["aai", *argv])
    code: int = args.run(args)
    return code


def test_cli_aai__issues_a_passport_a_node_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    issuer = tmp_path / "issuer"
    assert _run("init", "--out", str(issuer)) == 0
    output = capsys.readouterr().out
    assert f"nodes trust its public keys: {issuer / 'jwks.json'}" in output

    passport = tmp_path / "alice.jwt"
    argv = ["passport", "--issuer", str(issuer), "--user", "alice", "--out", str(passport)]
    assert _run(*argv, "--grant", "genofed:EE", "--grant", "genofed:CZ", "--ttl", "600") == 0
    output = capsys.readouterr().out
    token = passport.read_text()
    assert stat.S_IMODE(passport.stat().st_mode) == 0o600
    assert token not in output
    assert f"granting genofed:EE, genofed:CZ to {passport}" in output

    principal = PassportVerifier([issuer / "jwks.json"]).verify(token, "genofed:CZ")
    assert principal.user == "alice"
    assert principal.datasets == ("genofed:EE", "genofed:CZ")


def test_cli_aai__reports_in_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    issuer = tmp_path / "issuer"
    _run("init", "--format", "json", "--out", str(issuer), "--issuer-url", "https://aai.ee.test")
    record = json.loads(capsys.readouterr().out)
    assert record["issuer"] == "https://aai.ee.test"
    assert record["visa_issuer"] == "https://aai.ee.test/rems"
    assert record["jwks"] == str(issuer / "jwks.json")

    out = tmp_path / "p.jwt"
    _run(
        "passport",
        "--format",
        "json",
        "--issuer",
        str(issuer),
        "--user",
        "bob",
        "--grant",
        "genofed:PT",
        "--out",
        str(out),
    )
    record = json.loads(capsys.readouterr().out)
    assert record["passport"] == str(out)
    assert record["grants"] == ["genofed:PT"]
    assert record["expires"].endswith("Z")


def test_cli_aai__init_refuses_an_existing_issuer_unless_forced(tmp_path: Path) -> None:
    issuer = tmp_path / "issuer"
    _run("init", "--out", str(issuer))
    jwks = (issuer / "jwks.json").read_text()
    with pytest.raises(InputError, match="already holds an issuer"):
        _run("init", "--out", str(issuer))
    assert (issuer / "jwks.json").read_text() == jwks
    assert _run("init", "--out", str(issuer), "--force") == 0
    assert (issuer / "jwks.json").read_text() != jwks


def test_cli_aai__passport_needs_a_grant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        _run("passport", "--issuer", str(tmp_path), "--user", "a", "--out", str(tmp_path / "p"))
    assert caught.value.code == 2
    assert "--grant" in capsys.readouterr().err
