"""One masked round on the wire: what a node sends and how the coordinator sums it.

A node masks every result part of a job under the job's study, its round
label and the part's name (``null``, ``block/3``, ``block/3/missing``), so no
two arrays are ever masked under the same labels. The coordinator decodes
each node's payload and adds them; only the sum over all participants of the
round cancels the masks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genofed.errors import ProtocolError
from genofed.protocol.codec import decode_arrays, encode_arrays
from genofed.protocol.messages import SignedKey
from genofed.protocol.secagg.keys import SignedStudyKey, StudyKey
from genofed.protocol.secagg.masks import mask_arrays, unmask_sum
from genofed.protocol.secagg.ring import rings_from_arrays, rings_to_arrays

__all__ = ["MaskedRound", "signed_key_message", "signed_study_key", "sum_masked"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, repr=False)
class MaskedRound:
    """A node's side of one round: its study key and its verified peers."""

    me: str
    study_key: StudyKey
    peers: Mapping[str, bytes]  # every participant's verified X25519 key, this node's included
    study_id: str
    round_label: str

    @property
    def participants(self) -> tuple[str, ...]:
        """The nodes whose sum cancels the masks, sorted."""
        return tuple(sorted({self.me, *self.peers}))

    def encode(self, part: str, arrays: Mapping[str, npt.ArrayLike]) -> bytes:
        """Mask the arrays of one result part and pack them for the wire."""
        masked = mask_arrays(
            arrays,
            me=self.me,
            study_key=self.study_key,
            peers=self.peers,
            study_id=self.study_id,
            round_label=f"{self.round_label}:{part}",
        )
        return encode_arrays(rings_to_arrays(masked))


def sum_masked(payloads: Mapping[str, bytes]) -> dict[str, FloatArray]:
    """Decode every participant's payload of one part and return the unmasked totals.

    Raises
    ------
    ProtocolError
        Naming the node whose payload is malformed or does not match the others.
    """
    contributions = {}
    for node, payload in payloads.items():
        try:
            contributions[node] = rings_from_arrays(decode_arrays(payload))
        except ProtocolError as exc:
            raise ProtocolError(f"node {node}: {exc}") from exc
    return unmask_sum(contributions)


def signed_study_key(message: SignedKey) -> SignedStudyKey:
    """Read a signed key from its message form.

    Raises
    ------
    ProtocolError
        If a key or signature is not base64 of the right length.
    """
    return SignedStudyKey.from_dict(message.model_dump())


def signed_key_message(key: SignedStudyKey) -> SignedKey:
    """Write a signed study key in its message form."""
    return SignedKey.model_validate(key.to_dict())
