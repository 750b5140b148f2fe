"""``genofed node trust``: adding peers for secure aggregation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genofed.aai import Issuer
from genofed.cli import main
from genofed.node.settings import load_settings
from genofed.node.setup import init_node
from genofed.node.studies import trusted_peers
from genofed.sim import SimulationResult


def test_cli_node_trust__copies_peer_cards_and_skips_its_own(
    cohorts: SimulationResult, issuer: Issuer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inits = [
        init_node(
            code,
            bfile=cohorts.out / code / "genotypes",
            phenotypes=cohorts.out / code / "phenotypes.tsv",
            out=tmp_path / code,
            trusted_issuers=[issuer.jwks],
        )
        for code in ("EE", "PT", "ES")
    ]
    cards = [str(init.card) for init in inits]
    config = str(inits[0].config)
    assert main(["node", "trust", "--format", "json", config, *cards]) == 0
    assert json.loads(capsys.readouterr().out)["peers"] == ["PT", "ES"]
    settings = load_settings(inits[0].config)
    assert sorted(p.name for p in (tmp_path / "EE" / "peers").iterdir()) == ["ES.toml", "PT.toml"]
    assert set(trusted_peers(settings.aggregation.peers, me="EE")) == {"PT", "ES"}


def test_cli_node_trust__refuses_a_card_without_identity_key(
    cohorts: SimulationResult, issuer: Issuer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init = init_node(
        "EE",
        bfile=cohorts.out / "EE" / "genotypes",
        phenotypes=cohorts.out / "EE" / "phenotypes.tsv",
        out=tmp_path / "EE",
        trusted_issuers=[issuer.jwks],
    )
    card = tmp_path / "old.toml"
    card.write_text('name = "PT"\nurl = "https://pt.example:8701"\ndataset_id = "genofed:PT"\n')
    assert main(["node", "trust", str(init.config), str(card)]) == 2
    assert f"{card}: the card of PT has no identity_key" in capsys.readouterr().err
    assert not any((tmp_path / "EE" / "peers").iterdir())
