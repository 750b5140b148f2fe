"""Secure aggregation: pairwise masks that hide each node's sums and cancel in their total.

Every array a node returns for aggregation is encoded in fixed point over the
ring of integers modulo 2**128 (:class:`RingArray`) and masked with one
keystream per peer. For two participants ``i < j`` (ordered by the code
points of their node names) both derive the same seed from an X25519 key
agreement between their per-study keys; ``i`` adds the keystream and ``j``
subtracts it, so the masks cancel exactly in the sum over all participants
while each masked array on its own is uniformly distributed over the ring.

Keys
    Each node holds a long-term Ed25519 :class:`IdentityKey` whose public half
    is on its public card. For every study it makes a fresh :class:`StudyKey`
    (X25519) and signs it (:func:`sign_study_key`). Before masking, a node
    checks every peer's :class:`SignedStudyKey` against the identity keys it
    trusts itself (:func:`verify_study_keys`), never against keys taken from
    the coordinator's message.

Labels
    A pairwise seed is HKDF-SHA256 of the X25519 shared secret, bound to the
    study id, the round label, the array name and shape, the two public keys
    and the sorted set of participants. A rerun after a node drops out uses a
    fresh round label over the remaining participants and so gets independent
    masks; no step ever removes the masks of a single node's contribution.
    A node must never mask two different arrays under the same study key,
    round label and array name: the difference of the two masked arrays would
    be the difference of their values.

Fixed point
    Floating-point values are encoded as ``round(x * 2**FRACTION_BITS)`` with
    ``FRACTION_BITS = 68``: each node's value is off by at most ``2**-69``
    (about 1.7e-21), values of at least ``2**-15`` in magnitude are encoded
    exactly, and decoding a sum to float64 is off by at most 1.5 units in
    the last place. A decoded sum of terms of 1e-6 is thus within about
    2e-15 relative, of 1e-3 within float64 rounding, and so on up to the
    limit ``|x| < MAX_MAGNITUDE = 2**53`` (about 9.0e15) per node. Integer
    and boolean arrays are encoded with no fraction bits and decode exactly.
    Sums over at most ``MAX_PARTICIPANTS`` (64) nodes cannot wrap around.

One round
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

    If a node fails, the coordinator repeats the round over the remaining
    nodes with a new label; the contributions of the failed round are dropped.
    A coordinator that did receive the "failed" node's contribution could
    subtract the rerun's sum from the first round's, so a rerun over a subset
    of the same data is a differencing question for the nodes' disclosure
    rules, not something masking can prevent.
    With no peers ``mask`` leaves an array as it is: a sum over one node is
    that node's value, so rounds need at least two participants to hide any.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from genofed.errors import InputError, ProtocolError

__all__ = [
    "FRACTION_BITS",
    "MAX_MAGNITUDE",
    "MAX_PARTICIPANTS",
    "IdentityKey",
    "RingArray",
    "SignedStudyKey",
    "StudyKey",
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
    "sign_study_key",
    "unmask_sum",
    "verify_study_keys",
]

FloatArray = npt.NDArray[np.float64]
LimbArray = npt.NDArray[np.uint64]

RING_BITS = 128
FRACTION_BITS = 68
"""Fraction bits of encoded floating-point values."""
MAX_PARTICIPANTS = 64
"""Most contributions one sum may hold; the ring keeps this much headroom."""
_HEADROOM_BITS = 6  # log2(MAX_PARTICIPANTS)
MAX_MAGNITUDE = 2.0 ** (RING_BITS - 1 - _HEADROOM_BITS - FRACTION_BITS)
"""Largest magnitude (exclusive) of a floating-point value at ``FRACTION_BITS``."""

_KEY_BYTES = 32
_SIGNATURE_BYTES = 64
_CHUNK = 1 << 15  # elements masked per pass, so that keystreams stay in cache
_U64_MAX = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_STUDY_KEY_CONTEXT = b"genofed study key v1"
_MASK_CONTEXT = b"genofed pairwise mask v1"
_HKDF_SALT = b"genofed secure aggregation v1"
_MEMBERS = ("lo", "hi", "fraction_bits")  # wire members of one ring array


# --------------------------------------------------------------------------- keys


class IdentityKey:
    """A node's long-term Ed25519 signing key; its public half goes on the node's card."""

    __slots__ = ("_private",)

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private

    @classmethod
    def generate(cls) -> IdentityKey:
        """Make a new random identity key."""
        return cls(Ed25519PrivateKey.generate())

    def save(self, path: str | os.PathLike[str], *, password: bytes | None = None) -> None:
        """Write the private key as PKCS#8 PEM, readable by its owner only (mode 0600).

        Parameters
        ----------
        path
            Destination; it must not exist yet. The key is written to a
            temporary sibling and renamed, so ``path`` is whole or absent.
        password
            Encrypt the PEM with this password.

        Raises
        ------
        InputError
            If ``path`` already exists: an identity key is never overwritten.
        """
        path = Path(path)
        if path.exists():
            raise InputError(
                f"identity key file {path} already exists; an identity key is never "
                "overwritten (nothing was written)"
            )
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        pem = self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        staging = path.with_name(f".{path.name}.partial-{os.urandom(4).hex()}")
        try:
            descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise InputError(f"cannot write identity key file {path}: {exc}") from exc
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(staging, 0o600)  # whatever the umask was
            os.replace(staging, path)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, password: bytes | None = None) -> IdentityKey:
        """Read a key written by :meth:`save`.

        Raises
        ------
        InputError
            If the file is missing, unreadable, encrypted with another
            password, or holds anything but an Ed25519 private key.
        """
        path = Path(path)
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=password)
        except OSError as exc:
            raise InputError(f"cannot read identity key file {path}: {exc}") from exc
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise InputError(f"identity key file {path} is not a usable PEM key: {exc}") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise InputError(
                f"identity key file {path} holds a {type(private).__name__}, "
                "expected an Ed25519 private key"
            )
        return cls(private)

    def public_bytes(self) -> bytes:
        """Return the 32 raw bytes of the public key."""
        return self._private.public_key().public_bytes_raw()

    def public_text(self) -> str:
        """Return the public key as base64 text, as printed on a node's card."""
        return base64.b64encode(self.public_bytes()).decode("ascii")

    def _sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"IdentityKey(public={self.public_text()!r})"


