"""Disclosure control: rules a node applies before it computes anything, for any user.

The rules and their defaults, next to DataSHIELD's ``nfilter`` settings that
play the same role:

=====================  =========  ==============================================
rule (``[disclosure]``) default   DataSHIELD counterpart
=====================  =========  ==============================================
``min_cohort``          50         ``nfilter.glm`` / ``nfilter.subset`` (3)
``min_count``           5          ``nfilter.tab`` (3)
``min_difference``      10         ``nfilter.subset`` applied to differences
``reruns``              1          none
``query_budget``        500 / day  none; DataSHIELD relies on its audit trail
=====================  =========  ==============================================

``min_cohort``: no computation runs on fewer samples at this node.
``min_count``: a count below it is reported as ``None`` (not shown), and no
computation runs on a group (the cases or the controls of a binary trait)
of 1 to ``min_count - 1`` samples at this node; a node with none takes part.
``min_difference``: any two cohorts queried at this node, by any user, must
be identical or differ by at least this many samples, which blocks
differencing (cohorts that differ by one person). The ledger covers every
user of the node, so a second or third passport does not start a fresh one.
``reruns``: a cohort is computed over one set of participating nodes, and
over at most ``reruns`` other sets after it, each a subset of the first (a
study rerun after a node dropped out). Any other set is refused: the totals
of one computation over the node pairs {A, B}, {A, C} and {B, C} would give
each node's own sums. With ``reruns = 0`` a node refuses every rerun.
``query_budget``: jobs per user in any 24 hours.

The ledger of cohorts, participant sets and jobs is kept in SQLite next to
the node's configuration, so a restart does not reset it.

``disabled`` switches named defences off, and only exists to show in tests
that each defence is what stops its attack: a node logs a warning for each
at start, and a node in a federation keeps it empty.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from genofed.errors import DisclosureError

__all__ = ["DisclosureLedger", "DisclosureSection", "reported_count"]

DAY_SECONDS = 86_400

# Defences that ``[disclosure] disabled`` can switch off, to show an attack working in a test.
Defence = Literal["request-checks", "small-groups", "participant-sets", "node-ledger"]


class DisclosureSection(BaseModel):
    """``[disclosure]`` in node.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_cohort: int = Field(default=50, ge=1)
    min_count: int = Field(default=5, ge=1)
    min_difference: int = Field(default=10, ge=1)
    reruns: int = Field(default=1, ge=0, le=64)
    query_budget: int = Field(default=500, ge=1)
    disabled: list[Defence] = Field(default_factory=list)


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
            CREATE TABLE IF NOT EXISTS participants (
                cohort TEXT NOT NULL, nodes TEXT NOT NULL, user TEXT NOT NULL, at REAL NOT NULL,
                PRIMARY KEY (cohort, nodes));
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

    def admit(
        self,
        user: str,
        included: npt.NDArray[np.bool_],
        participants: Sequence[str] = (),
    ) -> None:
        """Check every rule for a job over the ``included`` samples, then record it.

        ``participants`` are the nodes the job's sums are masked with.

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
        nodes = ",".join(sorted(participants))
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
            self._check_difference(user, digest, included)
            record_nodes = nodes and self._check_participants(digest, participants)
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR IGNORE INTO cohorts VALUES (?, ?, ?)", (user, digest, members)
            )
            if record_nodes:
                self._db.execute(
                    "INSERT OR IGNORE INTO participants VALUES (?, ?, ?, ?)",
                    (digest, nodes, user, time.time()),
                )
            self._db.execute("INSERT INTO jobs VALUES (?, ?)", (user, time.time()))
            self._db.execute("COMMIT")

    def differences(self, included: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.bool_]]:
        """Return, for every other cohort on record, the samples it and ``included`` do not share.

        A job's sums over its cohort, less another job's over theirs, cover
        these samples; the small-group rule keeps what each variant's sums add
        or drop of them from covering 1 to ``min_count - 1`` people.
        """
        digest = hashlib.sha256(np.packbits(included).tobytes()).hexdigest()
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT members FROM cohorts WHERE digest != ?", (digest,)
            ).fetchall()
        return [
            np.unpackbits(np.frombuffer(members, dtype=np.uint8))[: len(included)].astype(bool)
            != included
            for (members,) in rows
        ]

    def _check_difference(self, user: str, digest: str, included: npt.NDArray[np.bool_]) -> None:
        """Refuse a cohort 1 to ``min_difference - 1`` samples away from one on record."""
        query = "SELECT DISTINCT members FROM cohorts WHERE digest != ?"
        arguments: tuple[str, ...] = (digest,)
        if "node-ledger" in self.rules.disabled:  # one ledger per user, as before node-wide ones
            query, arguments = f"{query} AND user = ?", (digest, user)
        for (previous,) in self._db.execute(query, arguments):
            other = np.unpackbits(np.frombuffer(previous, dtype=np.uint8))[: len(included)]
            differ = int((other.astype(bool) != included).sum())
            if differ < self.rules.min_difference:
                raise DisclosureError(
                    f"node {self.node} refused: rule min_difference: this cohort differs from "
                    f"one queried at this node before by fewer than "
                    f"{self.rules.min_difference} samples"
                )

    def _check_participants(self, digest: str, participants: Sequence[str]) -> bool:
        """Refuse a participant set that is neither the cohort's first nor a rerun within it.

        Returns whether the set is new for the cohort (and so is to be recorded).
        """
        rows = self._db.execute(
            "SELECT nodes FROM participants WHERE cohort = ? ORDER BY at, rowid", (digest,)
        ).fetchall()
        sets = [frozenset(nodes.split(",")) for (nodes,) in rows]
        wanted = frozenset(participants)
        if not sets:
            return True
        if wanted in sets:
            return False
        if "participant-sets" in self.rules.disabled:
            return True
        first, reruns = sets[0], len(sets) - 1
        if wanted < first and reruns < self.rules.reruns:
            return True
        why = (
            f"it was computed over {len(sets)} participant sets already, the rule's limit"
            if wanted < first
            else "that is not a subset of the first"
        )
        raise DisclosureError(
            f"node {self.node} refused: rule reruns: this cohort was computed over the nodes "
            f"{', '.join(sorted(first))}; computing it over {', '.join(sorted(wanted))} would "
            f"let totals be differenced down to one node's own sums ({why})"
        )
