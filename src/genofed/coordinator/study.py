"""What every federated study does: reach the nodes, agree keys, run masked rounds.

A :class:`Study` holds one client per node and a thread pool. It collects
each node's signed study key once (checked against the node's card), then
runs a round: a function that submits one job per node, masked for the
round's participants, and sums their parts. If a node fails during a round,
the round is run again over the nodes that remain, under a new round label
(so with fresh masks), and the user is warned.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TypeVar

import httpx
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from genofed.coordinator.client import NodeClient
from genofed.coordinator.federation import Federation
from genofed.errors import InputError, NodeError, ProtocolError
from genofed.protocol.codec import decode_arrays
from genofed.protocol.contract import Arrays, Contract, Part, PartSpec, Release, Totals
from genofed.protocol.messages import DatasetDescription, SecureAggregation, SignedKey
from genofed.protocol.secagg import (
    choose_verifier,
    parse_public_key,
    signed_study_key,
    verify_study_keys,
)

__all__ = ["MIN_PARTICIPANTS", "Round", "Study", "check_same_variants"]

logger = logging.getLogger(__name__)

MIN_PARTICIPANTS = 2  # a masked sum over one node would be that node's own sums
RESULT_TIMEOUT_SECONDS = 600.0  # to wait for one result part of a running job

T = TypeVar("T")
FloatArray = npt.NDArray[np.float64]


class _Dropout(Exception):
    """A node failed during a round; the round is rerun without it."""

    def __init__(self, node: str, error: NodeError) -> None:
        super().__init__(str(error))
        self.node = node
        self.error = error


class Round:
    """One masked round over some nodes: their jobs of one computation, and sums of their parts.

    Every part is read through the computation's contract: its path is
    formatted from the typed part, the coordinator's own request is checked
    against the part's spec, and so are the federation's totals.
    """

    def __init__(
        self, pool: ThreadPoolExecutor, clients: list[NodeClient], aggregation: SecureAggregation
    ) -> None:
        self.pool = pool
        self.clients = clients
        self.aggregation = aggregation
        self.jobs: dict[str, str] = {}
        self.samples: dict[str, int] = {}
        self.groups: dict[str, dict[str, int | None]] = {}  # per node, e.g. its cases
        self._contract: Contract | None = None
        self._parameters: BaseModel | None = None
        self._variants = 0

    @property
    def names(self) -> list[str]:
        """The participating nodes."""
        return [c.name for c in self.clients]

    def each(self, call: Callable[[NodeClient], T]) -> list[T]:
        """Call every node in parallel; a node that fails ends the round as a dropout."""
        futures = [self.pool.submit(call, client) for client in self.clients]
        results: list[T] = []
        dropout: _Dropout | None = None
        for client, future in zip(self.clients, futures, strict=True):
            try:
                results.append(future.result())
            except NodeError as exc:
                dropout = dropout or _Dropout(client.name, exc)
        if dropout is not None:
            raise dropout
        return results

    def submit(self, contract: Contract, parameters: BaseModel, *, variants: int) -> None:
        """Queue a job of ``contract`` at every node; remember the job ids and cohort sizes.

        ``variants`` is the nodes' variant count, which sizes their blocks.
        """
        job = contract.job(parameters, self.aggregation)
        self._contract, self._parameters, self._variants = contract, parameters, variants

        def submit(client: NodeClient) -> None:
            status = client.submit(job)
            self.jobs[client.name], self.samples[client.name] = status.id, status.samples or 0
            self.groups[client.name] = status.groups

        self.each(submit)

    @property
    def verifier(self) -> str:
        """The participant that verifies this round's parts."""
        return choose_verifier(self.aggregation.study_id, self.aggregation.round, self.names)

    def fetch(self, part: Part, *, done: dict[str, int] | None = None) -> Totals:
        """Fetch a part the nodes compute ahead from every node; return the released total.

        ``done`` is updated with each node's count of blocks done.
        """
        spec = self._spec(part)

        def fetch(client: NodeClient) -> tuple[bytes, bytes]:
            payload, signature, blocks = client.result(
                self.jobs[client.name], part.path, timeout=RESULT_TIMEOUT_SECONDS
            )
            if done is not None:
                done[client.name] = max(done.get(client.name, 0), blocks)
            return payload, signature

        return self._read(part, spec, self._dims(part, None), self.each(fetch))

    def ask(self, part: Part, arrays: Mapping[str, npt.ArrayLike], **state: int) -> Totals:
        """Ask every node for a part with the same arrays; return the checked totals.

        ``state`` gives sizes fixed by earlier parts that the request refers to.
        """
        spec = self._spec(part)
        request = {name: np.asarray(value) for name, value in arrays.items()}
        dims = spec.check_request(request, self._dims(part, request, **state), part)
        answers = self.each(lambda c: c.ask(self.jobs[c.name], part.path, request))
        return self._read(part, spec, dims, answers)

    def ask_released(
        self, part: Part, arrays: Mapping[str, npt.ArrayLike], **state: int
    ) -> dict[str, Arrays]:
        """Ask every node for a part its contract releases as its own aggregate: node -> arrays."""
        spec = self._spec(part)
        if spec.release is not Release.NODE_AGGREGATE:
            raise ProtocolError(f"{part} is not released as one node's aggregate")
        request = {name: np.asarray(value) for name, value in arrays.items()}
        dims = spec.check_request(request, self._dims(part, request, **state), part)
        answers = self.each(lambda c: c.ask(self.jobs[c.name], part.path, request))
        released = {}
        for name, (payload, _) in zip(self.names, answers, strict=True):
            try:
                arrays_of_node = decode_arrays(payload)
                spec.check_answer(arrays_of_node, dims, part)
            except ProtocolError as exc:
                raise ProtocolError(f"node {name}: {exc}") from exc
            released[name] = arrays_of_node
        return released

    def cancel(self) -> float:
        """Cancel every job of the round, ignoring nodes that are gone.

        Returns the seconds the nodes reported spending on verification.
        """
        seconds = 0.0
        for client in self.clients:
            if client.name in self.jobs:
                status = client.cancel(self.jobs[client.name])
                seconds += status.verify_seconds if status is not None else 0.0
        return seconds

    def _spec(self, part: Part) -> PartSpec:
        if self._contract is None:
            raise ProtocolError(f"no job was submitted in this round to ask for {part}")
        return self._contract.spec(part)

    def _dims(
        self, part: Part, request: Mapping[str, npt.NDArray[np.generic]] | None, **state: int
    ) -> dict[str, int]:
        assert self._contract is not None
        assert self._parameters is not None
        return self._contract.dims(
            self._parameters, part, request, variants=self._variants, **state
        )

    def _read(
        self, part: Part, spec: PartSpec, dims: dict[str, int], answers: list[tuple[bytes, bytes]]
    ) -> Totals:
        """Have the verifier check and total every node's signed part; an instruction is empty."""
        if spec.release is Release.NOTHING:
            for name, (payload, _) in zip(self.names, answers, strict=True):
                if decode_arrays(payload):
                    raise ProtocolError(f"node {name} answered {part} with arrays")
            return {}
        if spec.release is not Release.VERIFIED_SUM:
            raise ProtocolError(f"{part} is released per node; use ask_released")
        contributions = dict(zip(self.names, answers, strict=True))
        verifier = next(c for c in self.clients if c.name == self.verifier)
        try:
            released = verifier.total(self.jobs[verifier.name], part.path, contributions)
        except NodeError as exc:
            raise _Dropout(verifier.name, exc) from exc
        try:
            return spec.read_released(decode_arrays(released), dims, part)
        except ProtocolError as exc:
            raise ProtocolError(f"node {verifier.name} (the verifier): {exc}") from exc