class StudyKey:
    """A node's fresh X25519 key pair for one study; never reuse it for another."""

    __slots__ = ("_private",)

    def __init__(self, private: X25519PrivateKey) -> None:
        self._private = private

    @classmethod
    def generate(cls) -> StudyKey:
        """Make a new random study key."""
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, data: bytes) -> StudyKey:
        """Restore a key from :meth:`private_bytes` (for a node resuming a study)."""
        if len(data) != _KEY_BYTES:
            raise InputError(f"a study key has {_KEY_BYTES} bytes, received {len(data)}")
        return cls(X25519PrivateKey.from_private_bytes(data))

    def private_bytes(self) -> bytes:
        """Return the 32 raw bytes of the private key; keep them as secret as the key."""
        return self._private.private_bytes_raw()

    def public_bytes(self) -> bytes:
        """Return the 32 raw bytes of the public key."""
        return self._private.public_key().public_bytes_raw()

    def _exchange(self, peer: str, public: bytes) -> bytes:
        try:
            return self._private.exchange(X25519PublicKey.from_public_bytes(public))
        except ValueError as exc:  # wrong length, or a low-order point
            raise ProtocolError(
                f"study key of node {peer!r} is not a usable X25519 public key ({exc}); "
                "refusing to mask"
            ) from exc

    def __repr__(self) -> str:
        return f"StudyKey(public={base64.b64encode(self.public_bytes()).decode('ascii')!r})"


