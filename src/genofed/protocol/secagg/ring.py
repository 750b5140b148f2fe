"""The fixed-point ring of secure aggregation: integers modulo 2**128, and their wire layout.

A :class:`RingArray` holds each value as two uint64 limbs. Floating-point
values are encoded with ``FRACTION_BITS`` fraction bits (:func:`encode_fixed`),
integer and boolean values exactly; sums of up to ``MAX_PARTICIPANTS``
contributions cannot wrap around, and :func:`decode_fixed` and
:func:`decode_integer` read them back. On the wire each ring array travels
as three plain arrays (:func:`rings_to_arrays`, :func:`rings_from_arrays`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genofed.errors import InputError, ProtocolError

__all__ = [
    "FRACTION_BITS",
    "MAX_MAGNITUDE",
    "MAX_PARTICIPANTS",
    "RingArray",
    "decode_fixed",
    "decode_integer",
    "encode_fixed",
    "ring_add",
    "ring_sum",
    "rings_from_arrays",
    "rings_to_arrays",
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

_U64_MAX = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_MEMBERS = ("lo", "hi", "fraction_bits")  # wire members of one ring array


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
