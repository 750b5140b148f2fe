"""Study keys: signed by identity keys, and checked against the keys a node trusts itself."""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from genofed.errors import InputError, ProtocolError
from genofed.protocol.secagg import (
    IdentityKey,
    SignedStudyKey,
    parse_public_key,
    sign_study_key,
    verify_study_keys,
)
from tests.protocol.secagg.participants import (
    IDENTITIES,
    KEYS,
    NAMES,
    PUBLIC,
    STUDY,
    TRUSTED,
    identity_key,
    study_key,
)


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