@dataclass(frozen=True)
class SignedStudyKey:
    """A node's X25519 study key, signed with its identity key for one study."""

    node: str
    study_id: str
    public_key: bytes  # 32 raw bytes of X25519
    signature: bytes  # Ed25519 over the node, study id and public key

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-able form; the keys and signature are base64 text."""
        return {
            "node": self.node,
            "study_id": self.study_id,
            "public_key": base64.b64encode(self.public_key).decode("ascii"),
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignedStudyKey:
        """Read :meth:`to_dict` output.

        Raises
        ------
        ProtocolError
            If a field is missing, not text, or not base64 of the right length.
        """
        fields = ("node", "study_id", "public_key", "signature")
        if set(data) != set(fields) or not all(isinstance(data[f], str) for f in fields):
            raise ProtocolError(
                f"a signed study key has the text fields {list(fields)}, "
                f"received {sorted(map(str, data))}"
            )
        node = data["node"]
        public_key = _base64_field(data["public_key"], _KEY_BYTES, f"public_key of {node!r}")
        signature = _base64_field(data["signature"], _SIGNATURE_BYTES, f"signature of {node!r}")
        return cls(node, data["study_id"], public_key, signature)


def _base64_field(text: str, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"{what} is not base64: {exc}") from exc
    if len(raw) != size:
        raise ProtocolError(f"{what} has {len(raw)} bytes, expected {size}")
    return raw


def parse_public_key(text: str) -> bytes:
    """Decode a base64 public key from a node's card into its 32 raw bytes.

    Raises
    ------
    InputError
        If ``text`` is not base64 of 32 bytes.
    """
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"public key {text!r} is not base64: {exc}") from exc
    if len(raw) != _KEY_BYTES:
        raise InputError(f"public key {text!r} has {len(raw)} bytes, expected {_KEY_BYTES}")
    return raw


def _frame(*parts: bytes) -> bytes:
    """Concatenate with length prefixes, so that no two tuples share an encoding."""
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def _study_key_message(node: str, study_id: str, public_key: bytes) -> bytes:
    return _frame(_STUDY_KEY_CONTEXT, study_id.encode(), node.encode(), public_key)


def sign_study_key(
    identity: IdentityKey, study_key: StudyKey, *, study_id: str, node: str
) -> SignedStudyKey:
    """Sign a node's study key for one study with the node's identity key.

    Parameters
    ----------
    identity
        The node's long-term identity key.
    study_key
        The node's fresh key for this study.
    study_id
        The study the key is for; a signature binds the key to it.
    node
        The node's name, as its peers know it.

    Returns
    -------
    SignedStudyKey
        What the node publishes to its peers through the coordinator.
    """
    public_key = study_key.public_bytes()
    signature = identity._sign(_study_key_message(node, study_id, public_key))
    return SignedStudyKey(node, study_id, public_key, signature)


def verify_study_keys(
    signed: Iterable[SignedStudyKey], trusted: Mapping[str, bytes], *, study_id: str
) -> dict[str, bytes]:
    """Check every signed study key against identity keys the node trusts itself.

    Parameters
    ----------
    signed
        The participants' signed study keys, as relayed by the coordinator.
    trusted
        Node name to the raw Ed25519 public key this node trusts for it,
        from the node's own configuration (never from the coordinator).
    study_id
        The study being masked for.

    Returns
    -------
    dict of str to bytes
        Node name to its verified X25519 public key, ready for :func:`mask`.

    Raises
    ------
    ProtocolError
        Naming the node, if a key is listed twice, is for another study, comes
        from a node without a trusted identity key, or its signature does not
        verify against that node's trusted key.
    """
    verified: dict[str, bytes] = {}
    for key in signed:
        node = key.node
        if node in verified:
            raise ProtocolError(f"node {node!r} has two study keys; refusing to mask")
        if key.study_id != study_id:
            raise ProtocolError(
                f"study key of node {node!r} is for study {key.study_id!r}, not {study_id!r}; "
                "refusing to mask"
            )
        if node not in trusted:
            raise ProtocolError(
                f"node {node!r} has no trusted identity key on this node; refusing to mask"
            )
        try:
            identity = Ed25519PublicKey.from_public_bytes(trusted[node])
            identity.verify(key.signature, _study_key_message(node, study_id, key.public_key))
        except (InvalidSignature, ValueError) as exc:
            raise ProtocolError(
                f"study key of node {node!r} is not signed by the identity key trusted for "
                f"{node!r} (substituted or tampered key); refusing to mask"
            ) from exc
        verified[node] = key.public_key
    return verified


# --------------------------------------------------------------------------- ring


@dataclass(frozen=True, eq=False)
class RingArray:
    """Integers modulo 2**128 as two uint64 limbs, value = hi * 2**64 + lo.

    ``fraction_bits`` is the fixed-point scale: the encoded number is the
    value, read as a signed 128-bit integer, times ``2**-fraction_bits``.
    """

    lo: LimbArray
    hi: LimbArray
    fraction_bits: int

    def __post_init__(self) -> None:
        for limb in (self.lo, self.hi):
            if not isinstance(limb, np.ndarray) or limb.dtype != np.uint64:
                raise ProtocolError(f"ring limbs must be uint64 arrays, received {_describe(limb)}")
        if self.lo.shape != self.hi.shape:
            raise ProtocolError(f"ring limbs differ in shape: {self.lo.shape} and {self.hi.shape}")
        if not 0 <= self.fraction_bits < RING_BITS - _HEADROOM_BITS:
            raise ProtocolError(f"fraction_bits {self.fraction_bits} is outside [0, 121]")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the encoded array."""
        return tuple(self.lo.shape)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{value.shape}"
    return type(value).__name__


