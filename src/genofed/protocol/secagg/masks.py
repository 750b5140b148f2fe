"""Pairwise masks: keystreams from X25519 key agreement that cancel in the sum.

Each pair of participants derives a seed from their study keys and the
round's labels; the node whose name sorts first adds the seed's keystream,
the other subtracts it. :func:`mask_arrays` encodes and masks one node's
contribution, and :func:`unmask_sum` adds every participant's to the total.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from genofed.errors import InputError, ProtocolError
from genofed.protocol.secagg.keys import StudyKey, _frame
from genofed.protocol.secagg.ring import (
    MAX_PARTICIPANTS,
    FloatArray,
    LimbArray,
    RingArray,
    _add_into,
    _flat_copies,
    _subtract_into,
    decode_fixed,
    encode_fixed,
    ring_add,
)

__all__ = ["mask", "mask_arrays", "unmask_sum", "unmask_verified"]

_SEED_BYTES = 32  # a ChaCha20 key
_CHUNK = 1 << 15  # elements masked per pass, so that keystreams stay in cache
_MASK_CONTEXT = b"genofed pairwise mask v1"
_GATE_CONTEXT = b"genofed verifier gate v1"
_HKDF_SALT = b"genofed secure aggregation v1"


def mask(
    ring: RingArray,
    *,
    me: str,
    study_key: StudyKey,
    peers: Mapping[str, bytes],
    study_id: str,
    round_label: str,
    array_name: str,
) -> RingArray:
    """Add this node's pairwise masks to an encoded array.

    For each peer the node adds the keystream of their shared seed if its
    own name sorts before the peer's, and subtracts it otherwise, so the
    masks of all participants cancel in their sum.

    Parameters
    ----------
    ring
        This node's encoded contribution.
    me
        This node's name.
    study_key
        This node's study key, whose signed public half the peers verified.
    peers
        Every participant's verified X25519 public key (from
        :func:`verify_study_keys`); an entry for ``me`` may be included and
        must then be this node's own key. The participants are ``me`` and
        every name in ``peers``.
    study_id, round_label, array_name
        Labels the masks are derived for. A rerun (after a dropout) needs a
        new ``round_label`` or new study keys; never mask two different
        arrays under the same labels.

    Returns
    -------
    RingArray
        The masked contribution, uniformly distributed when there is a peer.

    Raises
    ------
    ProtocolError
        If a peer's key is unusable, ``peers`` lists another key for ``me``,
        or there are more than ``MAX_PARTICIPANTS`` participants.
    """
    pairs = _pairs(me, study_key, peers)
    return _mask(ring, me, pairs, study_id=study_id, round_label=round_label, array_name=array_name)


@dataclass(frozen=True, repr=False)
class _Pairs:
    """Shared secrets of one node with each of its peers, computed once for many arrays."""

    participants: bytes  # framed sorted names
    peers: tuple[tuple[str, bytes, bytes, bytes], ...]  # name, shared secret, first key, second


def _pairs(me: str, study_key: StudyKey, peers: Mapping[str, bytes]) -> _Pairs:
    others = _other_participants(me, study_key, peers)
    own = study_key.public_bytes()
    pairs = []
    for peer in sorted(others):
        first, second = (own, others[peer]) if me < peer else (others[peer], own)
        pairs.append((peer, study_key._exchange(peer, others[peer]), first, second))
    participants = _frame(*(name.encode() for name in sorted({me, *others})))
    return _Pairs(participants, tuple(pairs))


def _mask(
    ring: RingArray,
    me: str,
    pairs: _Pairs,
    *,
    study_id: str,
    round_label: str,
    array_name: str,
    verifier: str | None = None,
) -> RingArray:
    labels = _labels(ring, pairs, study_id=study_id, round_label=round_label, name=array_name)
    streams: list[tuple[bool, CipherContext, CipherContext]] = []
    for peer, secret, first_key, second_key in pairs.peers:
        seed = _seed(_MASK_CONTEXT, labels, me, peer, secret, first_key, second_key)
        streams.append((me < peer, _keystream(seed, 0), _keystream(seed, 1)))
        if peer == verifier:  # a gate only the verifier can lift, on top of the pairwise masks
            seed = _seed(_GATE_CONTEXT, labels, me, peer, secret, first_key, second_key)
            streams.append((True, _keystream(seed, 0), _keystream(seed, 1)))
    lo, hi = _flat_copies(ring)
    _add_masks(lo, hi, streams)
    return RingArray(lo.reshape(ring.shape), hi.reshape(ring.shape), ring.fraction_bits)


def _labels(ring: RingArray, pairs: _Pairs, *, study_id: str, round_label: str, name: str) -> bytes:
    return _frame(
        study_id.encode(),
        round_label.encode(),
        name.encode(),
        ",".join(map(str, ring.shape)).encode(),
        str(ring.fraction_bits).encode(),
        pairs.participants,
    )


def _seed(
    context: bytes,
    labels: bytes,
    me: str,
    peer: str,
    secret: bytes,
    first_key: bytes,
    second_key: bytes,
) -> bytes:
    """Both nodes of a pair derive the same seed for the same context and labels."""
    names = sorted([me, peer])
    transcript = _frame(
        context, labels, names[0].encode(), names[1].encode(), first_key, second_key
    )
    return HKDF(
        algorithm=hashes.SHA256(),
        length=_SEED_BYTES,
        salt=_HKDF_SALT,
        info=hashlib.sha256(transcript).digest(),
    ).derive(secret)


def _other_participants(
    me: str, study_key: StudyKey, peers: Mapping[str, bytes]
) -> dict[str, bytes]:
    if not me:
        raise ProtocolError("a masking node needs a non-empty name")
    others = {name: bytes(key) for name, key in peers.items() if name != me}
    if me in peers and bytes(peers[me]) != study_key.public_bytes():
        raise ProtocolError(
            f"the study key listed for this node {me!r} is not its own; refusing to mask"
        )
    if len(others) + 1 > MAX_PARTICIPANTS:
        raise ProtocolError(
            f"{len(others) + 1} participants exceed the {MAX_PARTICIPANTS} one masked sum can hold"
        )
    return others


def _keystream(seed: bytes, limb: int) -> CipherContext:
    """ChaCha20 keystream of one limb; the limb is the last byte of the 16-byte nonce.

    The nonce starts with the 32-bit block counter at 0, so each limb's
    stream runs for 2**32 blocks (2**35 elements) before any overlap.
    """
    nonce = bytes(15) + bytes([limb])
    return Cipher(algorithms.ChaCha20(seed, nonce), mode=None).encryptor()


def _add_masks(
    lo: LimbArray, hi: LimbArray, streams: Sequence[tuple[bool, CipherContext, CipherContext]]
) -> None:
    """Add (or subtract) each stream's next 8 bytes per element, limb by limb, in place."""
    if not streams or lo.size == 0:
        return
    chunk = min(_CHUNK, lo.size)
    zeros = memoryview(bytes(8 * chunk))
    buffers = (bytearray(8 * chunk + 64), bytearray(8 * chunk + 64))
    words = [np.frombuffer(buffer, dtype="<u8", count=chunk) for buffer in buffers]
    flags = np.empty(chunk, dtype=np.bool_)
    for start in range(0, lo.size, chunk):
        size = min(chunk, lo.size - start)
        lo_part, hi_part = lo[start : start + size], hi[start : start + size]
        add_lo, add_hi, flag = words[0][:size], words[1][:size], flags[:size]
        for plus, lo_stream, hi_stream in streams:
            lo_stream.update_into(zeros[: 8 * size], buffers[0])
            hi_stream.update_into(zeros[: 8 * size], buffers[1])
            if plus:
                _add_into(lo_part, hi_part, add_lo, add_hi, flag)
            else:
                _subtract_into(lo_part, hi_part, add_lo, add_hi, flag)


