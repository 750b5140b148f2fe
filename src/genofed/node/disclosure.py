"""Disclosure control: rules a node applies before it computes anything for a user.

The rules and their defaults, next to DataSHIELD's ``nfilter`` settings that
play the same role:

=====================  =========  ==============================================
rule (``[disclosure]``) default   DataSHIELD counterpart
=====================  =========  ==============================================
``min_cohort``          50         ``nfilter.glm`` / ``nfilter.subset`` (3)
``min_count``           5          ``nfilter.tab`` (3)
``min_difference``      10         ``nfilter.subset`` applied to differences
``query_budget``        500 / day  none; DataSHIELD relies on its audit trail
=====================  =========  ==============================================

``min_cohort``: no computation runs on fewer samples at this node.
``min_count``: a count below it is reported as ``None`` (not shown), and no
computation runs on a group (the cases or the controls of a binary trait)
of 1 to ``min_count - 1`` samples at this node; a node with none takes part.
``min_difference``: two cohorts one user has queried must be identical or differ
by at least this many samples, which blocks differencing (cohorts that differ
by one person). ``query_budget``: jobs per user in any 24 hours.

The ledger of each user's cohorts and jobs is kept in SQLite next to the
node's configuration, so a restart does not reset it.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from genofed.errors import DisclosureError

__all__ = ["DisclosureLedger", "DisclosureSection", "reported_count"]

DAY_SECONDS = 86_400


class DisclosureSection(BaseModel):
    """``[disclosure]`` in node.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_cohort: int = Field(default=50, ge=1)
    min_count: int = Field(default=5, ge=1)
    min_difference: int = Field(default=10, ge=1)
    query_budget: int = Field(default=500, ge=1)


def reported_count(count: int, rules: DisclosureSection) -> int | None:
    """``count`` if it may be reported, else ``None``."""
    return count if count >= rules.min_count else None


class DisclosureLedger:
    """Check the rules for a user's job and remember what the user has queried."""

    def __init__(self, path: Path, rules: DisclosureSection, *, node: str) -> None:
        self.rules = rules
        self.node = node
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.executescript(
            """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS cohorts (
                user TEXT NOT NULL, digest TEXT NOT NULL, members BLOB NOT NULL,
                PRIMARY KEY (user, digest));
            CREATE TABLE IF NOT EXISTS jobs (user TEXT NOT NULL, at REAL NOT NULL);
            CREATE INDEX IF NOT EXISTS jobs_by_user ON jobs (user, at);
            """
        )

    def close(self) -> None:
        """Close the ledger's database."""
        self._db.close()

    def check_groups(self, **groups: int) -> None:
        """Refuse a computation on a group of samples (e.g. cases) too small to hide in.

        Raises
        ------
        DisclosureError
            Naming the group, the rule and this node, if a group has 1 to
            ``min_count - 1`` samples; an empty group is allowed.
        """
        for name, size in groups.items():
            if 0 < size < self.rules.min_count:
                raise DisclosureError(
                    f"node {self.node} refused: rule min_count: the cohort has fewer than "
                    f"{self.rules.min_count} {name} at this node (but some)"
                )

    def admit(self, user: str, included: npt.NDArray[np.bool_]) -> None:
        """Check every rule for a job over the ``included`` samples, then record it.

        Raises
        ------
        DisclosureError
            Naming the rule and this node, if any rule refuses; nothing is recorded then.
        """
        size = int(included.sum())
        if size < self.rules.min_cohort:
            raise DisclosureError(
                f"node {self.node} refused: rule min_cohort: the cohort has fewer than "
                f"{self.rules.min_cohort} samples at this node"
            )
        members = np.packbits(included).tobytes()
        digest = hashlib.sha256(members).hexdigest()
        with self._lock:
            since = time.time() - DAY_SECONDS
            (used,) = self._db.execute(
                "SELECT count(*) FROM jobs WHERE user = ? AND at > ?", (user, since)
            ).fetchone()
            if used >= self.rules.query_budget:
                raise DisclosureError(
                    f"node {self.node} refused: rule query_budget: {user} has used the "
                    f"{self.rules.query_budget} jobs allowed in 24 hours"
                )
            for (previous,) in self._db.execute(
                "SELECT members FROM cohorts WHERE user = ? AND digest != ?", (user, digest)
            ):
                other = np.unpackbits(np.frombuffer(previous, dtype=np.uint8))[: len(included)]
                differ = int((other.astype(bool) != included).sum())
                if differ < self.rules.min_difference:
                    raise DisclosureError(
                        f"node {self.node} refused: rule min_difference: this cohort differs "
                        f"from one {user} queried before by fewer than "
                        f"{self.rules.min_difference} samples"
                    )
            self._db.execute(
                "INSERT OR IGNORE INTO cohorts VALUES (?, ?, ?)", (user, digest, members)
            )
            self._db.execute("INSERT INTO jobs VALUES (?, ?)", (user, time.time()))