def encode_fixed(values: npt.ArrayLike, *, fraction_bits: int = FRACTION_BITS) -> RingArray:
    """Encode numbers exactly as fixed point in the ring.

    Parameters
    ----------
    values
        Floating-point, integer or boolean numbers of any shape.
    fraction_bits
        Scale of floating-point values, ``round(x * 2**fraction_bits)``
        (ties to even). Integer and boolean arrays always use 0 and stay exact.

    Returns
    -------
    RingArray
        The encoded array, of the same shape.

    Raises
    ------
    InputError
        If a value is NaN or infinite, if a magnitude would overflow the
        ring (``|x| >= 2**(121 - fraction_bits)``, by default ``MAX_MAGNITUDE``),
        or if the values are not numbers.
    """
    array = np.asarray(values)
    shape = array.shape
    flat = array.reshape(-1)  # 1-d throughout, so no numpy scalar arithmetic
    if flat.dtype.kind in "bu":
        lo = flat.astype(np.uint64)
        return RingArray(lo.reshape(shape), np.zeros_like(lo).reshape(shape), 0)
    if flat.dtype.kind == "i":
        signed = flat.astype(np.int64)
        hi = np.where(signed < 0, _U64_MAX, np.uint64(0))
        return RingArray(signed.astype(np.uint64).reshape(shape), hi.reshape(shape), 0)
    if flat.dtype.kind != "f":
        raise InputError(f"cannot encode {array.dtype} values for masking; expected numbers")
    if not 0 <= fraction_bits < RING_BITS - _HEADROOM_BITS:
        raise InputError(f"fraction_bits must be in [0, 121], received {fraction_bits}")
    x = flat.astype(np.float64)
    magnitude = np.abs(x)
    top = RING_BITS - 1 - _HEADROOM_BITS - fraction_bits
    if not np.all(magnitude < 2.0**top):  # also false for NaN
        _refuse(~np.isfinite(x), x, shape, "are NaN or infinite", "")
        _refuse(
            magnitude >= 2.0**top,
            x,
            shape,
            f"exceed the range of the masking ring, |x| < 2^{top} = {2.0**top:.3g}",
            "scale or centre the inputs; ",
        )
    # Scaling by powers of two is exact, and so is the subtraction: the low
    # limb is a multiple of ulp(scaled) below 2**64, so it has at most 53 bits.
    scaled = np.rint(magnitude * 2.0**fraction_bits)
    hi_float = np.floor(scaled * 2.0**-64)
    lo = (scaled - hi_float * 2.0**64).astype(np.uint64)
    hi = hi_float.astype(np.uint64)
    _negate(lo, hi, where=np.signbit(x))
    return RingArray(lo.reshape(shape), hi.reshape(shape), fraction_bits)


def _refuse(
    bad: npt.NDArray[np.bool_], x: FloatArray, shape: tuple[int, ...], what: str, advice: str
) -> None:
    count = int(np.count_nonzero(bad))
    if count:
        first = int(np.argmax(bad))
        index = tuple(int(i) for i in np.unravel_index(first, shape))
        raise InputError(
            f"{count} of {bad.size} values {what} (first at index {index}: "
            f"{float(x[first])!r}); {advice}nothing was masked"
        )


def _negate(lo: LimbArray, hi: LimbArray, *, where: npt.NDArray[np.bool_]) -> None:
    """Two's complement negation in place where ``where`` is set: -v = ~v + 1.

    Branch-free on 1-d arrays: with ``s`` all ones where negated and zero
    elsewhere, ``(v ^ s) - s`` is ``-v`` or ``v``, the carry of the ``+ 1``
    reaching the high limb only when the low limb is zero.
    """
    flip = np.negative(where.astype(np.uint64))
    np.bitwise_xor(lo, flip, out=lo)
    np.bitwise_xor(hi, flip, out=hi)
    np.subtract(lo, flip, out=lo)
    np.add(hi, (lo == 0) & where, out=hi)


