"""How a computation is declared once: its parameters, its parts and what each part releases.

A :class:`Contract` is what a node and a coordinator agree on for one
computation of the catalogue. It declares:

* the **parameters** of a job (a pydantic model), public study configuration;
* its **parts**, each a typed value: a frozen dataclass with integer fields
  (``Block(index=3)``) that is written on the wire as a path (``block/3``).
  Both sides format and parse paths through :class:`Part`, never by hand;
* for each part (:class:`PartSpec`), how it is obtained (*streamed*: computed
  ahead, in order, and fetched; or *asked* for with arrays), the **array
  spec** of the request and of the answer (names, kinds and shapes, with
  named dimensions such as ``v``, the variants of a block), what the part
  **releases** (:class:`Release`) and which **disclosure rules** guard it
  (:class:`Rule`).

The node's catalogue and the job request a node accepts are generated from
the registry of contracts (:mod:`genofed.protocol.computations`), so they
cannot drift from what the node serves.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, create_model

from genofed.errors import ProtocolError
from genofed.protocol.messages import (
    ArraySummary,
    Computation,
    JobBase,
    PartSummary,
    SecureAggregation,
)

__all__ = [
    "TOLERANCE",
    "Array",
    "Arrays",
    "Contract",
    "Kind",
    "Part",
    "PartSpec",
    "Release",
    "Rule",
    "Totals",
    "check_derived",
]

Arrays = dict[str, npt.NDArray[np.generic]]
Totals = dict[str, npt.NDArray[Any]]  # the federation's totals: float64, or int64 counts
Dimension = str | int  # a named dimension, bound per part, or a fixed size

_FIELD = re.compile(r"^\{([a-z_]+)\}$")
_NUMBER = re.compile(r"^(0|[1-9][0-9]{0,8})$")  # no signs, no leading zeros, below 10**9


class Part:
    """A part of a job's results, as a typed value; subclasses are frozen dataclasses.

    ``template`` is the part's path with its integer fields in braces, e.g.
    ``"block/{index}/round/{number}"``.
    """

    template: ClassVar[str]

    @property
    def path(self) -> str:
        """The part's path on the wire."""
        return self.template.format(**dataclasses.asdict(self))  # type: ignore[call-overload]

    @classmethod
    def parse(cls, path: str) -> Self | None:
        """Read ``path`` as this kind of part; None if it is not one."""
        pattern, segments = cls.template.split("/"), path.split("/")
        if len(pattern) != len(segments):
            return None
        values: dict[str, int] = {}
        for expected, segment in zip(pattern, segments, strict=True):
            field = _FIELD.match(expected)
            if field is None:
                if segment != expected:
                    return None
            elif _NUMBER.match(segment):
                values[field[1]] = int(segment)
            else:
                return None
        return cls(**values)

    def __str__(self) -> str:
        return self.path


class Kind(StrEnum):
    """What an array holds, and so which dtypes it may have."""

    FLOAT = "float"  # finite floating-point numbers
    COUNT = "count"  # integers that add up over samples and nodes
    FLAG = "flag"  # booleans
    INDEX = "index"  # integer positions along another dimension (``Array.of``)


_DTYPE_KINDS = {Kind.FLOAT: "f", Kind.COUNT: "iu", Kind.FLAG: "b", Kind.INDEX: "iu"}


@dataclass(frozen=True)
class Array:
    """One named array of a request or an answer.

    ``shape`` holds fixed sizes and named dimensions; a named dimension takes
    the same size wherever it appears in one part. An ``INDEX`` array holds
    positions below the dimension ``of``, strictly increasing if ``increasing``.
    """

    name: str
    kind: Kind
    shape: tuple[Dimension, ...] = ()
    of: str | None = None
    increasing: bool = False
    doc: str = ""

    def summary(self) -> ArraySummary:
        """Describe this array for the catalogue."""
        return ArraySummary(
            name=self.name, kind=self.kind.value, shape=[str(d) for d in self.shape], doc=self.doc
        )


class Release(StrEnum):
    """What leaves the node when it answers a part.

    ``VERIFIED_SUM``: the node masks its answer for secure aggregation and
    signs it; the round's verifier (one of the participants) checks every
    node's signed answer, sums them and releases the total under the part's
    rules. ``NODE_AGGREGATE``: this node's own aggregate, unmasked, as the
    contract declares it. ``NOTHING``: an instruction, whose answer holds no
    arrays; it changes what the node computes next.
    """

    VERIFIED_SUM = "verified-sum"
    NODE_AGGREGATE = "node-aggregate"
    NOTHING = "nothing"


