"""Secure aggregation: masks cancel in the sum, hide each contribution, and need trusted keys."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import stat
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from genofed.errors import InputError, ProtocolError
from genofed.protocol.codec import decode_arrays, encode_arrays
from genofed.protocol.masking import (
    FRACTION_BITS,
    MAX_MAGNITUDE,
    IdentityKey,
    RingArray,
    SignedStudyKey,
    StudyKey,
    decode_fixed,
    decode_integer,
    encode_fixed,
    mask,
    mask_arrays,
    parse_public_key,
    ring_add,
    ring_sum,
    rings_from_arrays,
    rings_to_arrays,
    sign_study_key,
    unmask_sum,
    verify_study_keys,
)

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


# ------------------------------------------------------------------ keys


def signed_keys(study_id: str = STUDY) -> list[SignedStudyKey]:
    return [
        sign_study_key(IDENTITIES[name], KEYS[name], study_id=study_id, node=name)
        for name in NAMES[:3]
    ]


def test_verify_study_keys__returns_the_verified_keys() -> None:
    assert verify_study_keys(signed_keys(), TRUSTED, study_id=STUDY) == {
        name: PUBLIC[name] for name in NAMES[:3]
    }


def test_verify_study_keys__refuses_a_key_signed_by_an_untrusted_identity() -> None:
    impostor = identity_key("mallory")
    forged = sign_study_key(impostor, study_key("mallory"), study_id=STUDY, node="BE")
    keys = [signed_keys()[0], forged]
    with pytest.raises(ProtocolError, match="study key of node 'BE' is not signed by the identity"):
        verify_study_keys(keys, TRUSTED, study_id=STUDY)


def test_verify_study_keys__refuses_a_signature_for_another_study() -> None:
    other = sign_study_key(IDENTITIES["BE"], KEYS["BE"], study_id="study-2", node="BE")
    with pytest.raises(ProtocolError, match="node 'BE' is for study 'study-2', not 'study-1'"):
        verify_study_keys([other], TRUSTED, study_id=STUDY)
    relabelled = dataclasses.replace(other, study_id=STUDY)
    with pytest.raises(ProtocolError, match="node 'BE' is not signed"):
        verify_study_keys([relabelled], TRUSTED, study_id=STUDY)


def test_verify_study_keys__refuses_a_signature_for_another_node() -> None:
    cz = sign_study_key(IDENTITIES["CZ"], KEYS["CZ"], study_id=STUDY, node="CZ")
    with pytest.raises(ProtocolError, match="node 'BE' is not signed"):
        verify_study_keys([dataclasses.replace(cz, node="BE")], TRUSTED, study_id=STUDY)
    be_signs_for_cz = sign_study_key(IDENTITIES["BE"], KEYS["BE"], study_id=STUDY, node="CZ")
    with pytest.raises(ProtocolError, match="node 'CZ' is not signed"):
        verify_study_keys([be_signs_for_cz], TRUSTED, study_id=STUDY)


def test_verify_study_keys__refuses_a_tampered_public_key() -> None:
    genuine = signed_keys()[1]
    tampered = dataclasses.replace(genuine, public_key=PUBLIC["FI"])
    with pytest.raises(ProtocolError, match="node 'BE' is not signed"):
        verify_study_keys([tampered], TRUSTED, study_id=STUDY)
    flipped = bytes([genuine.public_key[0] ^ 1]) + genuine.public_key[1:]
    with pytest.raises(ProtocolError, match="node 'BE' is not signed"):
        verify_study_keys(
            [dataclasses.replace(genuine, public_key=flipped)], TRUSTED, study_id=STUDY
        )


def test_verify_study_keys__refuses_unknown_and_duplicate_nodes() -> None:
    trusted = {name: TRUSTED[name] for name in NAMES[:2]}
    with pytest.raises(ProtocolError, match="node 'CZ' has no trusted identity key"):
        verify_study_keys(signed_keys(), trusted, study_id=STUDY)
    keys = signed_keys()
    with pytest.raises(ProtocolError, match="node 'AT' has two study keys"):
        verify_study_keys([*keys, keys[0]], TRUSTED, study_id=STUDY)


def test_signed_study_key__round_trips_through_json() -> None:
    for key in signed_keys():
        assert SignedStudyKey.from_dict(json.loads(json.dumps(key.to_dict()))) == key


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"node": 3}, "text fields"),
        ({"extra": "x"}, "text fields"),
        ({"public_key": "not base64!"}, "public_key of 'AT' is not base64"),
        ({"signature": "AAAA"}, "signature of 'AT' has 3 bytes, expected 64"),
    ],
)
def test_signed_study_key__refuses_malformed_dicts(change: dict[str, object], message: str) -> None:
    data = {**signed_keys()[0].to_dict(), **change}
    with pytest.raises(ProtocolError, match=message):
        SignedStudyKey.from_dict(data)


def test_mask__refuses_a_substituted_own_key_and_unusable_peer_keys() -> None:
    arguments = {"study_id": STUDY, "round_label": "r1", "array_name": "x"}
    ring = encode_fixed(np.ones(3))
    with pytest.raises(ProtocolError, match="study key listed for this node 'AT' is not its own"):
        mask(ring, me="AT", study_key=KEYS["AT"], peers={"AT": PUBLIC["BE"]}, **arguments)
    with pytest.raises(ProtocolError, match="study key of node 'BE' is not a usable X25519"):
        mask(ring, me="AT", study_key=KEYS["AT"], peers={"BE": bytes(32)}, **arguments)
    with pytest.raises(ProtocolError, match="study key of node 'BE' is not a usable X25519"):
        mask(ring, me="AT", study_key=KEYS["AT"], peers={"BE": b"short"}, **arguments)


def test_identity_key__saves_owner_only_and_loads(tmp_path: Path) -> None:
    key = IdentityKey.generate()
    path = tmp_path / "identity.pem"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert IdentityKey.load(path).public_bytes() == key.public_bytes()
    assert parse_public_key(key.public_text()) == key.public_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["identity.pem"]
    with pytest.raises(InputError, match="already exists; an identity key is never overwritten"):
        IdentityKey.generate().save(path)


def test_identity_key__encrypted_with_a_password(tmp_path: Path) -> None:
    key = IdentityKey.generate()
    key.save(tmp_path / "identity.pem", password=b"correct horse")
    loaded = IdentityKey.load(tmp_path / "identity.pem", password=b"correct horse")
    assert loaded.public_bytes() == key.public_bytes()
    with pytest.raises(InputError, match="is not a usable PEM key"):
        IdentityKey.load(tmp_path / "identity.pem", password=b"wrong")


def test_identity_key__refuses_other_key_types_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "x25519.pem"
    path.write_bytes(
        X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(InputError, match="holds a X25519PrivateKey, expected an Ed25519"):
        IdentityKey.load(path)
    with pytest.raises(InputError, match="cannot read identity key file"):
        IdentityKey.load(tmp_path / "absent.pem")


def test_parse_public_key__refuses_wrong_lengths() -> None:
    with pytest.raises(InputError, match="has 3 bytes, expected 32"):
        parse_public_key("AAAA")


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


def test_mask_arrays__names_the_array_it_cannot_encode() -> None:
    with pytest.raises(InputError, match=r"array 'gty': 1 of 2 values are NaN"):
        masked_round({"AT": {"ctg": np.ones(2), "gty": np.array([1.0, np.nan])}})
    with pytest.raises(InputError, match="cannot encode <U1 values"):
        encode_fixed(np.array(["a"]))


# ------------------------------------------------------------------ coordinator side


def test_unmask_sum__refuses_contributions_that_do_not_match() -> None:
    masked = masked_round({node: {"x": np.ones(3), "n": np.array(2)} for node in NAMES[:2]})
    with pytest.raises(ProtocolError, match=r"BE holds arrays \['x'\], but AT holds \['n', 'x'\]"):
        unmask_sum({"AT": masked["AT"], "BE": {"x": masked["BE"]["x"]}})
    other_shape = masked_round({"BE": {"x": np.ones(4), "n": np.array(2)}}, participants=NAMES[:2])
    with pytest.raises(ProtocolError, match=r"array 'x' of contribution 2: .* shape \(3,\)"):
        unmask_sum([masked["AT"], other_shape["BE"]])
    with pytest.raises(ProtocolError, match="no contributions"):
        unmask_sum([])


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
