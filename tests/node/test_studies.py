"""A node's study keys: what it signs, and every check before it masks."""

from __future__ import annotations

import secrets

import pytest

from genofed.errors import InputError, ProtocolError
from genofed.node.settings import AggregationSection
from genofed.node.studies import StudyKeys
from genofed.protocol.messages import SecureAggregation, SignedKey
from genofed.protocol.secagg import IdentityKey, StudyKey, sign_study_key

PEER = IdentityKey.generate()


def node(min_participants: int = 2) -> StudyKeys:
    return StudyKeys(
        "EE",
        IdentityKey.generate(),
        {"PT": PEER.public_bytes()},
        AggregationSection(min_participants=min_participants),
    )


def peer_key(study_id: str, signer: IdentityKey = PEER, name: str = "PT") -> SignedKey:
    signed = sign_study_key(signer, StudyKey.generate(), study_id=study_id, node=name)
    return SignedKey.model_validate(signed.to_dict())


def job(study_id: str, *keys: SignedKey, round_label: str = "round-1") -> SecureAggregation:
    return SecureAggregation(study_id=study_id, round=round_label, keys=list(keys))


def test_study_keys__one_signed_key_per_study_and_user() -> None:
    keys, study = node(), secrets.token_hex(16)
    first = keys.create(study, user="alice")
    assert (first.node, first.study_id) == ("EE", study)
    assert keys.create(study, user="alice") == first
    assert keys.create(secrets.token_hex(16), user="alice").public_key != first.public_key
    with pytest.raises(ProtocolError, match="belongs to another user"):
        keys.create(study, user="mallory")


def test_study_keys__admit_returns_the_round_over_all_participants() -> None:
    keys, study = node(), secrets.token_hex(16)
    own = keys.create(study, user="alice")
    masked = keys.admit(job(study, own, peer_key(study)), user="alice")
    assert masked.participants == ("EE", "PT")
    assert masked.round_label == "round-1"


def test_study_keys__a_round_label_is_used_once() -> None:
    keys, study = node(), secrets.token_hex(16)
    own, peer = keys.create(study, user="alice"), peer_key(study)
    keys.admit(job(study, own, peer), user="alice")
    with pytest.raises(ProtocolError, match=r"round 'round-1' .* was used before"):
        keys.admit(job(study, own, peer), user="alice")
    keys.admit(job(study, own, peer, round_label="round-2"), user="alice")


def test_study_keys__a_substituted_peer_key_is_refused() -> None:
    keys, study = node(), secrets.token_hex(16)
    own = keys.create(study, user="alice")
    forged = peer_key(study, signer=IdentityKey.generate())
    with pytest.raises(ProtocolError, match="not signed by the identity key trusted for 'PT'"):
        keys.admit(job(study, own, forged), user="alice")


def test_study_keys__a_substituted_own_key_is_refused() -> None:
    keys, study = node(), secrets.token_hex(16)
    keys.create(study, user="alice")
    other_study = secrets.token_hex(16)
    stale = keys.create(other_study, user="alice")  # genuinely signed, but for another study
    with pytest.raises(ProtocolError, match="is for study"):
        keys.admit(job(study, stale, peer_key(study)), user="alice")
    with pytest.raises(ProtocolError, match="does not list node EE's own study key"):
        keys.admit(job(study, peer_key(study)), user="alice")


def test_study_keys__an_untrusted_node_is_refused() -> None:
    keys, study = node(), secrets.token_hex(16)
    own = keys.create(study, user="alice")
    stranger = peer_key(study, signer=IdentityKey.generate(), name="XX")
    with pytest.raises(ProtocolError, match="'XX' has no trusted identity key"):
        keys.admit(job(study, own, peer_key(study), stranger), user="alice")


def test_study_keys__too_few_participants_are_refused() -> None:
    keys, study = node(), secrets.token_hex(16)
    own = keys.create(study, user="alice")
    with pytest.raises(ProtocolError, match=r"rule min_participants: .* at least 2 nodes"):
        keys.admit(job(study, own), user="alice")
    alone = node(min_participants=1)
    alone.admit(job(study, alone.create(study, user="alice")), user="alice")


def test_study_keys__an_unknown_study_or_another_users_study_is_refused() -> None:
    keys, study = node(), secrets.token_hex(16)
    own = keys.create(study, user="alice")
    with pytest.raises(ProtocolError, match=f"no study {study} for mallory"):
        keys.admit(job(study, own, peer_key(study)), user="mallory")


def test_study_keys__a_node_without_identity_key_cannot_take_part() -> None:
    keys = StudyKeys("EE", None, {}, AggregationSection())
    with pytest.raises(InputError, match="no identity key"):
        keys.create(secrets.token_hex(16), user="alice")
