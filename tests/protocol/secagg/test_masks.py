"""Pairwise masks: they cancel in the sum, hide each contribution, and need usable keys."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from genofed.errors import InputError, ProtocolError
from genofed.protocol.secagg import (
    FRACTION_BITS,
    RingArray,
    decode_integer,
    encode_fixed,
    mask,
    mask_arrays,
    ring_add,
    ring_sum,
    unmask_sum,
)
from tests.protocol.secagg.participants import KEYS, NAMES, PUBLIC, STUDY, masked_round


def spread_values(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values of either sign with magnitudes spread from 1e-6 to 1e12."""
    magnitude = 10.0 ** rng.uniform(-6, 12, size=shape)
    return np.where(rng.random(shape) < 0.5, -magnitude, magnitude)


def top_limb_fractions(ring: RingArray) -> np.ndarray:
    """The top 53 bits of each element as a number in [0, 1)."""
    return np.ldexp((ring.hi >> np.uint64(11)).astype(np.float64), -53)


def bit_counts(ring: RingArray) -> np.ndarray:
    """How many elements have each of the 128 bits set."""
    words = np.stack([ring.lo.reshape(-1), ring.hi.reshape(-1)], axis=1)
    bits = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")
    return bits.sum(axis=0, dtype=np.int64)


# ------------------------------------------------------------------ masks cancel


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_nodes=st.integers(1, 6),
    shape=st.sampled_from([(), (1,), (7,), (5, 3), (4, 3, 3)]),
)
def test_masks__cancel_in_the_sum_over_one_to_six_nodes(
    seed: int, n_nodes: int, shape: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(seed)
    nodes = NAMES[:n_nodes]
    values = {
        node: {
            "x": spread_values(rng, shape),
            "n": rng.integers(-(2**59), 2**59, size=shape),
        }
        for node in nodes
    }
    total = unmask_sum(masked_round(values))

    stacked = np.stack([values[node]["x"].reshape(-1) for node in nodes], axis=1)
    exact = np.array([math.fsum(row) for row in stacked])
    scale = np.abs(stacked).sum(axis=1)
    error = np.abs(total["x"].reshape(-1) - exact)
    # each node rounds to the nearest 2^-(F + 1), decoding to float64 adds one or two ulp
    assert np.all(error <= n_nodes * 2.0 ** -(FRACTION_BITS + 1) + 2.5e-16 * np.abs(exact))
    assert np.all(error <= 2e-15 * scale)  # for every magnitude from 1e-6 to 1e12
    float64_sum = stacked.sum(axis=1)
    assert np.all(np.abs(total["x"].reshape(-1) - float64_sum) <= 2e-15 * scale)

    integer_total = ring_sum(
        mask_arrays(
            {"n": values[node]["n"]},
            me=node,
            study_key=KEYS[node],
            peers={name: PUBLIC[name] for name in nodes},
            study_id=STUDY,
            round_label="counts",
        )["n"]
        for node in nodes
    )
    assert np.array_equal(decode_integer(integer_total), sum(values[node]["n"] for node in nodes))


def test_masks__cancel_for_large_sums_of_squares_and_small_values_to_float64_precision() -> None:
    rng = np.random.default_rng(11)
    y = rng.normal(170, 10, size=(3, 100_000)) * 20  # sums of squares near 1.2e12 per node
    sums = {NAMES[i]: {"yty": np.array([y[i] @ y[i], 1e-3 * (i + 1)])} for i in range(3)}
    total = unmask_sum(masked_round(sums))["yty"]
    exact = [math.fsum(sums[n]["yty"][j] for n in NAMES[:3]) for j in range(2)]
    assert total[0] > 1e12
    assert total == pytest.approx(exact, rel=2.5e-16, abs=0)


def test_masks__a_sum_over_a_subset_of_the_participants_is_noise() -> None:
    values = {node: {"x": np.ones(100)} for node in NAMES[:3]}
    masked = masked_round(values)
    partial = unmask_sum({node: masked[node] for node in NAMES[:2]})["x"]
    assert not np.any(np.abs(partial - 2) < 1e6)


def test_mask__without_peers_leaves_the_encoding_unchanged() -> None:
    ring = encode_fixed(np.arange(5.0))
    alone = mask(
        ring,
        me="AT",
        study_key=KEYS["AT"],
        peers={"AT": PUBLIC["AT"]},
        study_id=STUDY,
        round_label="r1",
        array_name="x",
    )
    assert np.array_equal(alone.lo, ring.lo)
    assert np.array_equal(alone.hi, ring.hi)


ROUND = {
    "me": "AT",
    "study_key": KEYS["AT"],
    "peers": PUBLIC,
    "study_id": STUDY,
    "round_label": "r1",
}


def test_mask__depends_on_the_array_name_and_shape() -> None:
    def masked(name: str, values: np.ndarray) -> RingArray:
        ring = encode_fixed(values)
        return mask(ring, array_name=name, **ROUND)

    zeros = np.zeros(64)
    assert not np.any(masked("a", zeros).lo == masked("b", zeros).lo)
    assert not np.any(masked("a", zeros).lo[:32] == masked("a", zeros[:32]).lo)


# ------------------------------------------------------------------ hiding


def masked_alone(values: np.ndarray, round_label: str) -> RingArray:
    """AT's masked contribution in a round with BE and CZ."""
    return mask_arrays(
        {"x": values},
        me="AT",
        study_key=KEYS["AT"],
        peers={name: PUBLIC[name] for name in NAMES[:3]},
        study_id=STUDY,
        round_label=round_label,
    )["x"]


def test_mask__contribution_is_independent_of_its_value() -> None:
    n = 200_000
    zero = masked_alone(np.zeros(n), "zeros")
    large = masked_alone(np.full(n, 1e12), "large")
    assert stats.ks_2samp(top_limb_fractions(zero), top_limb_fractions(large)).pvalue > 1e-3
    table = np.stack([bit_counts(zero), bit_counts(large)])
    table = np.stack([table, n - table], axis=-1)  # (input, bit, set or not)
    for bit in range(128):
        assert stats.chi2_contingency(table[:, bit]).pvalue > 1e-5
    bytes_zero = np.bincount(zero.lo.view(np.uint8), minlength=256)
    bytes_large = np.bincount(large.lo.view(np.uint8), minlength=256)
    assert stats.chi2_contingency(np.stack([bytes_zero, bytes_large])).pvalue > 1e-3


def test_mask__contribution_is_uniform_over_the_ring() -> None:
    n = 200_000
    ring = masked_alone(np.full(n, -12345.678), "uniform")
    assert stats.kstest(top_limb_fractions(ring), "uniform").pvalue > 1e-3
    z = (bit_counts(ring) - n / 2) / math.sqrt(n / 4)
    assert np.max(np.abs(z)) < 5  # every one of the 128 bits is set half of the time
    for limb in (ring.lo, ring.hi):
        counts = np.bincount(limb.view(np.uint8), minlength=256)
        assert stats.chisquare(counts).pvalue > 1e-3


# ------------------------------------------------------------------ dropout


def test_masks__rerun_after_a_dropout_cancels_with_fresh_independent_masks() -> None:
    values = {node: {"x": np.linspace(-5, 5, 1000) * (i + 1)} for i, node in enumerate(NAMES[:3])}
    expected = values["AT"]["x"] + values["BE"]["x"]
    survivors = {node: values[node] for node in NAMES[:2]}

    first = masked_round(survivors, round_label="r1", participants=NAMES[:3])
    assert not np.allclose(unmask_sum(first)["x"], expected)

    retry = masked_round(survivors, round_label="r1-retry")
    assert unmask_sum(retry)["x"] == pytest.approx(expected, rel=1e-15, abs=1e-15)

    plain = encode_fixed(values["AT"]["x"])
    old_mask = ring_add(first["AT"]["x"], _negated(plain))
    new_mask = ring_add(retry["AT"]["x"], _negated(plain))
    assert not np.any(old_mask.lo == new_mask.lo)
    difference = ring_add(old_mask, _negated(new_mask))
    bits = bit_counts(difference)
    assert np.all(np.abs(bits - 500) < 5 * math.sqrt(250))


def test_masks__depend_on_the_participant_set_under_the_same_round_label() -> None:
    zeros = np.zeros(256)
    over_three = masked_round({"AT": {"x": zeros}}, participants=NAMES[:3])["AT"]["x"]
    over_two = masked_round({"AT": {"x": zeros}}, participants=NAMES[:2])["AT"]["x"]
    assert not np.any(over_three.lo == over_two.lo)


def _negated(ring: RingArray) -> RingArray:
    lo = np.negative(ring.lo)
    hi = np.invert(ring.hi) + (ring.lo == 0)
    return RingArray(lo, hi.astype(np.uint64), ring.fraction_bits)


# ------------------------------------------------------------------ refusals


def test_mask__refuses_a_substituted_own_key_and_unusable_peer_keys() -> None:
    arguments = {"study_id": STUDY, "round_label": "r1", "array_name": "x"}
    ring = encode_fixed(np.ones(3))
    with pytest.raises(ProtocolError, match="study key listed for this node 'AT' is not its own"):
        mask(ring, me="AT", study_key=KEYS["AT"], peers={"AT": PUBLIC["BE"]}, **arguments)
    with pytest.raises(ProtocolError, match="study key of node 'BE' is not a usable X25519"):
        mask(ring, me="AT", study_key=KEYS["AT"], peers={"BE": bytes(32)}, **arguments)
    with pytest.raises(ProtocolError, match="study key of node 'BE' is not a usable X25519"):
        mask(ring, me="AT", study_key=KEYS["AT"], peers={"BE": b"short"}, **arguments)


def test_mask_arrays__names_the_array_it_cannot_encode() -> None:
    with pytest.raises(InputError, match=r"array 'gty': 1 of 2 values are NaN"):
        masked_round({"AT": {"ctg": np.ones(2), "gty": np.array([1.0, np.nan])}})
    with pytest.raises(InputError, match="cannot encode <U1 values"):
        encode_fixed(np.array(["a"]))


def test_unmask_sum__refuses_contributions_that_do_not_match() -> None:
    masked = masked_round({node: {"x": np.ones(3), "n": np.array(2)} for node in NAMES[:2]})
    with pytest.raises(ProtocolError, match=r"BE holds arrays \['x'\], but AT holds \['n', 'x'\]"):
        unmask_sum({"AT": masked["AT"], "BE": {"x": masked["BE"]["x"]}})
    other_shape = masked_round({"BE": {"x": np.ones(4), "n": np.array(2)}}, participants=NAMES[:2])
    with pytest.raises(ProtocolError, match=r"array 'x' of contribution 2: .* shape \(3,\)"):
        unmask_sum([masked["AT"], other_shape["BE"]])
    with pytest.raises(ProtocolError, match="no contributions"):
        unmask_sum([])