def mask_arrays(
    arrays: Mapping[str, npt.ArrayLike],
    *,
    me: str,
    study_key: StudyKey,
    peers: Mapping[str, bytes],
    study_id: str,
    round_label: str,
    verifier: str | None = None,
) -> dict[str, RingArray]:
    """Encode and mask each named array of one contribution, under its own name.

    Parameters
    ----------
    arrays
        Array name to the node's values; floating-point arrays use
        ``FRACTION_BITS``, integer and boolean arrays stay exact.
    me, study_key, peers, study_id, round_label
        As for :func:`mask`.
    verifier
        The participant that verifies the round, if any: a node other than it
        adds one more keystream, from its seed shared with the verifier, so
        that the sum of all contributions stays masked for anyone but the
        verifier (:func:`unmask_verified`).

    Returns
    -------
    dict of str to RingArray
        The masked arrays, ready for :func:`rings_to_arrays`.

    Raises
    ------
    InputError
        If a value cannot be encoded (NaN, infinite or too large); the
        message names the array.
    ProtocolError
        As for :func:`mask`.
    """
    pairs = _pairs(me, study_key, peers)
    masked: dict[str, RingArray] = {}
    for name, values in arrays.items():
        try:
            ring = encode_fixed(values)
        except InputError as exc:
            raise InputError(f"array {name!r}: {exc}") from exc
        masked[name] = _mask(
            ring,
            me,
            pairs,
            study_id=study_id,
            round_label=round_label,
            array_name=name,
            verifier=verifier,
        )
    return masked


