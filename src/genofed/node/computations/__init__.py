"""The computations of the node's catalogue, one module each, behind one interface.

A job is a :class:`~genofed.node.computations.base.Task`: parts the node
computes ahead, in order (``null``, then ``block/<i>``), and parts it answers
on request (``block/<i>/missing``, or one iteration of a model fit). The job
manager masks every part, once, and never sees what a computation means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genofed.node.computations.base import Arrays, Task
from genofed.node.computations.linear import LinearTask
from genofed.node.computations.logistic import LogisticTask
from genofed.node.computations.pca import PcaTask
from genofed.node.computations.qc import QcTask
from genofed.node.dataset import NodeDataset

__all__ = ["TASKS", "Arrays", "Task"]

# computation name -> the task a job of it runs; the parameters are its validated message
TASKS: dict[str, Callable[[NodeDataset, Any], Task]] = {
    "linear-gwas": LinearTask,
    "logistic-gwas": LogisticTask,
    "variant-qc": QcTask,
    "pca": PcaTask,
}
