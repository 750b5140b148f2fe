"""The node's side of each computation of the catalogue, one module each, registered once.

A job runs a :class:`~genofed.node.computations.base.Task` that answers
exactly the parts of its computation's contract
(:mod:`genofed.protocol.computations`): parts the node computes ahead, in
order (``null``, then ``block/<i>``), and parts it answers on request. The
job manager checks every request and answer against the contract, masks
each part once, and never sees what a computation means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genofed.node.computations.base import Arrays, NotReady, Task, UnknownPart
from genofed.node.computations.linear import LinearTask
from genofed.node.computations.logistic import LogisticTask
from genofed.node.computations.pca import PcaTask
from genofed.node.computations.qc import QcTask
from genofed.node.dataset import NodeDataset

__all__ = ["TASKS", "Arrays", "NotReady", "Task", "UnknownPart"]

# computation name -> the task a job of it runs; the parameters are its validated model
TASKS: dict[str, Callable[[NodeDataset, Any], Task]] = {
    task.contract.name: task for task in (LinearTask, LogisticTask, QcTask, PcaTask)
}
