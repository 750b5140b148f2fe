"""Wall time and peak memory of ``genofed simulate`` at the demo size and at biobank size.

Usage: python bench/simulate.py [--sizes demo,large] [--workdir DIR]

Each size runs ``genofed simulate`` in a child process; peak memory is the
child's maximum resident set size. Simulation has no PLINK 2 counterpart, so
no ratio is printed; the targets are absolute (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {
    "demo": {"samples": 1000, "variants": 20_000, "target_s": 60, "target_gb": None},
    "large": {"samples": 10_000, "variants": 100_000, "target_s": 600, "target_gb": 8},
}


def run(size: str, workdir: Path) -> None:
    spec = SIZES[size]
    out = workdir / size
    command = [
        sys.executable, "-m", "genofed.cli", "simulate", "--out", str(out), "--force",
        "--samples-per-country", str(spec["samples"]), "--variants", str(spec["variants"]),
        "--seed", "1",
    ]  # fmt: skip
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(command)} failed with exit code {child.returncode}")
    peak_gb = usage.ru_maxrss / 1024**2  # this child's own peak, in kB
    on_disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1024**3
    print(
        f"{size:<6} 6 x {spec['samples']:,} samples x {spec['variants']:,} variants: "
        f"{seconds:7.1f} s (target < {spec['target_s']} s), peak RSS {peak_gb:5.2f} GB"
        + (f" (target < {spec['target_gb']} GB)" if spec["target_gb"] else "")
        + f", {on_disk:.2f} GB written",
        flush=True,
    )
    shutil.rmtree(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="demo,large")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="genofed-bench-"))
    print(f"cores: {len(os.sched_getaffinity(0))}", flush=True)
    for size in args.sizes.split(","):
        run(size, workdir)


if __name__ == "__main__":
    main()
