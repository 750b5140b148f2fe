"""Fixtures for the report tests: a GWAS table and its metadata."""

from __future__ import annotations

import datetime

import pytest

from genofed.report import GwasMetadata, GwasTable
from tests.report.tables import make_table


@pytest.fixture
def table() -> GwasTable:
    return make_table(500)


@pytest.fixture
def metadata() -> GwasMetadata:
    return GwasMetadata(
        trait="ldl",
        covariates=("age", "sex", "PC1"),
        model="linear",
        sample_size_per_node={"DE": 400, "FI": 380, "PT": 420},
        total_sample_size=1200,
        software_version="0.1.0",
        date=datetime.date(2025, 3, 14),
        analysis_description="Federated linear regression over three nodes",
    )
