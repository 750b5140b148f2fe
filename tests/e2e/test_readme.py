"""The README's step-by-step federated GWAS, run as written, with real processes.

The test reads the ``sh`` code blocks of the README section "A federated GWAS,
step by step" and of its subsection "Trust: what a node enforces", where the
researcher's commands are. It runs them one by one in an empty folder as the
current directory, with this project's ``genofed`` first on ``PATH``. A command
is one line, or several joined by a trailing backslash; the shell expands its
globs and drops its comments. A command that ends in ``&`` runs in the
background: that is how the README serves its nodes, and the test waits until
they answer before the next command in the foreground. At the end the test stops the nodes with
SIGTERM, as ``kill %1 %2`` would, and checks that they exit cleanly.

The one change to the commands: each ``--port N`` gets a free port instead of
N, the same one wherever N appears, so that the test can run beside other nodes
on this machine.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from genofed.node.local import free_port
from genofed.node.settings import load_settings
from genofed.protocol.messages import API_PREFIX
from genofed.protocol.tls import pinned_context
from genofed.report import read_gwas_ssf

README = Path(__file__).parents[2] / "README.md"
SECTIONS = ("A federated GWAS, step by step", "Trust: what a node enforces")
COMMAND_TIMEOUT = 120.0  # seconds for one foreground command
STARTUP_TIMEOUT = 60.0  # seconds for a node to answer
STOP_TIMEOUT = 30.0  # seconds for a node to exit after SIGTERM


def section_text(markdown: str, heading: str) -> str:
    """The text under ``heading``, up to the next heading of any level."""
    match = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#+ |\Z)", markdown, re.M | re.S)
    assert match, f"README.md has no heading {heading!r}"
    return match.group(1)


def shell_commands(text: str) -> list[str]:
    """The commands of the ``sh`` blocks in ``text``; backslash-newlines join lines."""
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```$", text, re.M | re.S):
        for line in re.sub(r"[ \t]*\\\n[ \t]*", " ", block).splitlines():
            command = re.sub(r"(?<!\S)#.*$", "", line).strip()  # as bash, outside quotes
            if command:
                commands.append(command)
    return commands


def readme_commands() -> list[str]:
    markdown = README.read_text()
    return [c for heading in SECTIONS for c in shell_commands(section_text(markdown, heading))]


def with_free_ports(commands: list[str]) -> list[str]:
    """Give every ``--port N`` a free port, the same one for the same N."""
    ports: dict[str, str] = {}

    def free(match: re.Match[str]) -> str:
        port = ports.setdefault(match.group(2), str(free_port()))
        return f"{match.group(1)}{port}"

    return [re.sub(r"(--port[ =])(\d+)\b", free, command) for command in commands]


@dataclass
class Node:
    """A ``genofed node serve`` started in the background."""

    command: str
    config: Path
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Walkthrough:
    """Run commands as a user's shell would, in ``folder``, with genofed first on PATH."""

    def __init__(self, folder: Path, logs: Path) -> None:
        self.folder = folder
        self.logs = logs
        scripts = Path(sysconfig.get_path("scripts"))
        assert (scripts / "genofed").is_file(), f"no genofed executable in {scripts}"
        self.environment = {**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ['PATH']}"}
        self.nodes: list[Node] = []
        self.starting: list[Node] = []

    def run(self, command: str) -> None:
        if command.endswith("&") and not command.endswith("&&"):
            self.start_node(command.removesuffix("&").strip())
            return
        self.wait_for_nodes()
        completed = subprocess.run(
            ["bash", "-c", command],
            cwd=self.folder,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        assert completed.returncode == 0, (
            f"README command failed with exit code {completed.returncode}:\n  {command}\n"
            f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
        )

    def start_node(self, command: str) -> None:
        words = shlex.split(command)
        assert words[:3] == ["genofed", "node", "serve"], (
            f"the README runs something other than a node in the background: {command}"
        )
        config = self.folder / next(w for w in words[3:] if not w.startswith("-"))
        log = self.logs / f"node-{len(self.nodes)}.log"
        with log.open("wb") as output:
            # exec: the signal the test sends reaches genofed, not a shell around it
            process = subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=self.folder,
                env=self.environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        node = Node(command, config, process, log)
        self.nodes.append(node)
        self.starting.append(node)

    def wait_for_nodes(self) -> None:
        """Wait until every node started in the background answers."""
        while self.starting:
            self.wait_until_answering(self.starting.pop(0))

    def wait_until_answering(self, node: Node) -> None:
        settings = load_settings(node.config)
        url = f"{settings.url}{API_PREFIX}/service-info"
        verify = pinned_context(settings.tls.certificate.read_text()) if settings.tls else True
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            code = node.process.poll()
            assert code is None, (
                f"README command exited with code {code} instead of serving:\n  {node.command}\n"
                f"{node.output()}"
            )
            try:
                if httpx.get(url, timeout=1.0, verify=verify).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"{node.command}: no answer at {url} within {STARTUP_TIMEOUT:.0f} s")

    def stop(self) -> dict[str, int]:
        """SIGTERM every node still running, then wait; return each command's exit code."""
        for node in self.nodes:
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        codes = {}
        for node in self.nodes:
            try:
                codes[node.command] = node.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                node.process.kill()
                codes[node.command] = node.process.wait()
        return codes


@pytest.fixture
def walkthrough(tmp_path: Path) -> Iterator[Walkthrough]:
    folder, logs = tmp_path / "walkthrough", tmp_path / "logs"
    folder.mkdir()
    logs.mkdir()
    session = Walkthrough(folder, logs)
    try:
        yield session
    finally:
        session.stop()


def test_readme__commands_are_runnable_as_written() -> None:
    commands = readme_commands()
    assert not [c for c in commands if re.search(r"\[--|\.\.\.", c)], (
        "optional arguments in [brackets] or `...` are not runnable; describe them in the prose"
    )
    for step in (
        "genofed simulate",
        "genofed aai init",
        "genofed aai passport",
        "genofed node init",
        "genofed node trust",
        "genofed node serve",
        "genofed federation create",
        "genofed gwas",
    ):
        assert any(c.startswith(f"{step} ") for c in commands), (
            f"the README's walkthrough lost its `{step}` step"
        )
    serves = [c for c in commands if c.startswith("genofed node serve")]
    assert len(serves) >= 2, "secure aggregation needs two nodes; the README serves fewer"
    assert all(c.endswith("&") for c in serves), "a node serves until stopped: start it with &"


def test_readme__step_by_step_gwas_runs_as_written(walkthrough: Walkthrough) -> None:
    for command in with_free_ports(readme_commands()):
        walkthrough.run(command)
    walkthrough.wait_for_nodes()
    folder = walkthrough.folder
    results = read_gwas_ssf(folder / "results" / "ldl.tsv")
    bim = (folder / "cohorts" / "EE" / "genotypes.bim").read_text().splitlines()
    assert list(results.variant_id) == [line.split()[1] for line in bim]
    assert (folder / "results" / "ldl.tsv-meta.yaml").is_file()
    # node audit, too, takes node.toml by a relative path, as serve and trust did above
    config = walkthrough.nodes[0].config.relative_to(folder)
    walkthrough.run(f"genofed node audit {config} --verify")
    codes = walkthrough.stop()
    for node in walkthrough.nodes:
        assert codes[node.command] == 0, f"{node.command} exited with code {codes[node.command]}"
        assert "Traceback" not in node.output(), node.output()
        assert "stopped (SIGTERM)" in node.output()
