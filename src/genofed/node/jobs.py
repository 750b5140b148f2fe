"""Asynchronous jobs, as in GA4GH TES: submit, poll, fetch results part by part.

A job runs one :class:`~genofed.node.computations.Task`, which answers the
parts of its computation's contract. The contract's streamed parts (``null``,
then ``block/<i>``) are computed in order on a worker thread; the node keeps
at most ``buffered_blocks`` blocks the coordinator has not fetched yet, and
fetching block ``i`` releases every block before it, so a node's memory is
bounded by the block size whatever the cohort size. Other parts are asked
for with arrays and answered on request; a part ``of_block`` can be asked
for from the time its block is computed until the block is released.

Every request and every answer is checked against the contract (names,
kinds and shapes of the arrays). What leaves the node is what the part's
spec releases:

* a verified sum: the answer masked for the job's round of secure
  aggregation, gated for the round's verifier and signed with the node's
  identity key, each part masked once (asking again with the same arrays
  returns the same bytes, with other arrays is refused). The verifier, one
  of the participants, is handed every node's signed part (:meth:`JobManager.total`),
  checks them, and releases their total under the part's rules; as
  verifier, a node first checks every parameter a request derives from
  earlier totals against its own replay of the computation;
* this node's own aggregate where the contract declares one (a PCA's
  per-node mean and covariance of two components);
* nothing, for an instruction (e.g. which variants a PCA uses); each node's
  signatures bind the instructions it followed, so the verifier notices a
  node that was told something else.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import numpy.typing as npt

from genofed.errors import GenofedError, ProtocolError
from genofed.node.computations import TASKS, NotReady, Task, UnknownPart
from genofed.node.dataset import NodeDataset
from genofed.node.disclosure import DisclosureLedger, reported_count
from genofed.node.settings import ComputeSection
from genofed.node.studies import StudyKeys
from genofed.protocol.codec import encode_arrays
from genofed.protocol.computations import JobRequest, contract
from genofed.protocol.computations._parts import Block, Null
from genofed.protocol.contract import Arrays, Contract, Part, PartSpec, Release
from genofed.protocol.messages import JobState, JobStatus
from genofed.protocol.secagg import MaskedRound, PartContext

__all__ = ["JobManager", "NotReady", "UnknownJob", "request_digest"]

logger = logging.getLogger(__name__)

UnknownJob = UnknownPart  # no job, or no such result of a job

_TERMINAL = {JobState.COMPLETE, JobState.EXECUTOR_ERROR, JobState.CANCELED}
KEPT_ANSWER_BYTES = 64 << 20  # answers a job keeps for a repeated request, beyond its blocks
_NO_REQUEST = hashlib.sha256(b"").hexdigest()  # what a streamed part's signature names


@dataclass(frozen=True)
class Answer:
    """What a node sends for one part: its payload and, for a verified sum, its signature."""

    payload: bytes
    signature: bytes = b""


@dataclass
class _Job:
    id: str
    user: str
    request: JobRequest
    contract: Contract
    task: Task
    masking: MaskedRound
    min_count: int  # this node's [disclosure] min_count, sent with each part
    state: JobState = JobState.QUEUED
    blocks_done: int = 0
    released: int = 0  # blocks below this index were fetched and dropped
    error: str | None = None
    results: OrderedDict[str, Answer] = field(default_factory=OrderedDict)
    asked: dict[str, str] = field(default_factory=dict)  # part -> digest of the request arrays
    instructions: dict[str, str] = field(default_factory=dict)  # followed: part -> digest
    signed: dict[str, PartContext] = field(default_factory=dict)  # what each signature binds
    dims: dict[str, dict[str, int]] = field(default_factory=dict)  # sizes of each asked part
    released_totals: OrderedDict[str, bytes] = field(default_factory=OrderedDict)  # as verifier
    totalled: set[str] = field(default_factory=set)  # parts whose total was released
    cancelled: bool = False
    changed: threading.Condition = field(default_factory=threading.Condition)
    answering: threading.Lock = field(default_factory=threading.Lock)
    reported_groups: dict[str, int | None] = field(default_factory=dict)
    verify_seconds: float = 0.0  # spent replaying requests and releasing totals

    def state_digest(self) -> str:
        """Digest of the instructions this node followed in the job so far."""
        listing = "".join(
            f"{path}\0{digest}\n" for path, digest in sorted(self.instructions.items())
        )
        return hashlib.sha256(listing.encode()).hexdigest()

    @property
    def verifying(self) -> bool:
        """Whether this node verifies the job's round."""
        return self.masking.me == self.masking.verifier

    def status(self) -> JobStatus:
        return JobStatus(
            id=self.id,
            computation=self.request.computation,
            version=self.request.version,
            state=self.state,
            blocks_done=self.blocks_done,
            blocks_total=self.task.blocks_total,
            samples=self.task.samples,
            groups=self.reported_groups,
            error=self.error,
            verify_seconds=self.verify_seconds,
        )