class Treatment(IntEnum):
    """What the verifier released of a variant's row, under the small-group rule.

    ``EXACT``: the row's sums, as PLINK 2 would use them. ``IMPUTED``: the
    variant's missing-call group was too small to release, or too close to
    another's, so its sums are over every sample with missing calls
    replaced by each node's mean dosage (as REGENIE imputes). ``WITHHELD``:
    a genotype group of 1 to ``min_count - 1`` samples; nothing is released.
    """

    EXACT = 0
    IMPUTED = 1
    WITHHELD = 2


def treatment_labels(treatment: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    """Return the ``disclosure`` column of a result table: ``.``, ``IMPUTED`` or ``WITHHELD``."""
    labels: npt.NDArray[np.str_] = np.array([".", "IMPUTED", "WITHHELD"])[treatment]
    return labels


class Rule(StrEnum):
    """The node's rules (``[disclosure]`` and ``[aggregation]`` settings) a part is checked by."""

    MIN_COHORT = "min_cohort"
    MIN_COUNT = "min_count"
    MIN_DIFFERENCE = "min_difference"
    QUERY_BUDGET = "query_budget"
    MIN_PARTICIPANTS = "min_participants"


@dataclass(frozen=True)
class PartSpec:
    """One part of a contract: how it is obtained, its arrays, and what it releases.

    ``request`` is None for a streamed part (computed ahead and fetched), and
    the arrays it is asked for with otherwise. A part ``of_block`` is about
    the streamed block ``index``: it can be asked for once that block is
    computed, and no longer once the coordinator has moved past the block.
    ``answer`` is what each node sends, and ``released`` what the verifier
    releases of their total (the same arrays unless the part's rules
    withhold or replace some).
    """

    part: type[Part]
    summary: str
    answer: tuple[Array, ...]
    request: tuple[Array, ...] | None = None
    release: Release = Release.VERIFIED_SUM
    rules: tuple[Rule, ...] = (Rule.MIN_PARTICIPANTS,)
    of_block: bool = False
    released: tuple[Array, ...] | None = None  # what the verifier releases, if not the answer

    @property
    def release_arrays(self) -> tuple[Array, ...]:
        """The arrays the federation's total is released as."""
        return self.answer if self.released is None else self.released

    @property
    def streamed(self) -> bool:
        """Whether the node computes this part ahead, in order, to be fetched."""
        return self.request is None

    def check_request(
        self, arrays: Mapping[str, npt.NDArray[np.generic]], dims: Mapping[str, int], part: Part
    ) -> dict[str, int]:
        """Check a request's arrays; return ``dims`` with the sizes the request binds.

        Raises
        ------
        ProtocolError
            Naming the part and the array that is missing, extra, of the wrong
            kind or shape, not finite, or an index out of range.
        """
        return _check(self.request or (), arrays, dims, f"{part} is asked for with", finite=True)

    def check_answer(
        self, arrays: Mapping[str, npt.NDArray[np.generic]], dims: Mapping[str, int], part: Part
    ) -> dict[str, int]:
        """Check an answer's arrays (a node's own, or the federation's totals).

        Raises
        ------
        ProtocolError
            As :meth:`check_request`, naming the answer.
        """
        return _check(self.answer, arrays, dims, f"{part} answers with", finite=False)

    def read_totals(
        self, totals: Mapping[str, npt.NDArray[np.generic]], dims: Mapping[str, int], part: Part
    ) -> Totals:
        """Check the federation's totals of this part's answer; counts become integers.

        Counts, and flags (whose total is the number of nodes that set them),
        are read as int64, everything else as float64.

        Raises
        ------
        ProtocolError
            If the totals do not have the part's answer arrays and shapes.
        """
        return _read(self.answer, totals, dims, f"the totals of {part} hold")

    def read_released(
        self, released: Mapping[str, npt.NDArray[np.generic]], dims: Mapping[str, int], part: Part
    ) -> Totals:
        """Check what the verifier released of this part, as :meth:`read_totals` does.

        Raises
        ------
        ProtocolError
            If the release does not have the part's released arrays and shapes.
        """
        return _read(self.release_arrays, released, dims, f"the release of {part} holds")

    def summary_message(self) -> PartSummary:
        """Describe this part for the catalogue."""
        return PartSummary(
            path=self.part.template,
            obtained="streamed" if self.streamed else "asked",
            of_block=self.of_block,
            summary=self.summary,
            request=[a.summary() for a in self.request or ()],
            answer=[a.summary() for a in self.answer],
            released=[a.summary() for a in self.release_arrays],
            release=self.release.value,
            rules=[r.value for r in self.rules],
        )


# (parameters, part, its request or None, the node's variant count) -> named sizes
DimensionsHook = Callable[
    [Any, Part, Mapping[str, npt.NDArray[np.generic]] | None, int], dict[str, int]
]


@dataclass(frozen=True)
class Contract:
    """A computation of the catalogue: its name, version, parameters, parts and rules.

    ``dimensions`` gives the sizes a part's arrays have that follow from the
    parameters, the part, its request and the node's variant count (e.g.
    ``k`` covariate columns, ``v`` variants of block ``index``). ``rules``
    are those a node checks before it accepts a job at all.
    """

    name: str
    version: int
    summary: str
    parameters: type[BaseModel]
    parts: tuple[PartSpec, ...]
    dimensions: DimensionsHook
    rules: tuple[Rule, ...] = (Rule.MIN_COHORT, Rule.MIN_DIFFERENCE, Rule.QUERY_BUDGET)

    def __post_init__(self) -> None:
        templates = [spec.part.template for spec in self.parts]
        if len(set(templates)) != len(templates):
            raise ValueError(f"contract {self.name}: two parts share a path template")

    def spec(self, part: Part | type[Part]) -> PartSpec:
        """Return the spec of a part of this contract.

        Raises
        ------
        ProtocolError
            If the part is not one of this computation's.
        """
        kind = part if isinstance(part, type) else type(part)
        for spec in self.parts:
            if spec.part is kind:
                return spec
        raise ProtocolError(f"{self.name} has no part {kind.__name__}")

    def parse(self, path: str) -> tuple[Part, PartSpec]:
        """Read a part's path.

        Raises
        ------
        ProtocolError
            If no part of this computation has that path.
        """
        for spec in self.parts:
            part = spec.part.parse(path)
            if part is not None:
                return part, spec
        known = ", ".join(spec.part.template for spec in self.parts)
        raise ProtocolError(f"{self.name} has no part {path!r}; its parts are {known}")

    def dims(
        self,
        parameters: BaseModel,
        part: Part,
        request: Mapping[str, npt.NDArray[np.generic]] | None = None,
        *,
        variants: int,
        **state: int,
    ) -> dict[str, int]:
        """Return the sizes of a part's named dimensions known before its arrays are checked.

        ``state`` adds sizes a job fixed in earlier parts (e.g. the variants a
        PCA kept).
        """
        return {**state, **self.dimensions(parameters, part, request, variants)}

    @property
    def streamed(self) -> tuple[PartSpec, ...]:
        """The parts a node computes ahead, in order."""
        return tuple(spec for spec in self.parts if spec.streamed)

    def catalogue_entry(self) -> Computation:
        """Describe this computation for the node's catalogue."""
        return Computation(
            name=self.name,
            version=self.version,
            description=self.summary,
            parameters=self.parameters.model_json_schema(),
            parts=[spec.summary_message() for spec in self.parts],
            rules=[r.value for r in self.rules],
        )

    @functools.cached_property
    def job_model(self) -> type[JobBase]:
        """The job request of this computation: its name, version, parameters and masking."""
        model: type[JobBase] = create_model(
            "".join(word.title() for word in self.name.split("-")) + "Job",
            __base__=JobBase,
            __doc__=f"A ``{self.name}`` job: {self.summary}",
            computation=(Literal[self.name], ...),  # type: ignore[arg-type]
            version=(Literal[self.version], ...),  # type: ignore[arg-type]
            parameters=(self.parameters, ...),
        )
        return model

    def job(self, parameters: BaseModel, aggregation: SecureAggregation) -> JobBase:
        """Build a job request of this computation."""
        return self.job_model.model_validate(
            {
                "computation": self.name,
                "version": self.version,
                "parameters": parameters,
                "aggregation": aggregation,
            }
        )


# Largest relative difference allowed between a parameter a request carries and the
# verifier's own replay of the computation. The replay starts from the same released totals,
# so on one platform the two agree to the last bit; numerical libraries on other machines
# round differently by about 1e-15. A difference of 1e-9 moves a fitted probability or a
# basis vector by as little, far too little to single anyone out.
TOLERANCE = 1e-9


def check_derived(
    part: Part,
    expected: Mapping[str, npt.ArrayLike],
    received: Mapping[str, npt.NDArray[np.generic]],
) -> None:
    """Check a request's derived arrays against the verifier's own replay.

    Integer and boolean arrays must be equal, floating-point ones within
    :data:`TOLERANCE` (relative, or absolute below 1).

    Raises
    ------
    ProtocolError
        Naming the part and the first array that differs, and by how much.
    """
    for name, value in expected.items():
        want, got = np.asarray(value), np.asarray(received[name])
        if want.shape != got.shape:
            raise ProtocolError(
                f"{part}: {name!r} has shape {got.shape}, but the replay of the released "
                f"totals gives {want.shape}"
            )
        if want.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                gap = np.abs(got.astype(np.float64) - want) / np.maximum(np.abs(want), 1.0)
            same_nan = np.isnan(want) & np.isnan(got)
            worst = float(
                np.max(np.where(same_nan, 0.0, np.nan_to_num(gap, nan=np.inf)), initial=0.0)
            )
            if worst > TOLERANCE:
                raise ProtocolError(
                    f"{part}: {name!r} differs from the replay of the released totals by "
                    f"{worst:.2g}, more than {TOLERANCE:g}"
                )
        elif not np.array_equal(want, got):
            raise ProtocolError(f"{part}: {name!r} differs from the replay of the released totals")


def block_width(index: int, block_size: int, variants: int) -> int:
    """Variants in block ``index`` of ``variants`` cut into blocks of ``block_size``."""
    return max(0, min(block_size, variants - index * block_size))


def triangle(k: int) -> int:
    """Entries of the packed upper triangle of a ``k x k`` symmetric matrix."""
    return k * (k + 1) // 2


def _check(
    specs: Sequence[Array],
    arrays: Mapping[str, npt.NDArray[np.generic]],
    dims: Mapping[str, int],
    what: str,
    *,
    finite: bool,
    kinds: bool = True,
) -> dict[str, int]:
    names = [spec.name for spec in specs]
    if set(arrays) != set(names):
        wanted = ", ".join(f"{spec.name!r}" for spec in specs) or "no arrays"
        raise ProtocolError(f"{what} {wanted}; received {sorted(arrays) or 'none'}")
    bound = dict(dims)
    for spec in specs:
        value = np.asarray(arrays[spec.name])
        if kinds and value.dtype.kind not in _DTYPE_KINDS[spec.kind]:
            raise ProtocolError(
                f"{what} {spec.name!r} of kind {spec.kind.value}; received {value.dtype}"
            )
        if value.ndim != len(spec.shape):
            raise ProtocolError(
                f"{what} {spec.name!r} of shape ({', '.join(map(str, spec.shape))}); "
                f"received {value.shape}"
            )
        for axis, (dimension, size) in enumerate(zip(spec.shape, value.shape, strict=True)):
            expected = (
                dimension if isinstance(dimension, int) else bound.setdefault(dimension, size)
            )
            if size != expected:
                raise ProtocolError(
                    f"{what} {spec.name!r} of {expected} along axis {axis} "
                    f"({dimension}); received {value.shape}"
                )
        if spec.kind is Kind.FLOAT and finite and not np.isfinite(value).all():
            raise ProtocolError(f"{what} {spec.name!r}: it holds a value that is not finite")
        if kinds and spec.kind is Kind.INDEX:
            _check_index(spec, value, bound, what)
    return bound


def _read(
    specs: Sequence[Array],
    arrays: Mapping[str, npt.NDArray[np.generic]],
    dims: Mapping[str, int],
    what: str,
) -> Totals:
    _check(specs, arrays, dims, what, finite=False, kinds=False)
    return {
        spec.name: np.asarray(arrays[spec.name], dtype=np.float64)
        if spec.kind is Kind.FLOAT
        else np.rint(np.asarray(arrays[spec.name], dtype=np.float64)).astype(np.int64)
        for spec in specs
    }


def _check_index(
    spec: Array, value: npt.NDArray[np.generic], bound: Mapping[str, int], what: str
) -> None:
    assert spec.of is not None
    limit = bound.get(spec.of)
    if limit is None:
        raise ProtocolError(f"{what} {spec.name!r}, but the size of {spec.of} is not known yet")
    flat = value.reshape(-1).astype(np.int64)
    outside = len(flat) > 0 and (flat.min() < 0 or flat.max() >= limit)
    unordered = spec.increasing and len(flat) > 1 and not (np.diff(flat) > 0).all()
    if outside or unordered:
        order = "strictly increasing " if spec.increasing else ""
        raise ProtocolError(
            f"{what} {spec.name!r}: {order}positions below {limit} (the size of {spec.of})"
        )