def _add_into(
    lo: LimbArray, hi: LimbArray, add_lo: LimbArray, add_hi: LimbArray, carry: npt.NDArray[np.bool_]
) -> None:
    """(hi, lo) += (add_hi, add_lo) in place on 1-d arrays; ``carry`` is scratch space."""
    np.add(lo, add_lo, out=lo)
    np.less(lo, add_lo, out=carry)
    np.add(hi, add_hi, out=hi)
    np.add(hi, carry, out=hi)


def _subtract_into(
    lo: LimbArray,
    hi: LimbArray,
    sub_lo: LimbArray,
    sub_hi: LimbArray,
    borrow: npt.NDArray[np.bool_],
) -> None:
    """(hi, lo) -= (sub_hi, sub_lo) in place on 1-d arrays; ``borrow`` is scratch space."""
    np.less(lo, sub_lo, out=borrow)
    np.subtract(lo, sub_lo, out=lo)
    np.subtract(hi, sub_hi, out=hi)
    np.subtract(hi, borrow, out=hi)


def _flat_copies(ring: RingArray) -> tuple[LimbArray, LimbArray]:
    lo = np.array(ring.lo, dtype=np.uint64, copy=True).reshape(-1)
    hi = np.array(ring.hi, dtype=np.uint64, copy=True).reshape(-1)
    return lo, hi


def decode_fixed(ring: RingArray) -> FloatArray:
    """Decode a ring array (usually a sum) to float64 values.

    The signed 128-bit value is rounded to float64 within 1.5 units in the
    last place; integers (``fraction_bits`` 0) below 2**53 in magnitude come
    back exactly.

    Parameters
    ----------
    ring
        The array to decode.

    Returns
    -------
    numpy.ndarray
        float64 values of ``ring.shape``.
    """
    lo, hi = _flat_copies(ring)
    negative = hi >= np.uint64(1 << 63)
    _negate(lo, hi, where=negative)
    value = hi.astype(np.float64) * 2.0 ** (64 - ring.fraction_bits)
    value += lo.astype(np.float64) * 2.0**-ring.fraction_bits
    np.negative(value, out=value, where=negative)
    return value.reshape(ring.shape)


def decode_integer(ring: RingArray) -> npt.NDArray[np.int64]:
    """Decode an integer ring array (``fraction_bits`` 0) exactly to int64.

    Raises
    ------
    ProtocolError
        If the array holds fixed-point values or a value outside int64.
    """
    if ring.fraction_bits != 0:
        raise ProtocolError(
            f"array holds fixed-point values with {ring.fraction_bits} fraction bits, not integers"
        )
    lo, hi = _flat_copies(ring)
    fits = np.where(lo >= np.uint64(1 << 63), hi == _U64_MAX, hi == 0)
    if not fits.all():
        raise ProtocolError(f"{int(np.count_nonzero(~fits))} integer sums are outside int64")
    return lo.view(np.int64).reshape(ring.shape)


def ring_add(a: RingArray, b: RingArray) -> RingArray:
    """Add two ring arrays modulo 2**128.

    Raises
    ------
    ProtocolError
        If their shapes or fraction bits differ.
    """
    return ring_sum([a, b])


def ring_sum(rings: Iterable[RingArray]) -> RingArray:
    """Add any positive number of ring arrays modulo 2**128.

    Raises
    ------
    ProtocolError
        If ``rings`` is empty, or their shapes or fraction bits differ.
    """
    iterator = iter(rings)
    first = next(iterator, None)
    if first is None:
        raise ProtocolError("cannot sum an empty list of ring arrays")
    lo, hi = _flat_copies(first)
    carry = np.empty(lo.shape, dtype=np.bool_)
    for ring in iterator:
        _check_alike(first, ring, "ring arrays")
        _add_into(lo, hi, ring.lo.reshape(-1), ring.hi.reshape(-1), carry)
    return RingArray(lo.reshape(first.shape), hi.reshape(first.shape), first.fraction_bits)