def unmask_sum(
    contributions: Mapping[str, Mapping[str, RingArray]] | Sequence[Mapping[str, RingArray]],
) -> dict[str, FloatArray]:
    """Sum every participant's masked arrays and decode the totals.

    Only the sum over exactly the participants the masks were made for
    cancels the masks; any other subset decodes to noise.

    Parameters
    ----------
    contributions
        One mapping of array name to masked array per participant, keyed by
        node name (for error messages) or in a list.

    Returns
    -------
    dict of str to numpy.ndarray
        Array name to the float64 total; integer arrays hold exact integers
        up to 2**53 (use :func:`ring_sum` and :func:`decode_integer` beyond).

    Raises
    ------
    ProtocolError
        If there are no contributions or more than ``MAX_PARTICIPANTS``, or if
        they differ in array names, shapes or fraction bits.
    """
    if isinstance(contributions, Mapping):
        named = list(contributions.items())
    else:
        named = [(f"contribution {i + 1}", arrays) for i, arrays in enumerate(contributions)]
    if not named:
        raise ProtocolError("no contributions to sum")
    if len(named) > MAX_PARTICIPANTS:
        raise ProtocolError(
            f"{len(named)} contributions exceed the {MAX_PARTICIPANTS} one masked sum can hold"
        )
    first_source, first = named[0]
    totals = {name: first[name] for name in sorted(first)}
    for source, arrays in named[1:]:
        if set(arrays) != set(totals):
            raise ProtocolError(
                f"{source} holds arrays {sorted(arrays)}, but {first_source} holds "
                f"{sorted(totals)}; nothing was summed"
            )
        for name in totals:
            try:
                totals[name] = ring_add(totals[name], arrays[name])
            except ProtocolError as exc:
                raise ProtocolError(f"array {name!r} of {source}: {exc}") from exc
    return {name: decode_fixed(total) for name, total in totals.items()}


def unmask_verified(
    contributions: Mapping[str, Mapping[str, RingArray]],
    *,
    me: str,
    study_key: StudyKey,
    peers: Mapping[str, bytes],
    study_id: str,
    round_label: str,
) -> dict[str, FloatArray]:
    """Sum every participant's masked arrays and lift the gates: the verifier's total.

    Each participant but the verifier (``me``) added a keystream seeded from
    its pair secret with the verifier (``mask_arrays(..., verifier=me)``);
    the verifier derives each of them and subtracts it from the sum.

    Raises
    ------
    ProtocolError
        As for :func:`unmask_sum`, or if a participant's contribution is
        missing, another one is there, or two hold different arrays.
    """
    pairs = _pairs(me, study_key, peers)
    expected = {me, *(peer for peer, *_ in pairs.peers)}
    if set(contributions) != expected:
        raise ProtocolError(
            f"the round's contributions come from {', '.join(sorted(contributions))}, but its "
            f"participants are {', '.join(sorted(expected))}; nothing was summed"
        )
    names = sorted(contributions[me])
    for source, arrays in contributions.items():
        if sorted(arrays) != names:
            raise ProtocolError(
                f"{source} holds arrays {sorted(arrays)}, but {me} holds {names}; nothing "
                "was summed"
            )
    totals: dict[str, FloatArray] = {}
    for name in names:
        total = contributions[me][name]
        for source, arrays in contributions.items():
            if source != me:
                try:
                    total = ring_add(total, arrays[name])
                except ProtocolError as exc:
                    raise ProtocolError(f"array {name!r} of {source}: {exc}") from exc
        labels = _labels(total, pairs, study_id=study_id, round_label=round_label, name=name)
        streams = []
        for peer, secret, first, second in pairs.peers:
            seed = _seed(_GATE_CONTEXT, labels, me, peer, secret, first, second)
            streams.append((False, _keystream(seed, 0), _keystream(seed, 1)))
        lo, hi = _flat_copies(total)
        _add_masks(lo, hi, streams)
        totals[name] = decode_fixed(
            RingArray(lo.reshape(total.shape), hi.reshape(total.shape), total.fraction_bits)
        )
    return totals