class Study:
    """The clients of a federation's nodes for one study, and its secure-aggregation keys.

    ``http`` maps node names to HTTP clients to use instead of connecting
    from their cards (e.g. in-process nodes).

    Raises
    ------
    InputError
        If the federation has fewer than two nodes.
    """

    def __init__(
        self,
        federation: Federation,
        *,
        passport: str | None,
        timeout: float,
        http: Mapping[str, httpx.Client] | None = None,
    ) -> None:
        if len(federation.nodes) < MIN_PARTICIPANTS:
            raise InputError(
                f"secure aggregation needs at least {MIN_PARTICIPANTS} nodes; the federation "
                f"has {len(federation.nodes)}"
            )
        http = http or {}
        self.clients = [
            NodeClient(card, passport=passport, timeout=timeout, http=http.get(card.name))
            for card in federation.nodes
        ]
        # Two round trips may be in flight at once (a logistic fit pipelines two halves).
        self.pool = ThreadPoolExecutor(2 * len(self.clients))
        self.study_id = secrets.token_hex(16)
        self.dropped: list[str] = []
        self.verify_seconds = 0.0  # the verifiers' time replaying requests and releasing totals
        self._keys: dict[str, SignedKey] | None = None
        self._rounds = 0  # every round of the study gets a label of its own

    def __enter__(self) -> Study:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for client in self.clients:
            client.close()

    def describe(self) -> list[DatasetDescription]:
        """Every node's dataset description; an unreachable node is an error here."""
        return list(self.pool.map(lambda c: c.dataset(), self.clients))

    def run(self, body: Callable[[Round], T]) -> T:
        """Run ``body`` as a masked round over the nodes; rerun it if a node drops out.

        Raises
        ------
        NodeError
            If fewer than two nodes remain.
        """
        keys = self._study_keys()
        active = [c for c in self.clients if c.name not in self.dropped]
        while True:
            self._rounds += 1
            aggregation = SecureAggregation(
                study_id=self.study_id,
                round=f"round-{self._rounds}",
                keys=[keys[c.name] for c in active],
            )
            current = Round(self.pool, active, aggregation)
            try:
                result = body(current)
            except _Dropout as dropout:
                self.verify_seconds += current.cancel()
                self.dropped.append(dropout.node)
                active = [c for c in active if c.name != dropout.node]
                if len(active) < MIN_PARTICIPANTS:
                    raise NodeError(
                        f"{dropout.error}; only {len(active)} node remains, too few for a "
                        "masked sum; nothing was written"
                    ) from dropout.error
                logger.warning(
                    "%s; rerunning the study with fresh masks over the %d remaining nodes (%s)",
                    dropout.error, len(active), ", ".join(c.name for c in active),
                )  # fmt: skip
            except BaseException:
                current.cancel()
                raise
            else:
                # The study has what it needs: the nodes drop what they hold.
                self.verify_seconds += current.cancel()
                return result

    def _study_keys(self) -> dict[str, SignedKey]:
        """Collect every node's signed study key once and check it against the node's card."""
        if self._keys is not None:
            return self._keys
        signed = self.pool.map(lambda c: c.study_key(self.study_id), self.clients)
        keys = dict(zip([c.name for c in self.clients], signed, strict=True))
        for client in self.clients:
            if not client.card.identity_key:
                raise InputError(
                    f"the card of node {client.name} has no identity_key; recreate the "
                    "federation from the node's current public.toml"
                )
            key = keys[client.name]
            if key.node != client.name:
                raise ProtocolError(f"node {client.name} sent a study key for {key.node!r}")
            verify_study_keys(
                [signed_study_key(key)],
                {client.name: parse_public_key(client.card.identity_key)},
                study_id=self.study_id,
            )
        self._keys = keys
        return keys


def check_same_variants(described: Sequence[DatasetDescription]) -> None:
    """Refuse nodes that hold different variant lists, listing each node's count.

    Raises
    ------
    InputError
        If the nodes' variant digests differ.
    """
    if len({d.variant_digest for d in described}) > 1:
        listing = ", ".join(
            f"{d.node} {d.variants:,} variants ({d.variant_digest[:12]})" for d in described
        )
        raise InputError(
            f"the nodes hold different variant lists: {listing}; every node must hold the "
            "same variants in the same order (align them, e.g. with plink2 --extract)"
        )