class JobManager:
    """Run catalogue jobs on a thread pool and hold their results until fetched."""

    def __init__(
        self,
        dataset: NodeDataset,
        compute: ComputeSection,
        ledger: DisclosureLedger,
        studies: StudyKeys,
    ) -> None:
        self.dataset = dataset
        self.compute = compute
        self.ledger = ledger
        self.studies = studies
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(compute.max_running_jobs, thread_name_prefix="job")

    def submit(self, request: JobRequest, *, user: str) -> JobStatus:
        """Validate a request against the data and the disclosure rules, and queue it.

        Raises
        ------
        InputError
            If the parameters do not fit this node's data.
        ProtocolError
            If the job's secure aggregation is refused (see :class:`StudyKeys`).
        DisclosureError
            If a disclosure rule refuses the job for this user.
        """
        task = TASKS[request.computation](self.dataset, request.parameters)
        masking = self.studies.admit(request.aggregation, user=user)
        task.participants = len(masking.participants)
        task.min_count = self.min_count
        task.replaying = "request-checks" not in self.ledger.rules.disabled
        self.ledger.check_groups(**task.groups)
        if self.min_count > 1:
            task.cohort_differences = self.ledger.differences(task.included)
        self.ledger.admit(user, task.included, masking.participants)
        job = _Job(
            secrets.token_hex(8),
            user,
            request,
            contract(request.computation),
            task,
            masking,
            self.min_count,
        )
        job.reported_groups = {  # none is a count that may be shown; a few are refused above
            name: size if size == 0 else reported_count(size, self.ledger.rules)
            for name, size in task.groups.items()
        }
        with self._lock:
            self._forget_old_jobs()
            self._jobs[job.id] = job
        logger.info(
            "job %s queued for %s: %s/%d on %d samples, %d blocks, %s; masked for study %s "
            "round %r with %s",
            job.id, user, request.computation, request.version, task.samples, task.blocks_total,
            request.parameters.model_dump(mode="json"), masking.study_id, masking.round_label,
            ", ".join(masking.participants),
        )  # fmt: skip
        self._pool.submit(self._run, job)
        return job.status()

    @property
    def min_count(self) -> int:
        """The smallest group this node lets a total cover (1 with ``small-groups`` disabled)."""
        return 1 if "small-groups" in self.ledger.rules.disabled else self.ledger.rules.min_count

    def status(self, job_id: str, *, user: str) -> JobStatus:
        """Return the state and progress of one of ``user``'s jobs."""
        return self._job(job_id, user).status()

    def result(self, job_id: str, path: str, *, wait: float, user: str) -> Answer:
        """Return a streamed part (``null`` or ``block/<i>``), waiting up to ``wait`` seconds.

        Fetching block ``i`` releases the blocks before it.

        Raises
        ------
        UnknownJob
            If the job or part does not exist, was already released, or is asked for with arrays.
        NotReady
            If it is still being computed after ``wait`` seconds.
        """
        job = self._job(job_id, user)
        part, spec = self._parse(job, path)
        if not spec.streamed:
            raise UnknownJob(f"{part} of job {job_id} is asked for with arrays (POST)")
        index = self._block_index(job, part)
        with job.changed:
            if index is not None and index < job.released:
                raise UnknownJob(f"block {index} of job {job_id} was already fetched and released")
            job.changed.wait_for(lambda: path in job.results or job.state in _TERMINAL, wait)
            if path not in job.results:
                if job.state is JobState.EXECUTOR_ERROR:
                    raise NotReady(f"job {job_id} failed: {job.error}")
                if job.state is JobState.CANCELED:
                    raise NotReady(f"job {job_id} was cancelled")
                raise NotReady(f"{part} of job {job_id} is not ready yet")
            if index is not None and index > job.released:
                self._release(job, index)
            return job.results[path]

    def answer(
        self,
        job_id: str,
        path: str,
        request: Mapping[str, npt.NDArray[np.generic]],
        *,
        user: str,
    ) -> Answer:
        """Return a part asked for with arrays, checked against the contract and masked once.

        Raises
        ------
        UnknownJob
            If the job, its block or the part does not exist, or the block was released.
        NotReady
            If the block is not computed yet.
        ProtocolError
            If the arrays do not fit the part, or differ from those it was answered for,
            or (as the round's verifier) differ from what this node recomputes.
        """
        job = self._job(job_id, user)
        part, spec = self._parse(job, path)
        if spec.streamed:
            raise UnknownJob(f"{part} of job {job_id} is computed ahead; fetch it (GET)")
        index = part.index if spec.of_block else None  # type: ignore[attr-defined]
        if index is not None and not 0 <= index < job.task.blocks_total:
            raise UnknownJob(f"job {job_id} has no block {index}")
        digest = request_digest(request)
        with job.answering:  # one part at a time: a part is never masked twice
            with job.changed:
                if index is not None and index < job.released:
                    raise UnknownJob(
                        f"block {index} of job {job_id} was already fetched and released"
                    )
                if job.state in _TERMINAL - {JobState.COMPLETE}:
                    raise NotReady(f"job {job_id} is {job.state.value}")
                if index is not None and index >= job.blocks_done:
                    raise NotReady(f"block {index} of job {job_id} is not ready")
                if path in job.asked:
                    if job.asked[path] != digest:
                        raise ProtocolError(
                            f"{part} of job {job_id} was already answered for other arrays; "
                            "masks are used once"
                        )
                    if path not in job.results:
                        raise UnknownJob(f"{part} of job {job_id} was answered and released")
                    return job.results[path]
            dims = spec.check_request(request, job.task.dims(part, request), part)
            if job.verifying and job.task.replaying:
                started = time.perf_counter()
                try:
                    job.task.check_request(part, request)
                except ProtocolError as exc:
                    raise ProtocolError(
                        f"node {job.masking.me} refused: rule verified parameters: {exc}"
                    ) from None
                finally:
                    job.verify_seconds += time.perf_counter() - started
            arrays = job.task.answer(part, request)
            spec.check_answer(arrays, dims, part)
            answer = self._released(job, part, spec, arrays, digest)
            with job.changed:
                job.results[path], job.asked[path], job.dims[path] = answer, digest, dims
                if spec.release is Release.NOTHING:
                    job.instructions[path] = digest
                self._keep_answers_bounded(job)
            return answer

    def total(
        self,
        job_id: str,
        path: str,
        contributions: Mapping[str, tuple[bytes, bytes]],
        *,
        user: str,
    ) -> bytes:
        """As the round's verifier, check every participant's signed part and release the total.

        ``contributions`` maps each participant to its masked payload and its
        signature. The total is released once, under the part's rules, and
        the same bytes are returned if it is asked for again.

        Raises
        ------
        UnknownJob
            If the job or part does not exist.
        ProtocolError
            If this node is not the verifier, this node has not answered the
            part itself, or a participant's part is missing, not signed for
            the same request and instructions, or malformed.
        """
        job = self._job(job_id, user)
        part, spec = self._parse(job, path)
        if spec.release is not Release.VERIFIED_SUM:
            raise ProtocolError(f"{part} of job {job_id} is not a verified sum")
        with job.answering:
            released = job.released_totals.get(path)
            if released is not None:
                return released
            if path in job.signed and path in job.totalled:
                raise UnknownJob(f"the total of {part} of job {job_id} was released and dropped")
            context = job.signed.get(path)
            if context is None:
                raise ProtocolError(
                    f"node {job.masking.me} has not answered {part} of job {job_id} itself yet"
                )
            started = time.perf_counter()
            dims = job.dims.get(path) or job.task.dims(part)
            summed, rules = job.masking.total(context, contributions)
            totals = spec.read_totals(summed, dims, part)
            min_counts = {node.get("min_count", 1) for node in rules.values()} | {job.min_count}
            arrays = job.task.release_totals(
                part, totals, min_count=max(min_counts), uniform=len(min_counts) == 1
            )
            released = encode_arrays(spec.read_released(arrays, dims, part))
            job.verify_seconds += time.perf_counter() - started
            with job.changed:
                job.released_totals[path] = released
                job.totalled.add(path)
                self._keep_answers_bounded(job)
            logger.debug("job %s: released the verified total of %s", job.id, part)
            return released

    def cancel(self, job_id: str, *, user: str | None = None) -> JobStatus:
        """Stop a job (one of ``user``'s, unless None) and drop what it holds.

        A coordinator ends every job this way once its study no longer needs
        it; a job that had computed all its blocks stays ``COMPLETE``.
        """
        job = self._job(job_id, user)
        with job.changed:
            job.cancelled = True
            if job.state not in _TERMINAL:
                job.state = JobState.CANCELED
            for kept in (job.results, job.released_totals, job.signed, job.dims):
                kept.clear()
            job.task.forget(job.task.blocks_total)
            job.changed.notify_all()
        return job.status()

    def shutdown(self) -> None:
        """Cancel every job and wait for the worker threads to stop."""
        for job_id in list(self._jobs):
            self.cancel(job_id)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _job(self, job_id: str, user: str | None) -> _Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or (user is not None and job.user != user):
            raise UnknownJob(f"no job {job_id} on this node")
        return job

    @staticmethod
    def _parse(job: _Job, path: str) -> tuple[Part, PartSpec]:
        try:
            return job.contract.parse(path)
        except ProtocolError as exc:
            raise UnknownJob(f"job {job.id}: {exc}") from None

    @staticmethod
    def _block_index(job: _Job, part: Part) -> int | None:
        if isinstance(part, Block):
            if part.index >= job.task.blocks_total:
                raise UnknownJob(f"job {job.id} has no block {part.index}")
            return part.index
        return None

    @staticmethod
    def _released(job: _Job, part: Part, spec: PartSpec, arrays: Arrays, request: str) -> Answer:
        """Encode what leaves the node: signed and masked, this node's own aggregate, or nothing."""
        if spec.release is not Release.VERIFIED_SUM:
            return Answer(encode_arrays(arrays))
        payload = job.masking.encode(part.path, arrays, {"min_count": job.min_count})
        context = job.masking.context(part.path, request, job.state_digest())
        job.signed[part.path] = context
        return Answer(payload, job.masking.sign(context, payload))

    @staticmethod
    def _keep_answers_bounded(job: _Job) -> None:
        """Drop the oldest kept answers and totals beyond the job's budget (lock held).

        Their digests stay, so the part is never answered again for other arrays.
        """
        streamed = {p for p in job.results if job.contract.parse(p)[1].streamed}
        kept = [p for p in job.results if p not in streamed]
        total = sum(len(job.results[p].payload) for p in kept)
        total += sum(len(payload) for payload in job.released_totals.values())
        for path in kept[:-1]:
            if total <= KEPT_ANSWER_BYTES:
                break
            total -= len(job.results.pop(path).payload)
        for path in list(job.released_totals)[:-1]:
            if total <= KEPT_ANSWER_BYTES:
                break
            total -= len(job.released_totals.pop(path))

    @staticmethod
    def _release(job: _Job, index: int) -> None:
        """Drop blocks before ``index`` and every part asked for about them (lock held)."""
        for path in list(job.results) + list(job.signed) + list(job.released_totals):
            part, spec = job.contract.parse(path)
            block = getattr(part, "index", None) if spec.streamed or spec.of_block else None
            if block is not None and block < index:
                for kept in (job.results, job.signed, job.dims, job.released_totals):
                    kept.pop(path, None)
        job.task.forget(index)
        job.released = index
        job.changed.notify_all()

    def _forget_old_jobs(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state in _TERMINAL]
        while len(self._jobs) >= self.compute.kept_jobs and finished:
            del self._jobs[finished.pop(0)]

    def _run(self, job: _Job) -> None:
        started = time.monotonic()
        try:
            self._compute(job)
        except Exception as exc:  # the job fails, the node keeps serving
            logger.exception("job %s failed", job.id)
            with job.changed:
                job.state = JobState.EXECUTOR_ERROR
                job.error = str(exc) if isinstance(exc, GenofedError) else repr(exc)
                job.changed.notify_all()
            return
        logger.info("job %s ended %s after %.1f s", job.id, job.state, time.monotonic() - started)

    def _compute(self, job: _Job) -> None:
        task = job.task
        window = min(self.compute.buffered_blocks, task.window or self.compute.buffered_blocks)
        with job.changed:
            if job.cancelled:
                return
            job.state = JobState.RUNNING
        streamed = {spec.part: spec for spec in job.contract.streamed}
        if Null in streamed:
            self._publish(job, Null(), streamed[Null], task.head())
        if Block in streamed:
            for index in range(task.blocks_total):
                with job.changed:
                    job.changed.wait_for(partial(_may_compute, job, index, window))
                    if job.cancelled:
                        return
                arrays = task.block(index)
                self._publish(job, Block(index), streamed[Block], arrays, done=index + 1)
        with job.changed:
            if not job.cancelled:
                job.state = JobState.COMPLETE
            job.changed.notify_all()

    def _publish(
        self, job: _Job, part: Part, spec: PartSpec, arrays: Arrays, *, done: int | None = None
    ) -> None:
        spec.check_answer(arrays, job.task.dims(part), part)
        answer = self._released(job, part, spec, arrays, _NO_REQUEST)
        with job.changed:
            if job.cancelled:
                return
            job.results[part.path] = answer
            if done is not None:
                job.blocks_done = done
            job.changed.notify_all()


def _may_compute(job: _Job, index: int, window: int) -> bool:
    return job.cancelled or index - job.released < window


def request_digest(arrays: Mapping[str, npt.NDArray[np.generic]]) -> str:
    """Hash named arrays, their names, types and shapes included."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{value.dtype.str}\0{value.shape}\0".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()
