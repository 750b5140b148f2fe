"""A researcher's coordinator, modified as an attacker would modify it.

It speaks only the nodes' public HTTP API, with valid passports: it asks for
study keys, submits jobs over the nodes it picks, asks for any part with any
arrays, and hands the round's verifier the signed parts it collected. It
cannot unmask one node's part on its own; every total it reads comes from
the verifier, which (with its defences on) releases only what an honest
study would.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from genofed.coordinator.client import NodeClient
from genofed.coordinator.federation import Federation
from genofed.node.audit import AuditRecord, open_audit_log
from genofed.node.local import LocalNodes
from genofed.node.settings import load_settings
from genofed.protocol.codec import decode_arrays
from genofed.protocol.computations import contract
from genofed.protocol.contract import Part
from genofed.protocol.messages import SecureAggregation, SignedKey
from genofed.protocol.secagg import choose_verifier

Arrays = dict[str, npt.NDArray[np.generic]]


@dataclass
class Job:
    """One job of the attacker's, over the nodes it chose."""

    computation: str
    nodes: tuple[str, ...]
    ids: dict[str, str]
    study: str
    round: str
    samples: dict[str, int] = field(default_factory=dict)

    @property
    def verifier(self) -> str:
        """The participant the nodes will hand the totals to."""
        return choose_verifier(self.study, self.round, self.nodes)


class Adversary:
    """The attacker: one passport, clients to every node, and free choice of requests."""

    def __init__(self, federation: Federation, passport: str) -> None:
        self.clients = {
            card.name: NodeClient(card, passport=passport, timeout=120.0)
            for card in federation.nodes
        }
        self._keys: dict[tuple[str, str], SignedKey] = {}

    def close(self) -> None:
        """Close every client."""
        for client in self.clients.values():
            client.close()

    def submit(
        self,
        computation: str,
        parameters: BaseModel | Mapping[str, object],
        nodes: Sequence[str],
        *,
        study: str | None = None,
        round: str | None = None,
    ) -> Job:
        """Submit a job of ``computation`` at ``nodes``, masked for exactly them."""
        study = study or secrets.token_hex(16)
        round = round or f"round-{secrets.token_hex(4)}"
        keys = [self._key(node, study) for node in nodes]
        aggregation = SecureAggregation(study_id=study, round=round, keys=keys)
        declared = contract(computation)
        model = declared.parameters.model_validate(
            parameters if isinstance(parameters, Mapping) else parameters.model_dump()
        )
        request = declared.job(model, aggregation)
        job = Job(computation, tuple(nodes), {}, study, round)
        for node in nodes:
            status = self.clients[node].submit(request)
            job.ids[node], job.samples[node] = status.id, status.samples or 0
        return job

    def fetch(self, job: Job, part: Part) -> dict[str, tuple[bytes, bytes]]:
        """Every participant's signed answer to a part it computes ahead."""
        answers = {}
        for node in job.nodes:
            payload, signature, _ = self.clients[node].result(
                job.ids[node], part.path, timeout=120.0
            )
            answers[node] = (payload, signature)
        return answers

    def ask(
        self, job: Job, part: Part, arrays: Mapping[str, npt.ArrayLike], *, only: str | None = None
    ) -> dict[str, tuple[bytes, bytes]]:
        """Every participant's (or one's) signed answer to a part asked for with ``arrays``."""
        request = {name: np.asarray(value) for name, value in arrays.items()}
        nodes = job.nodes if only is None else (only,)
        return {node: self.clients[node].ask(job.ids[node], part.path, request) for node in nodes}

    def total(self, job: Job, part: Part, answers: Mapping[str, tuple[bytes, bytes]]) -> Arrays:
        """Hand the verifier the signed answers; return what it releases."""
        verifier = self.clients[job.verifier]
        return decode_arrays(verifier.total(job.ids[job.verifier], part.path, answers))

    def released(
        self, job: Job, part: Part, arrays: Mapping[str, npt.ArrayLike] | None = None
    ) -> Arrays:
        """Ask (or fetch) a part at every participant and have the verifier total it."""
        answers = self.fetch(job, part) if arrays is None else self.ask(job, part, arrays)
        return self.total(job, part, answers)

    def _key(self, node: str, study: str) -> SignedKey:
        if (node, study) not in self._keys:
            self._keys[node, study] = self.clients[node].study_key(study)
        return self._keys[node, study]


def refusals(local: LocalNodes, node: str) -> list[AuditRecord]:
    """The requests ``node`` refused, in order, as its audit log records them.

    For a test's checks: the node's operator reads the log, never the attacker.
    """
    for config in local.configs:
        settings = load_settings(config)
        if settings.node.name == node:
            state = settings.node.state_dir or settings.data.bfile.parent
            log = open_audit_log(settings.audit.database or state / "audit.sqlite3")
            try:
                return [record for record in log.records() if record.decision == "refused"]
            finally:
                log.close()
    raise KeyError(f"no node {node} among the running nodes")
