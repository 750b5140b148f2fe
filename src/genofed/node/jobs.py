"""Asynchronous jobs, as in GA4GH TES: submit, poll, fetch results block by block.

A job's result blocks are computed in order on a worker thread. The node
keeps at most ``buffered_blocks`` blocks the coordinator has not fetched
yet, and fetching block ``i`` releases every block before it, so a node's
memory is bounded by the block size whatever the cohort size.

Every result part leaves the node masked for the job's round of secure
aggregation, and each part is masked once: asking again returns the same
bytes, and asking for a block's missing-call sums with another selection
is refused.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from genofed.errors import GenofedError, ProtocolError
from genofed.kernels.linreg import VariantSums, local_null_sums
from genofed.node.dataset import LinearInputs, NodeDataset
from genofed.node.disclosure import DisclosureLedger
from genofed.node.settings import ComputeSection
from genofed.node.studies import StudyKeys
from genofed.protocol.aggregation import MaskedRound
from genofed.protocol.linreg import block_arrays, missing_arrays, null_arrays
from genofed.protocol.messages import JobRequest, JobState, JobStatus

__all__ = ["JobManager", "NotReady", "UnknownJob"]

logger = logging.getLogger(__name__)

_TERMINAL = {JobState.COMPLETE, JobState.EXECUTOR_ERROR, JobState.CANCELED}


class UnknownJob(GenofedError):
    """No job, or no such result of a job, exists on this node."""


class NotReady(GenofedError):
    """The result exists but is not computed yet."""


@dataclass
class _Job:
    id: str
    user: str
    request: JobRequest
    inputs: LinearInputs
    masking: MaskedRound
    blocks_total: int
    state: JobState = JobState.QUEUED
    blocks_done: int = 0
    released: int = 0  # blocks below this index were fetched and dropped
    error: str | None = None
    results: dict[str, bytes] = field(default_factory=dict)
    sums: dict[int, VariantSums] = field(default_factory=dict)  # unreleased, for missing parts
    selections: dict[int, tuple[int, ...]] = field(default_factory=dict)
    cancelled: bool = False
    changed: threading.Condition = field(default_factory=threading.Condition)

    def status(self) -> JobStatus:
        return JobStatus(
            id=self.id,
            computation=self.request.computation,
            version=self.request.version,
            state=self.state,
            blocks_done=self.blocks_done,
            blocks_total=self.blocks_total,
            samples=self.inputs.samples,
            error=self.error,
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
        DisclosureError
            If a disclosure rule refuses the job for this user.
        ProtocolError
            If the job's secure aggregation is refused (see :class:`StudyKeys`).
        """
        parameters = request.parameters
        inputs = self.dataset.linear_inputs(parameters.phenotype, parameters.covariates)
        masking = self.studies.admit(request.aggregation, user=user)
        self.ledger.admit(user, inputs.included)
        n_variants = len(self.dataset.variants)
        blocks = -(-n_variants // parameters.block_size)
        job = _Job(secrets.token_hex(8), user, request, inputs, masking, blocks)
        with self._lock:
            self._forget_old_jobs()
            self._jobs[job.id] = job
        logger.info(
            "job %s queued for %s: linear-gwas of %r on %d samples, covariates %s, %d blocks",
            job.id, user, parameters.phenotype, inputs.samples, parameters.covariates, blocks,
        )  # fmt: skip
        logger.info(
            "job %s masks for study %s round %r with %s",
            job.id, masking.study_id, masking.round_label, ", ".join(masking.participants),
        )  # fmt: skip
        self._pool.submit(self._run, job)
        return job.status()

    def status(self, job_id: str, *, user: str) -> JobStatus:
        """Return the state and progress of one of ``user``'s jobs."""
        return self._job(job_id, user).status()

    def result(self, job_id: str, part: str, *, wait: float, user: str) -> bytes:
        """Return a result part (``null`` or ``block/<i>``), waiting up to ``wait`` seconds.

        Fetching block ``i`` releases the blocks before it.

        Raises
        ------
        UnknownJob
            If the job or part does not exist, or was already released.
        NotReady
            If it is still being computed after ``wait`` seconds.
        """
        job = self._job(job_id, user)
        index = self._block_index(job, part)
        with job.changed:
            if index is not None and index < job.released:
                raise UnknownJob(f"block {index} of job {job_id} was already fetched and released")
            job.changed.wait_for(lambda: part in job.results or job.state in _TERMINAL, wait)
            if part not in job.results:
                if job.state is JobState.EXECUTOR_ERROR:
                    raise NotReady(f"job {job_id} failed: {job.error}")
                if job.state is JobState.CANCELED:
                    raise NotReady(f"job {job_id} was cancelled")
                raise NotReady(f"{part} of job {job_id} is not ready yet")
            if index is not None and index > job.released:
                for old in range(job.released, index):
                    job.results.pop(f"block/{old}", None)
                    job.results.pop(f"block/{old}/missing", None)
                    job.sums.pop(old, None)
                job.released = index
                job.changed.notify_all()
            return job.results[part]

    def missing(self, job_id: str, index: int, variants: list[int], *, user: str) -> bytes:
        """Return block ``index``'s missing-call sums of the ``variants`` (indices within it).

        The coordinator fetches ``block/<index>`` first. A block's missing
        part is masked once: the same selection again gets the same bytes.

        Raises
        ------
        UnknownJob
            If the job or block does not exist or was released.
        NotReady
            If the block is not computed yet.
        ProtocolError
            If the selection is not increasing within the block, or differs
            from the one already answered.
        """
        job = self._job(job_id, user)
        self._block_index(job, f"block/{index}")
        block_size = job.request.parameters.block_size
        width = min(block_size, len(self.dataset.variants) - index * block_size)
        selection = tuple(variants)
        if any(b <= a for a, b in itertools.pairwise(selection)) or selection[-1] >= width:
            raise ProtocolError(
                f"the selection must be increasing indices below {width}, the block's width"
            )
        part = f"block/{index}/missing"
        with job.changed:
            if index < job.released:
                raise UnknownJob(f"block {index} of job {job_id} was already fetched and released")
            if index >= job.blocks_done or job.state in _TERMINAL - {JobState.COMPLETE}:
                raise NotReady(f"block {index} of job {job_id} is not ready")
            if part in job.results:
                if job.selections[index] != selection:
                    raise ProtocolError(
                        f"{part} of job {job_id} was already sent for another selection; "
                        "masks are used once"
                    )
                return job.results[part]
            rows = np.asarray(selection, dtype=np.intp)
            k = job.inputs.covariates.shape[1]
            arrays = missing_arrays(job.sums.get(index), rows, k=k)
            payload = job.masking.encode(part, arrays)
            job.results[part], job.selections[index] = payload, selection
            return payload

    def cancel(self, job_id: str, *, user: str | None = None) -> JobStatus:
        """Stop a job (one of ``user``'s, unless None); its results are dropped."""
        job = self._job(job_id, user)
        with job.changed:
            job.cancelled = True
            if job.state not in _TERMINAL:
                job.state = JobState.CANCELED
            job.results.clear()
            job.sums.clear()
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
    def _block_index(job: _Job, part: str) -> int | None:
        if part == "null":
            return None
        prefix, _, number = part.partition("/")
        if prefix == "block" and number.isdigit() and int(number) < job.blocks_total:
            return int(number)
        raise UnknownJob(f"job {job.id} has no result {part!r}")

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
        inputs, block_size = job.inputs, job.request.parameters.block_size
        with job.changed:
            if job.cancelled:
                return
            job.state = JobState.RUNNING
        rows, masking = inputs.included, job.masking
        null = local_null_sums(inputs.covariates[rows], inputs.phenotype[rows])
        self._publish(job, "null", masking.encode("null", null_arrays(null)))
        design = inputs.design()
        n_variants, window = len(self.dataset.variants), self.compute.buffered_blocks
        for index in range(job.blocks_total):
            with job.changed:
                job.changed.wait_for(partial(_may_compute, job, index, window))
                if job.cancelled:
                    return
            start = index * block_size
            sums = self.dataset.variant_sums(design, start, min(start + block_size, n_variants))
            part = f"block/{index}"
            payload = masking.encode(part, block_arrays(sums))
            with job.changed:
                if sums.n_missing.any():
                    job.sums[index] = sums
            self._publish(job, part, payload, done=index + 1)
        with job.changed:
            if not job.cancelled:
                job.state = JobState.COMPLETE
            job.changed.notify_all()

    @staticmethod
    def _publish(job: _Job, part: str, payload: bytes, *, done: int | None = None) -> None:
        with job.changed:
            if job.cancelled:
                return
            job.results[part] = payload
            if done is not None:
                job.blocks_done = done
            job.changed.notify_all()


def _may_compute(job: _Job, index: int, window: int) -> bool:
    return job.cancelled or index - job.released < window
