"""The fixed-point ring: exact encoding, addition modulo 2**128, and the wire layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genofed.errors import InputError, ProtocolError
from genofed.protocol.codec import decode_arrays, encode_arrays
from genofed.protocol.secagg import (
    FRACTION_BITS,
    MAX_MAGNITUDE,
    RingArray,
    decode_fixed,
    decode_integer,
    encode_fixed,
    ring_add,
    ring_sum,
    rings_from_arrays,
    rings_to_arrays,
    unmask_sum,
)
from tests.protocol.secagg.participants import NAMES, masked_round

# ------------------------------------------------------------------ encoding


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.floats(
            min_value=-MAX_MAGNITUDE, max_value=MAX_MAGNITUDE, exclude_max=True, exclude_min=True
        ),
        max_size=20,
    )
)
def test_encode_fixed__round_trips(values: list[float]) -> None:
    x = np.array(values, dtype=np.float64)
    decoded = decode_fixed(encode_fixed(x))
    representable = np.abs(x) >= 2.0 ** (53 - FRACTION_BITS)  # x * 2^F is already an integer
    assert np.array_equal(decoded[representable], x[representable])
    assert np.all(np.abs(decoded - x) <= 2.0 ** -(FRACTION_BITS + 1))


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=20))
def test_encode_fixed__integers_round_trip_exactly(values: list[int]) -> None:
    x = np.array(values, dtype=np.int64)
    ring = encode_fixed(x)
    assert ring.fraction_bits == 0
    assert np.array_equal(decode_integer(ring), x)


def test_encode_fixed__keeps_shapes_and_small_types() -> None:
    assert decode_fixed(encode_fixed(np.float64(2.5))).shape == ()
    assert decode_fixed(encode_fixed(np.zeros((0, 3)))).shape == (0, 3)
    assert np.array_equal(decode_integer(encode_fixed(np.array([True, False]))), [1, 0])
    assert np.array_equal(decode_integer(encode_fixed(np.array([-3], dtype=np.int8))), [-3])
    unsigned = encode_fixed(np.array([2**64 - 1], dtype=np.uint64))
    assert decode_fixed(unsigned)[0] == 2.0**64
    with pytest.raises(ProtocolError, match="1 integer sums are outside int64"):
        decode_integer(unsigned)
    with pytest.raises(ProtocolError, match="68 fraction bits, not integers"):
        decode_integer(encode_fixed(np.ones(2)))
    assert decode_fixed(encode_fixed(np.float32(0.1)))[()] == np.float64(np.float32(0.1))


def ring_of(values: list[int], fraction_bits: int = 0) -> RingArray:
    words = [v % 2**128 for v in values]
    lo = np.array([w % 2**64 for w in words], dtype=np.uint64)
    hi = np.array([w >> 64 for w in words], dtype=np.uint64)
    return RingArray(lo, hi, fraction_bits)


def ints_of(ring: RingArray) -> list[int]:
    return [(int(h) << 64) | int(lo) for lo, h in zip(ring.lo, ring.hi, strict=True)]


RING_INT = st.integers(0, 2**128 - 1)


@given(st.lists(st.tuples(RING_INT, RING_INT), min_size=1, max_size=10))
def test_ring_add__is_addition_modulo_2_to_the_128(pairs: list[tuple[int, int]]) -> None:
    a, b = ([pair[i] for pair in pairs] for i in (0, 1))
    total = ring_add(ring_of(a), ring_of(b))
    assert ints_of(total) == [(x + y) % 2**128 for x, y in pairs]
    assert ints_of(ring_sum([ring_of(a), ring_of(b), ring_of(b)])) == [
        (x + 2 * y) % 2**128 for x, y in pairs
    ]


@given(st.lists(st.integers(-(2**127), 2**127 - 1), min_size=1, max_size=10))
def test_decode_fixed__is_within_one_and_a_half_ulp_of_the_signed_value(values: list[int]) -> None:
    decoded = decode_fixed(ring_of(values, FRACTION_BITS))
    exact = np.array([math.ldexp(float(v), -FRACTION_BITS) for v in values])  # correctly rounded
    assert np.all(np.abs(decoded - exact) <= np.spacing(np.abs(exact)))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            [[1.0, np.nan], [np.inf, 2.0]],
            r"2 of 4 values are NaN or infinite \(first at index \(0, 1\): nan\)",
        ),
        ([1.0, -np.inf], r"1 of 2 values are NaN or infinite \(first at index \(1,\): -inf\)"),
        (
            [0.0, 3.0, -1e16],
            r"1 of 3 values exceed the range of the masking ring, \|x\| < 2\^53 = 9\.01e\+15 "
            r"\(first at index \(2,\): -1e\+16\); scale or centre the inputs; nothing was masked",
        ),
        ([MAX_MAGNITUDE], r"1 of 1 values exceed the range"),
    ],
)
def test_encode_fixed__refuses_non_finite_and_overflowing_values(
    values: list[object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        encode_fixed(np.array(values))


# ------------------------------------------------------------------ wire


def test_rings__travel_in_the_array_codec() -> None:
    values = {node: {"ctc": np.eye(3) * (i + 1), "n": np.array(5)} for i, node in enumerate(NAMES)}
    masked = masked_round(values)
    received = {
        node: rings_from_arrays(decode_arrays(encode_arrays(rings_to_arrays(arrays))))
        for node, arrays in masked.items()
    }
    total = unmask_sum(received)
    assert np.array_equal(total["ctc"], np.eye(3) * 21)
    assert total["n"] == 30


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x:lo": np.zeros(3, dtype=np.int64)}, "'x': ring limbs must be uint64 arrays"),
        ({"x:hi": np.zeros(4, dtype=np.uint64)}, "'x': ring limbs differ in shape"),
        ({"x:fraction_bits": np.array(200)}, "fraction_bits 200 is outside"),
        ({"x:fraction_bits": np.array([68])}, "fraction_bits is int64\\(1,\\)"),
        ({"y:lo": np.zeros(3, dtype=np.uint64)}, "come as name:lo, name:hi and name:fraction"),
    ],
)
def test_rings_from_arrays__refuses_malformed_members(
    change: dict[str, np.ndarray], message: str
) -> None:
    arrays = rings_to_arrays({"x": encode_fixed(np.ones(3))})
    with pytest.raises(ProtocolError, match=message):
        rings_from_arrays({**arrays, **change})
