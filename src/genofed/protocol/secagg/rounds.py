"""One masked round of a job on the wire: what a node sends, and how the verifier sums it.

A node masks every result part of a job under the job's study, its round
label and the part's name (``null``, ``block/3``, ``block/3/missing``), so no
two arrays are ever masked under the same labels, and signs the masked part
with its identity key. On top of the pairwise masks, every node but the
round's **verifier** adds a gate mask shared with the verifier only: the sum
of all participants' parts is still masked for the coordinator. The
coordinator hands every participant's signed part to the verifier, which
checks each signature, sums the parts (the pairwise masks cancel), lifts the
gates and releases the total under the part's rules. The verifier of a
round is one of its participants, drawn from the study and the round label
(:func:`choose_verifier`): every party computes the same one, and any
participant will do, since the peers trust each other to verify.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from genofed.errors import ProtocolError
from genofed.protocol.codec import decode_arrays, encode_arrays
from genofed.protocol.messages import SignedKey
from genofed.protocol.secagg.keys import (
    IdentityKey,
    PartContext,
    SignedStudyKey,
    StudyKey,
    sign_part,
    verify_part,
)
from genofed.protocol.secagg.masks import mask_arrays, unmask_sum, unmask_verified
from genofed.protocol.secagg.ring import rings_from_arrays, rings_to_arrays

__all__ = [
    "MaskedRound",
    "choose_verifier",
    "signed_key_message",
    "signed_study_key",
    "sum_masked",
]

FloatArray = npt.NDArray[np.float64]
_RULE = "rule:"  # a node's disclosure setting, sent with its part


def choose_verifier(study_id: str, round_label: str, participants: Sequence[str]) -> str:
    """Return the participant that verifies a round, drawn from the study and round label."""
    names = sorted(participants)
    digest = hashlib.sha256(f"genofed verifier\0{study_id}\0{round_label}".encode()).digest()
    return names[int.from_bytes(digest[:8], "big") % len(names)]


@dataclass(frozen=True, repr=False)
class MaskedRound:
    """A node's side of one round: its keys, its verified peers and the round's verifier.

    ``peers`` maps every participant, this node included, to its verified
    X25519 study key; ``trusted`` maps them to the Ed25519 identity keys this
    node trusts for them (from its own peer cards), which check signed parts.
    """

    me: str
    study_key: StudyKey
    peers: Mapping[str, bytes]
    study_id: str
    round_label: str
    identity: IdentityKey | None = None
    trusted: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def participants(self) -> tuple[str, ...]:
        """The nodes whose sum cancels the masks, sorted."""
        return tuple(sorted({self.me, *self.peers}))

    @property
    def verifier(self) -> str:
        """The participant that verifies this round's parts."""
        return choose_verifier(self.study_id, self.round_label, self.participants)

    def context(self, part: str, request: str, state: str) -> PartContext:
        """Return what a signature on ``part`` binds: round, request and the node's state."""
        return PartContext(self.study_id, self.round_label, part, request, state)

    def encode(
        self, part: str, arrays: Mapping[str, npt.ArrayLike], rules: Mapping[str, int]
    ) -> bytes:
        """Mask the arrays of one result part, gated for the verifier, and pack them.

        ``rules`` are this node's disclosure settings the verifier applies to
        the total (the strictest of all participants'); they travel in the
        clear, as ``rule:<name>``, under the part's signature.
        """
        masked = mask_arrays(
            arrays,
            me=self.me,
            study_key=self.study_key,
            peers=self.peers,
            study_id=self.study_id,
            round_label=f"{self.round_label}:{part}",
            verifier=self.verifier,
        )
        settings = {f"{_RULE}{name}": np.asarray(value) for name, value in rules.items()}
        return encode_arrays({**rings_to_arrays(masked), **settings})

    def sign(self, context: PartContext, payload: bytes) -> bytes:
        """Sign a masked part with this node's identity key.

        Raises
        ------
        ProtocolError
            If the node has no identity key.
        """
        if self.identity is None:
            raise ProtocolError(f"node {self.me} has no identity key to sign its parts with")
        return sign_part(self.identity, self.me, context, payload)

    def total(
        self, context: PartContext, contributions: Mapping[str, tuple[bytes, bytes]]
    ) -> tuple[dict[str, FloatArray], dict[str, dict[str, int]]]:
        """As the verifier, check every participant's signed part and return their total.

        ``contributions`` maps each participant to its masked payload and its
        signature, computed for ``context`` (this node's own request and
        state). Returns the total, and each participant's rules as it sent them.

        Raises
        ------
        ProtocolError
            If this node is not the verifier, a participant's part is missing,
            extra or malformed, or a signature does not verify.
        """
        if self.me != self.verifier:
            raise ProtocolError(
                f"node {self.me} does not verify round {self.round_label!r}; node "
                f"{self.verifier} does"
            )
        rings = {}
        rules: dict[str, dict[str, int]] = {}
        for node in self.participants:
            if node not in contributions:
                raise ProtocolError(f"the {context.part} part of node {node} is missing")
            payload, signature = contributions[node]
            if node not in self.trusted:
                raise ProtocolError(f"node {node} has no identity key trusted by {self.me}")
            verify_part(self.trusted[node], node, context, payload, signature)
            try:
                arrays = decode_arrays(payload)
                settings = {k: v for k, v in arrays.items() if k.startswith(_RULE)}
                rings[node] = rings_from_arrays(
                    {k: v for k, v in arrays.items() if k not in settings}
                )
                rules[node] = {k.removeprefix(_RULE): int(v) for k, v in settings.items()}
            except (ProtocolError, TypeError, ValueError) as exc:
                raise ProtocolError(f"node {node}: {exc}") from exc
        extra = sorted(set(contributions) - set(self.participants))
        if extra:
            raise ProtocolError(f"{', '.join(extra)} took no part in round {self.round_label!r}")
        totals = unmask_verified(
            rings,
            me=self.me,
            study_key=self.study_key,
            peers=self.peers,
            study_id=self.study_id,
            round_label=f"{self.round_label}:{context.part}",
        )
        return totals, rules


def sum_masked(payloads: Mapping[str, bytes]) -> dict[str, FloatArray]:
    """Decode every participant's payload of one ungated part and return the totals.

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
