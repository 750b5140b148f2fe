"""A local GA4GH Passport issuer, standing in for LS-AAI and REMS in demos and tests.

In a federation a researcher's passport comes from the Life Science AAI (the
passport broker) and carries ControlledAccessGrants visas signed by the data
access committee's REMS (the visa issuer). :func:`init_issuer` creates an
issuer that plays both parts on one machine, and :func:`issue_passport` signs
passports with it. Nodes verify them with :class:`genofed.node.auth.PassportVerifier`
against the issuer's public ``jwks.json``.

The issuer's names are imported on first use (they load the JWT and
cryptography libraries); :data:`DEFAULT_ISSUER_URL` is defined here.
"""

import typing

from genofed import _lazy

DEFAULT_ISSUER_URL = "https://aai.genofed.test"

if typing.TYPE_CHECKING:
    from genofed.aai.issuer import (
        Issuer,
        init_issuer,
        issue_passport,
        read_issuer,
        write_passport,
    )
else:
    __getattr__, __dir__ = _lazy.exports(
        __name__,
        {
            "genofed.aai.issuer": [
                "Issuer",
                "init_issuer",
                "issue_passport",
                "read_issuer",
                "write_passport",
            ]
        },
    )

__all__ = [
    "DEFAULT_ISSUER_URL",
    "Issuer",
    "init_issuer",
    "issue_passport",
    "read_issuer",
    "write_passport",
]
