"""Asynchronous jobs, as in GA4GH TES: submit, poll, fetch results block by block.

A job's result blocks are computed in order on a worker thread. The node
keeps at most ``buffered_blocks`` blocks the coordinator has not fetched
yet, and fetching block ``i`` releases every block before it, so a node's
memory is bounded by the block size whatever the cohort size.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from genofed.errors import GenofedError
from genofed.kernels.linreg import local_null_sums
from genofed.node.dataset import LinearInputs, NodeDataset
from genofed.node.disclosure import DisclosureLedger
from genofed.node.settings import ComputeSection
from genofed.protocol.linreg import encode_null_sums, encode_variant_sums
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
    blocks_total: int
    state: JobState = JobState.QUEUED
    blocks_done: int = 0
    released: int = 0  # blocks below this index were fetched and dropped
    error: str | None = None
    results: dict[str, bytes] = field(default_factory=dict)
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
        self, dataset: NodeDataset, compute: ComputeSection, ledger: DisclosureLedger
    ) -> None:
        self.dataset = dataset
        self.compute = compute
        self.ledger = ledger
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
        """
        parameters = request.parameters
        inputs = self.dataset.linear_inputs(parameters.phenotype, parameters.covariates)
        self.ledger.admit(user, inputs.included)
        n_variants = len(self.dataset.variants)
        blocks = -(-n_variants // parameters.block_size)
        job = _Job(secrets.token_hex(8), user, request, inputs, blocks)
        with self._lock:
            self._forget_old_jobs()
            self._jobs[job.id] = job
        logger.info(
            "job %s queued for %s: linear-gwas of %r on %d samples, covariates %s, %d blocks",
            job.id, user, parameters.phenotype, inputs.samples, parameters.covariates, blocks,
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
                job.released = index
                job.changed.notify_all()
            return job.results[part]

    def cancel(self, job_id: str, *, user: str | None = None) -> JobStatus:
        """Stop a job (one of ``user``'s, unless None); its results are dropped."""
        job = self._job(job_id, user)
        with job.changed:
            job.cancelled = True
            if job.state not in _TERMINAL:
                job.state = JobState.CANCELED
            job.results.clear()
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
        rows = inputs.included
        null = local_null_sums(inputs.covariates[rows], inputs.phenotype[rows])
        self._publish(job, "null", encode_null_sums(null))
        design = inputs.design()
        n_variants, window = len(self.dataset.variants), self.compute.buffered_blocks
        for index in range(job.blocks_total):
            with job.changed:
                job.changed.wait_for(partial(_may_compute, job, index, window))
                if job.cancelled:
                    return
            start = index * block_size
            sums = self.dataset.variant_sums(design, start, min(start + block_size, n_variants))
            self._publish(job, f"block/{index}", encode_variant_sums(sums), done=index + 1)
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
