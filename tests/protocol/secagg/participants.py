"""The participants of the secure-aggregation tests: six nodes with deterministic keys."""

from __future__ import annotations

import hashlib

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from genofed.protocol.secagg import IdentityKey, RingArray, StudyKey, mask_arrays

NAMES = ("AT", "BE", "CZ", "DE", "EE", "FI")
STUDY = "study-1"


def study_key(name: str, salt: str = "") -> StudyKey:
    """A deterministic study key, so that the statistical tests are reproducible."""
    return StudyKey.from_private_bytes(hashlib.sha256(f"study {salt}{name}".encode()).digest())


def identity_key(name: str) -> IdentityKey:
    seed = hashlib.sha256(f"identity {name}".encode()).digest()
    return IdentityKey(Ed25519PrivateKey.from_private_bytes(seed))


KEYS = {name: study_key(name) for name in NAMES}
PUBLIC = {name: key.public_bytes() for name, key in KEYS.items()}
IDENTITIES = {name: identity_key(name) for name in NAMES}
TRUSTED = {name: key.public_bytes() for name, key in IDENTITIES.items()}


def masked_round(
    values: dict[str, dict[str, np.ndarray]],
    *,
    round_label: str = "r1",
    participants: tuple[str, ...] | None = None,
) -> dict[str, dict[str, RingArray]]:
    """Each node in ``values`` masks its arrays for ``participants`` (by default: the same)."""
    names = participants or tuple(values)
    peers = {name: PUBLIC[name] for name in names}
    return {
        node: mask_arrays(
            arrays,
            me=node,
            study_key=KEYS[node],
            peers=peers,
            study_id=STUDY,
            round_label=round_label,
        )
        for node, arrays in values.items()
    }
