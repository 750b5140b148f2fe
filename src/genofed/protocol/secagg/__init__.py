"""Secure aggregation: pairwise masks that hide each node's sums and cancel in their total.

Every array a node returns for aggregation is encoded in fixed point over the
ring of integers modulo 2**128 (:class:`RingArray`) and masked with one
keystream per peer. For two participants ``i < j`` (ordered by the code
points of their node names) both derive the same seed from an X25519 key
agreement between their per-study keys; ``i`` adds the keystream and ``j``
subtracts it, so the masks cancel exactly in the sum over all participants
while each masked array on its own is uniformly distributed over the ring.

The package has one module per concern, and its public names are
re-exported here:

- :mod:`~genofed.protocol.secagg.keys`: identity keys, study keys and their signatures;
- :mod:`~genofed.protocol.secagg.ring`: the fixed-point ring and its wire layout;
- :mod:`~genofed.protocol.secagg.masks`: pairwise masks, their labels and keystreams;
- :mod:`~genofed.protocol.secagg.rounds`: one masked round of a job on the wire.

Keys (:mod:`.keys`)
    Each node holds a long-term Ed25519 :class:`IdentityKey` whose public half
    is on its public card. For every study it makes a fresh :class:`StudyKey`
    (X25519) and signs it (:func:`sign_study_key`). Before masking, a node
    checks every peer's :class:`SignedStudyKey` against the identity keys it
    trusts itself (:func:`verify_study_keys`), never against keys taken from
    the coordinator's message.

Labels (:mod:`.masks`)
    A pairwise seed is HKDF-SHA256 of the X25519 shared secret, bound to the
    study id, the round label, the array name and shape, the two public keys
    and the sorted set of participants. A rerun after a node drops out uses a
    fresh round label over the remaining participants and so gets independent
    masks; no step ever removes the masks of a single node's contribution.
    A node must never mask two different arrays under the same study key,
    round label and array name: the difference of the two masked arrays would
    be the difference of their values.

Fixed point (:mod:`.ring`)
    Floating-point values are encoded as ``round(x * 2**FRACTION_BITS)`` with
    ``FRACTION_BITS = 68``: each node's value is off by at most ``2**-69``
    (about 1.7e-21), values of at least ``2**-15`` in magnitude are encoded
    exactly, and decoding a sum to float64 is off by at most 1.5 units in
    the last place. A decoded sum of terms of 1e-6 is thus within about
    2e-15 relative, of 1e-3 within float64 rounding, and so on up to the
    limit ``|x| < MAX_MAGNITUDE = 2**53`` (about 9.0e15) per node. Integer
    and boolean arrays are encoded with no fraction bits and decode exactly.
    Sums over at most ``MAX_PARTICIPANTS`` (64) nodes cannot wrap around.

One round (:mod:`.rounds`)
    Every participant ``P`` publishes ``sign_study_key(identity, study_key,
    study_id=..., node=P)`` (``.to_dict()`` as JSON) once per study. For a
    round, the coordinator sends each node the round label and the signed
    keys of all participants; each node then runs::

        peers = verify_study_keys(signed, trusted_identities, study_id=study_id)
        masked = mask_arrays(sums, me=P, study_key=study_key, peers=peers,
                             study_id=study_id, round_label=label)
        payload = encode_arrays(rings_to_arrays(masked))

    and the coordinator, with every participant's payload::

        totals = unmask_sum({node: rings_from_arrays(decode_arrays(payload)) ...})

    In a job, :class:`MaskedRound` (a node's side) and :func:`sum_masked`
    (the coordinator's) take these steps for each result part, under the
    round label ``<label>:<part>``.

    If a node fails, the coordinator repeats the round over the remaining
    nodes with a new label; the contributions of the failed round are dropped.
    A coordinator that did receive the "failed" node's contribution could
    subtract the rerun's sum from the first round's, so a rerun over a subset
    of the same data is a differencing question for the nodes' disclosure
    rules, not something masking can prevent.
    With no peers ``mask`` leaves an array as it is: a sum over one node is
    that node's value, so rounds need at least two participants to hide any.
"""

from genofed.protocol.secagg.keys import (
    IdentityKey,
    PartContext,
    SignedStudyKey,
    StudyKey,
    parse_public_key,
    sign_part,
    sign_study_key,
    verify_part,
    verify_study_keys,
)
from genofed.protocol.secagg.masks import mask, mask_arrays, unmask_sum, unmask_verified
from genofed.protocol.secagg.ring import (
    FRACTION_BITS,
    MAX_MAGNITUDE,
    MAX_PARTICIPANTS,
    RingArray,
    decode_fixed,
    decode_integer,
    encode_fixed,
    ring_add,
    ring_sum,
    rings_from_arrays,
    rings_to_arrays,
)
from genofed.protocol.secagg.rounds import (
    MaskedRound,
    choose_verifier,
    signed_key_message,
    signed_study_key,
    sum_masked,
)

__all__ = [
    "FRACTION_BITS",
    "MAX_MAGNITUDE",
    "MAX_PARTICIPANTS",
    "IdentityKey",
    "MaskedRound",
    "PartContext",
    "RingArray",
    "SignedStudyKey",
    "StudyKey",
    "choose_verifier",
    "decode_fixed",
    "decode_integer",
    "encode_fixed",
    "mask",
    "mask_arrays",
    "parse_public_key",
    "ring_add",
    "ring_sum",
    "rings_from_arrays",
    "rings_to_arrays",
    "sign_part",
    "sign_study_key",
    "signed_key_message",
    "signed_study_key",
    "sum_masked",
    "unmask_sum",
    "unmask_verified",
    "verify_part",
    "verify_study_keys",
]
