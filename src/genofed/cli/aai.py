"""``genofed aai init`` and ``genofed aai passport``: a local issuer for demos and tests."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from genofed.aai import DEFAULT_ISSUER_URL
from genofed.cli._console import print_json


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``aai`` subcommand group."""
    parser = commands.add_parser(
        "aai", help="a local passport issuer standing in for LS-AAI and REMS"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser(
        "init",
        parents=[common],
        help="create a local issuer: signing keys and the jwks.json nodes trust",
        description="Create a passport broker and a visa issuer in DIR: DIR/issuer.toml, "
        "their private keys (mode 0600) and DIR/jwks.json, the public keys nodes trust.",
    )
    init.add_argument("--out", required=True, type=Path, metavar="DIR", help="issuer directory")
    init.add_argument(
        "--issuer-url",
        default=DEFAULT_ISSUER_URL,
        metavar="URL",
        help="the broker's iss; visas are signed as URL/rems (default: %(default)s)",
    )
    init.add_argument("--force", action="store_true", help="replace an existing issuer in DIR")
    init.set_defaults(run=run_init)
    passport = actions.add_parser(
        "passport",
        parents=[common],
        help="sign a passport granting datasets to a user",
        description="Sign a GA4GH Passport for a user with one ControlledAccessGrants visa "
        "per --grant, and write it to FILE (mode 0600).",
    )
    passport.add_argument(
        "--issuer", required=True, type=Path, metavar="DIR", help="directory from aai init"
    )
    passport.add_argument("--user", required=True, metavar="ID", help="the researcher's id (sub)")
    passport.add_argument(
        "--grant",
        required=True,
        action="append",
        dest="grants",
        metavar="DATASET_ID",
        help="a dataset id to grant, e.g. genofed:EE; repeat for more",
    )
    passport.add_argument(
        "--ttl",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="lifetime of the passport and its visas (default: %(default)s)",
    )
    passport.add_argument("--out", required=True, type=Path, metavar="FILE", help="passport file")
    passport.set_defaults(run=run_passport)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_init(args: argparse.Namespace) -> int:
    """Create the issuer and say which file nodes should trust."""
    from genofed.aai import init_issuer

    issuer = init_issuer(args.out, issuer_url=args.issuer_url, force=args.force)
    record = {
        "issuer_dir": str(issuer.directory),
        "issuer": issuer.issuer_url,
        "visa_issuer": issuer.visa_issuer_url,
        "jwks": str(issuer.jwks),
        "broker_kid": issuer.broker_kid,
        "visa_kid": issuer.visa_kid,
    }
    if args.format == "json":
        print_json(record)
        return 0
    print(
        f"created issuer {issuer.issuer_url} (visas signed as {issuer.visa_issuer_url}) "
        f"in {issuer.directory}\n"
        f"nodes trust its public keys: {issuer.jwks}\n"
        f"sign a passport with: genofed aai passport --issuer {issuer.directory} "
        "--user ID --grant DATASET_ID --out FILE"
    )
    return 0


def run_passport(args: argparse.Namespace) -> int:
    """Sign a passport and write it to its file; never print the token."""
    from genofed.aai import issue_passport, write_passport

    now = datetime.now(UTC).replace(microsecond=0)
    token = issue_passport(args.issuer, user=args.user, grants=args.grants, ttl=args.ttl, now=now)
    out = write_passport(token, args.out)
    grants = list(dict.fromkeys(args.grants))
    expires = _iso(now + timedelta(seconds=args.ttl))
    if args.format == "json":
        print_json({"passport": str(out), "user": args.user, "grants": grants, "expires": expires})
        return 0
    print(
        f"wrote a passport for {args.user} granting {', '.join(grants)} "
        f"to {out} (expires {expires})"
    )
    return 0
