"""Run several nodes on this machine as separate processes, for demos, tests and benchmarks."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

from genofed.errors import NodeError
from genofed.node.settings import load_settings
from genofed.protocol.messages import API_PREFIX
from genofed.protocol.tls import pinned_context

__all__ = ["LocalNodes", "free_port"]

logger = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


# Thread counts of OpenBLAS, OpenMP, MKL and numba in a node process.
_THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


class LocalNodes:
    """Start ``genofed node serve`` for each config; stop them all with SIGTERM on exit.

    Each node writes its log to ``<config dir>/node.log``. The nodes share this
    machine's cores, so each one's numerical libraries get an equal share of
    threads: several processes each spinning a thread per core slow each other
    down many times over.
    """

    def __init__(
        self, configs: Sequence[Path], *, insecure: bool = False, startup_timeout: float = 60.0
    ) -> None:
        self.configs = [Path(c) for c in configs]
        self.insecure = insecure
        self.startup_timeout = startup_timeout
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.exit_codes: dict[str, int] = {}

    def __enter__(self) -> LocalNodes:
        threads = str(max(1, len(os.sched_getaffinity(0)) // max(len(self.configs), 1)))
        environment = {**os.environ, **dict.fromkeys(_THREAD_VARIABLES, threads)}
        try:
            for config in self.configs:
                settings = load_settings(config)
                with (config.parent / "node.log").open("ab") as log:
                    command = [sys.executable, "-m", "genofed.cli", "node", "serve", str(config)]
                    self.processes[settings.node.name] = subprocess.Popen(
                        [*command, "--insecure"] if self.insecure else command,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=environment,
                    )
            for config in self.configs:
                self._wait_until_ready(config)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self, timeout: float = 20.0) -> dict[str, int]:
        """Send SIGTERM to every node and wait; return their exit codes."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                self.exit_codes[name] = process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("node %s did not stop within %.0f s; killing it", name, timeout)
                process.kill()
                self.exit_codes[name] = process.wait()
        return self.exit_codes

    def _wait_until_ready(self, config: Path) -> None:
        settings = load_settings(config)
        process = self.processes[settings.node.name]
        url = f"{settings.url}{API_PREFIX}/service-info"
        verify = pinned_context(settings.tls.certificate.read_text()) if settings.tls else True
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log = (config.parent / "node.log").read_text(errors="replace")[-2000:]
                raise NodeError(
                    f"node {settings.node.name} exited with code {process.returncode} on "
                    f"start:\n{log}"
                )
            try:
                if httpx.get(url, timeout=1.0, verify=verify).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise NodeError(
            f"node {settings.node.name} did not answer at {url} within {self.startup_timeout} s"
        )
