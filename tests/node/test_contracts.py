"""Every node task answers exactly the parts its contract declares, with the declared arrays."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from genofed.errors import ProtocolError
from genofed.node.computations import TASKS, Task, UnknownPart
from genofed.node.dataset import NodeDataset
from genofed.protocol.computations import CATALOGUE, CONTRACTS, JobRequest, pca
from genofed.protocol.computations import linear_gwas as linear
from genofed.protocol.computations import logistic_gwas as logistic
from genofed.protocol.computations import variant_qc as qc
from genofed.protocol.contract import Arrays, Contract, Part, Release
from genofed.sim import SimulationResult

BLOCK = 1000
Request = Callable[[Task], Arrays]

# For each computation: its parameters, and the parts it answers on request, in the order a
# coordinator asks for them, each with a request its contract admits.
EXAMPLES: dict[str, tuple[dict[str, object], list[tuple[Part, Request]]]] = {
    "linear-gwas": (
        {"phenotype": "ldl", "covariates": ["age", "sex"], "block_size": BLOCK},
        [(linear.BlockMissing(0), lambda task: {"variants": np.array([0, 7, 999])})],
    ),
    "variant-qc": ({"block_size": BLOCK}, []),
    "logistic-gwas": (
        {"phenotype": "t2d", "covariates": ["age", "sex"], "block_size": BLOCK},
        [
            (logistic.NullRound(0), lambda task: {"coefficients": np.zeros(3)}),
            (
                logistic.BlockRound(0, 0, 0),
                lambda task: {
                    "variants": np.array([3, 1, 4]),
                    "coefficients": np.zeros((3, 4)),
                    "with_loglik": np.array([True, False, True]),
                    "firth_variants": np.array([5]),
                    "firth_coefficients": np.zeros((1, 4)),
                    "inverse_information": np.eye(4)[None],
                },
            ),
            (logistic.BlockScore(0), lambda task: {"coefficients": np.zeros(3)}),
            (
                logistic.BlockScoreMissing(0),
                lambda task: {"coefficients": np.zeros(3), "variants": np.array([2, 9])},
            ),
        ],
    ),
    "pca": (
        {"components": 2, "run": "0" * 32},
        [
            (
                pca.Variants(),
                lambda task: {
                    "variants": np.arange(0, 8000, 40),
                    "mean": np.full(200, 0.5),
                    "scale": np.full(200, 2.0),
                },
            ),
            (pca.Ld(0), lambda task: {"rows": np.array([0, 100]), "window": np.array([10])}),
            (pca.Keep(), lambda task: {"variants": np.arange(0, 200, 2)}),
            (pca.Product(0), lambda task: {"basis": np.ones((100, 4))}),
            (
                pca.Scores(),
                lambda task: {"loadings": np.ones((100, 2)) / 10, "theta": np.array([3.0, 2.0])},
            ),
            (pca.Summary(), lambda task: {"components": np.array([0, 1])}),
        ],
    ),
}


@pytest.fixture(scope="module")
def dataset(
    cohorts: SimulationResult, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeDataset]:
    data = NodeDataset(
        cohorts.out / "EE" / "genotypes",
        cohorts.out / "EE" / "phenotypes.tsv",
        tmp_path_factory.mktemp("sets"),
    )
    yield data
    data.close()


def test_contracts__registry_catalogue_tasks_and_job_requests_agree() -> None:
    assert set(TASKS) == set(CONTRACTS) == set(EXAMPLES)
    assert [entry.name for entry in CATALOGUE] == list(CONTRACTS)
    for name, contract in CONTRACTS.items():
        assert TASKS[name].contract is contract  # type: ignore[attr-defined]
        entry = contract.catalogue_entry()
        assert [p.path for p in entry.parts] == [s.part.template for s in contract.parts]
    job_models = JobRequest.__origin__.__args__  # type: ignore[attr-defined]
    assert {m.model_fields["computation"].annotation.__args__[0] for m in job_models} == set(
        CONTRACTS
    )


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_contracts__every_task_answers_exactly_its_declared_parts(
    name: str, dataset: NodeDataset
) -> None:
    contract: Contract = CONTRACTS[name]
    parameters, asked = EXAMPLES[name]
    task = TASKS[name](dataset, contract.parameters.model_validate(parameters))
    answered: set[type[Part]] = set()
    streamed = {spec.part.__name__: spec for spec in contract.streamed}
    if "Null" in streamed:
        part = streamed["Null"].part()
        streamed["Null"].check_answer(task.head(), task.dims(part), part)
        answered.add(type(part))
    if "Block" in streamed:
        for index in range(task.blocks_total):
            part = streamed["Block"].part(index)  # type: ignore[call-arg]
            streamed["Block"].check_answer(task.block(index), task.dims(part), part)
            answered.add(type(part))
    for part, build in asked:
        spec = contract.spec(part)
        request = build(task)
        dims = spec.check_request(request, task.dims(part, request), part)
        answer = task.answer(part, request)
        spec.check_answer(answer, dims, part)
        if spec.release is Release.NOTHING:
            assert answer == {}
        answered.add(type(part))
    assert answered == {spec.part for spec in contract.parts}


def test_contracts__parts_read_back_from_their_paths_and_nothing_else() -> None:
    for contract in CONTRACTS.values():
        for spec in contract.parts:
            part = spec.part(**{f.name: 3 for f in dataclasses.fields(spec.part)})  # type: ignore[arg-type]
            assert contract.parse(part.path) == (part, spec)
        for path in ("", "block", "block/-1", "block/01", "block/1/", "python", "null/round/x"):
            with pytest.raises(ProtocolError, match=f"{contract.name} has no part"):
                contract.parse(path)


def test_contracts__a_task_refuses_a_part_of_another_computation(dataset: NodeDataset) -> None:
    task = TASKS["linear-gwas"](
        dataset, linear.LinearGwasParameters(phenotype="ldl", block_size=BLOCK)
    )
    with pytest.raises(UnknownPart, match="linear-gwas has no part block/0/score"):
        task.answer(logistic.BlockScore(0), {"coefficients": np.zeros(1)})


def test_contracts__requests_outside_the_spec_are_refused(dataset: NodeDataset) -> None:
    spec = linear.CONTRACT.spec(linear.BlockMissing)
    task = TASKS["linear-gwas"](
        dataset, linear.LinearGwasParameters(phenotype="ldl", block_size=BLOCK)
    )
    part = linear.BlockMissing(7)  # the last block: 8,000 variants in blocks of 1,000
    for request, message in (
        ({"variants": np.array([1, 0])}, "strictly increasing positions below 1000"),
        ({"variants": np.array([1000])}, "strictly increasing positions below 1000"),
        ({"variants": np.array([0.5])}, "'variants' of kind index; received float64"),
        ({"variants": np.array([[0]])}, r"'variants' of shape \(m\)"),
        ({"rows": np.array([0])}, "asked for with 'variants'; received"),
    ):
        with pytest.raises(ProtocolError, match=message):
            spec.check_request(request, task.dims(part, request), part)
    coefficients = logistic.CONTRACT.spec(logistic.NullRound)
    with pytest.raises(ProtocolError, match="not finite"):
        coefficients.check_request(
            {"coefficients": np.array([0.0, np.nan, 1.0])}, {"k": 3}, logistic.NullRound(0)
        )
    assert qc.CONTRACT.spec(qc.Block).streamed