def _check_alike(a: RingArray, b: RingArray, what: str) -> None:
    if a.shape != b.shape or a.fraction_bits != b.fraction_bits:
        raise ProtocolError(
            f"{what} do not match: shape {a.shape} with {a.fraction_bits} fraction bits "
            f"against shape {b.shape} with {b.fraction_bits}"
        )


# --------------------------------------------------------------------------- masks


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
    ring: RingArray, me: str, pairs: _Pairs, *, study_id: str, round_label: str, array_name: str
) -> RingArray:
    labels = _frame(
        _MASK_CONTEXT,
        study_id.encode(),
        round_label.encode(),
        array_name.encode(),
        ",".join(map(str, ring.shape)).encode(),
        str(ring.fraction_bits).encode(),
        pairs.participants,
    )
    streams: list[tuple[bool, CipherContext, CipherContext]] = []
    for peer, secret, first_key, second_key in pairs.peers:
        names = sorted([me, peer])
        transcript = _frame(labels, names[0].encode(), names[1].encode(), first_key, second_key)
        seed = HKDF(
            algorithm=hashes.SHA256(),
            length=_KEY_BYTES,
            salt=_HKDF_SALT,
            info=hashlib.sha256(transcript).digest(),
        ).derive(secret)
        streams.append((me < peer, _keystream(seed, 0), _keystream(seed, 1)))
    lo, hi = _flat_copies(ring)
    _add_masks(lo, hi, streams)
    return RingArray(lo.reshape(ring.shape), hi.reshape(ring.shape), ring.fraction_bits)


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
) -> dict[str, RingArray]:
    """Encode and mask each named array of one contribution, under its own name.

    Parameters
    ----------
    arrays
        Array name to the node's values; floating-point arrays use
        ``FRACTION_BITS``, integer and boolean arrays stay exact.
    me, study_key, peers, study_id, round_label
        As for :func:`mask`.

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
            ring, me, pairs, study_id=study_id, round_label=round_label, array_name=name
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


# --------------------------------------------------------------------------- wire


def rings_to_arrays(rings: Mapping[str, RingArray]) -> dict[str, npt.NDArray[np.generic]]:
    """Lay out ring arrays as plain arrays for :func:`genofed.protocol.codec.encode_arrays`.

    Each ring array ``name`` becomes ``name:lo``, ``name:hi`` and the scalar
    ``name:fraction_bits``.
    """
    arrays: dict[str, npt.NDArray[np.generic]] = {}
    for name, ring in rings.items():
        arrays[f"{name}:lo"] = ring.lo
        arrays[f"{name}:hi"] = ring.hi
        arrays[f"{name}:fraction_bits"] = np.asarray(ring.fraction_bits, dtype=np.int64)
    return arrays


def rings_from_arrays(arrays: Mapping[str, npt.NDArray[np.generic]]) -> dict[str, RingArray]:
    """Read :func:`rings_to_arrays` output.

    Raises
    ------
    ProtocolError
        If a member is missing, unexpected, or of the wrong type or shape.
    """
    names = sorted({key.rpartition(":")[0] for key in arrays})
    expected = {f"{name}:{part}" for name in names for part in _MEMBERS}
    if set(arrays) != expected or "" in names:
        raise ProtocolError(
            f"masked arrays come as name:lo, name:hi and name:fraction_bits; "
            f"received {sorted(arrays)}"
        )
    rings: dict[str, RingArray] = {}
    for name in names:
        try:
            rings[name] = _ring_from_members(*(arrays[f"{name}:{part}"] for part in _MEMBERS))
        except ProtocolError as exc:
            raise ProtocolError(f"masked array {name!r}: {exc}") from exc
    return rings


def _ring_from_members(
    lo: npt.NDArray[np.generic], hi: npt.NDArray[np.generic], bits: npt.NDArray[np.generic]
) -> RingArray:
    if bits.shape != () or bits.dtype.kind not in "iu":
        raise ProtocolError(f"fraction_bits is {_describe(bits)}, expected an integer")
    for limb in (lo, hi):
        if limb.dtype.kind != "u" or limb.dtype.itemsize != 8:
            raise ProtocolError(f"ring limbs must be uint64 arrays, received {_describe(limb)}")
    return RingArray(lo.astype(np.uint64, copy=False), hi.astype(np.uint64, copy=False), int(bits))
