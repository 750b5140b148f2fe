"""A federated PCA over three in-process nodes equals the PCA of the pooled genotypes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genofed.coordinator.pca import LdPruning, run_pca
from genofed.io.plink import MISSING_CALL
from genofed.kernels.qc import genotype_counts, variant_qc
from tests.coordinator.conftest import Nodes, Researcher
from tests.coordinator.pooled import Pooled, small_group


def test_pca__split_over_three_nodes_equals_the_pooled_eigenvalues(
    nodes: Nodes, researcher: Researcher, pooled: Pooled, tmp_path: Path
) -> None:
    components, maf = 3, 0.05
    run = run_pca(
        nodes.federation, out=tmp_path / "pcs", components=components, maf=maf,
        ld=LdPruning(window=0), http=researcher.http,
    )  # fmt: skip
    # The variants plink2 --maf 0.05 would keep on the pooled samples, less those whose
    # counts are withheld (a count of 1 to min_count - 1, missing calls included).
    counts = genotype_counts(pooled.dosages)
    withheld = small_group(counts)
    qc = variant_qc(counts)
    frequent = qc.minor_allele_frequency >= maf
    chosen = np.flatnonzero(~withheld & frequent)
    assert (withheld & frequent).any()  # the rule, not --maf, leaves these out
    variable = qc.minor_allele_frequency > 0
    assert run.filtered == {
        "withheld": withheld.sum(),
        "monomorphic": (~withheld & ~variable).sum(),
        "maf": (~withheld & variable & ~frequent).sum(),
    }
    assert run.variants_used == len(chosen)
    assert run.files["prune.in"].read_text().split() == list(pooled.variant_ids[chosen])
    assert json.loads(run.files["pca.json"].read_text())["filtered"] == run.filtered
    assert run.samples == {name: rows.stop - rows.start for name, rows in pooled.rows.items()}
    # plink2 --extract <those> --pca meanimpute on the pooled samples: standardised ALT
    # counts, missing calls at the mean, K = X X' / M
    g = pooled.dosages[:, chosen].astype(np.float64)
    missing = pooled.dosages[:, chosen] == MISSING_CALL
    p = qc.alt_frequency[chosen]
    x = np.where(missing, 0.0, (g - 2 * p) / np.sqrt(2 * p * (1 - p)))
    expected = np.linalg.eigvalsh(x @ x.T / len(chosen))[::-1][:components]
    np.testing.assert_allclose(run.result.eigenvalues, expected, rtol=1e-6)
    assert all(path.exists() for path in run.files.values())
