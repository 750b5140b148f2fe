"""TLS on every node: pinned certificates, and plain HTTP only when asked for on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from genofed.aai import Issuer
from genofed.cli import main
from genofed.coordinator import read_federation
from genofed.coordinator.client import NodeClient
from genofed.errors import InputError, NodeError
from genofed.node.local import LocalNodes, free_port
from genofed.node.setup import init_node
from genofed.protocol.cards import read_card
from tests.conftest import passport_for
from tests.e2e.conftest import SplitFederation


def test_tls__cards_pin_each_node_certificate(split_federation: SplitFederation) -> None:
    cards = read_federation(split_federation.federation).nodes
    assert all(card.url.startswith("https://127.0.0.1:") for card in cards)
    assert all(card.certificate and "BEGIN CERTIFICATE" in card.certificate for card in cards)
    assert len({card.certificate for card in cards}) == len(cards)
    with NodeClient(cards[0], passport=split_federation.passport) as client:
        assert client.dataset().node == "alpha"


def test_tls__coordinator_refuses_a_node_with_another_certificate(
    split_federation: SplitFederation, tmp_path: Path
) -> None:
    alpha, beta, *_ = read_federation(split_federation.federation).nodes
    impostor = alpha.model_copy(update={"certificate": beta.certificate})
    with (
        NodeClient(impostor, passport=split_federation.passport) as client,
        pytest.raises(NodeError, match=r"node alpha .* unreachable: .*CERTIFICATE_VERIFY_FAILED"),
    ):
        client.dataset()
    with pytest.raises(InputError, match="https URL but no certificate to pin"):
        NodeClient(alpha.model_copy(update={"certificate": None}))
    remote = alpha.model_copy(update={"url": "http://198.51.100.7:8701"})
    with pytest.raises(InputError, match="neither https nor plain http on loopback"):
        NodeClient(remote)


def node_files(split_federation: SplitFederation, issuer: Issuer) -> dict[str, Any]:
    data = split_federation.nodes["alpha"]
    return {
        "bfile": data / "genotypes",
        "phenotypes": data / "phenotypes.tsv",
        "trusted_issuers": [issuer.jwks],
    }


def test_tls__plain_http_needs_insecure_and_loopback(
    split_federation: SplitFederation,
    issuer: Issuer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = node_files(split_federation, issuer)
    with pytest.raises(InputError, match="plain HTTP is allowed only on loopback"):
        init_node("open", **files, out=tmp_path / "open", host="0.0.0.0", insecure=True)
    init = init_node("plain", **files, out=tmp_path / "plain", port=free_port(), insecure=True)
    assert not (tmp_path / "plain" / "tls").exists()
    assert main(["node", "serve", str(init.config)]) == 2
    assert "has no [tls] section" in capsys.readouterr().err
    passport = passport_for(issuer, "genofed:plain")
    with (
        LocalNodes([init.config], insecure=True),
        NodeClient(read_card(init.card), passport=passport) as client,
    ):
        assert client.dataset().node == "plain"
