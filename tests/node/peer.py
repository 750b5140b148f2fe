"""A second participant played by a test, so one in-process node can run masked jobs.

The test holds the peer's identity and study keys: it asks the node for its
study key, signs its own, submits the job, and unmasks a result part by
adding its own masked zeros, just as a coordinator would add a real peer's
masked sums.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from fastapi.testclient import TestClient

from genofed._toml import write_toml
from genofed.protocol.codec import decode_arrays
from genofed.protocol.secagg import (
    IdentityKey,
    MaskedRound,
    StudyKey,
    choose_verifier,
    mask_arrays,
    rings_from_arrays,
    sign_study_key,
    unmask_sum,
    unmask_verified,
)

JOB: dict[str, Any] = {
    "computation": "linear-gwas",
    "version": 2,
    "parameters": {"phenotype": "ldl", "covariates": ["age", "sex"], "block_size": 1000},
}


@dataclass(frozen=True)
class Peer:
    """A participant whose identity key the node trusts through its card."""

    name: str
    identity: IdentityKey
    card: Path


def make_peer(directory: Path, name: str = "peer") -> Peer:
    """Write a public card for a new peer identity into ``directory``."""
    identity = IdentityKey.generate()
    card = directory / f"{name}.public.toml"
    write_toml(
        card,
        {
            "name": name,
            "url": "https://peer.invalid",
            "dataset_id": f"genofed:{name}",
            "identity_key": identity.public_text(),
        },
    )
    return Peer(name, identity, card)


def masked_job(
    client: TestClient,
    peer: Peer,
    job: dict[str, Any] = JOB,
    *,
    study_id: str | None = None,
    round_label: str = "round-1",
    signer: IdentityKey | None = None,
    headers: dict[str, str] | None = None,
    verifier: str = "peer",
) -> tuple[httpx.Response, MaskedRound]:
    """Submit ``job`` masked for the node and ``peer``; return the response and the peer's side.

    ``signer`` signs the peer's study key in its place (a substituted key).
    Unless a ``study_id`` is given, one is drawn for which the round's
    verifier is ``verifier``: ``"peer"`` (the node is a plain participant)
    or ``"node"``.
    """
    for _ in range(64):
        study = study_id or secrets.token_hex(16)
        answer = client.post("/studies", json={"study_id": study}, headers=headers)
        answer.raise_for_status()
        node_key = answer.json()
        drawn = choose_verifier(study, round_label, [node_key["node"], peer.name])
        if study_id or drawn == (peer.name if verifier == "peer" else node_key["node"]):
            break
    study_key = StudyKey.generate()
    peer_key = sign_study_key(
        signer or peer.identity, study_key, study_id=study, node=peer.name
    ).to_dict()
    aggregation = {"study_id": study, "round": round_label, "keys": [node_key, peer_key]}
    response = client.post("/jobs", json={**job, "aggregation": aggregation}, headers=headers)
    peers = {
        node_key["node"]: base64.b64decode(node_key["public_key"]),
        peer.name: study_key.public_bytes(),
    }
    return response, MaskedRound(peer.name, study_key, peers, study, round_label)


def unmask(payload: bytes, part: str, peer: MaskedRound) -> dict[str, npt.NDArray[np.float64]]:
    """Add the peer's masked zeros to the node's masked part: the node's own sums.

    When the peer verifies the round, it also lifts the gate the node added for it.
    """
    arrays = decode_arrays(payload)
    rings = rings_from_arrays({k: v for k, v in arrays.items() if not k.startswith("rule:")})
    zeros = {
        name: np.zeros(ring.shape, dtype=np.int64 if ring.fraction_bits == 0 else np.float64)
        for name, ring in rings.items()
    }
    own = mask_arrays(
        zeros,
        me=peer.me,
        study_key=peer.study_key,
        peers=peer.peers,
        study_id=peer.study_id,
        round_label=f"{peer.round_label}:{part}",
    )
    if peer.verifier != peer.me:
        return unmask_sum([rings, own])
    node = next(name for name in peer.peers if name != peer.me)
    return unmask_verified(
        {node: rings, peer.me: own},
        me=peer.me,
        study_key=peer.study_key,
        peers=peer.peers,
        study_id=peer.study_id,
        round_label=f"{peer.round_label}:{part}",
    )
