"""Keys of secure aggregation: a node's identity key, its study keys and their signatures.

A node holds a long-term Ed25519 :class:`IdentityKey` whose public half is
on its public card. For every study it makes a fresh X25519
:class:`StudyKey` and signs its public half for that study
(:func:`sign_study_key`); its peers check the :class:`SignedStudyKey`
against the identity keys they trust themselves (:func:`verify_study_keys`)
before they mask with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from genofed.errors import InputError, ProtocolError

__all__ = [
    "IdentityKey",
    "PartContext",
    "SignedStudyKey",
    "StudyKey",
    "parse_public_key",
    "sign_part",
    "sign_study_key",
    "verify_part",
    "verify_study_keys",
]

_KEY_BYTES = 32
_SIGNATURE_BYTES = 64
_STUDY_KEY_CONTEXT = b"genofed study key v1"
_PART_CONTEXT = b"genofed signed part v1"


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


@dataclass(frozen=True)
class PartContext:
    """What a node's signature on one masked part binds it to.

    ``request`` is the digest of the arrays the part was asked for with, and
    ``state`` the digest of the instructions the node had followed in the job
    before it (e.g. which variants a PCA uses), so that a verifier can tell
    whether every node computed the same thing.
    """

    study_id: str
    round_label: str
    part: str
    request: str
    state: str

    def message(self, node: str, payload: bytes) -> bytes:
        """Return the bytes a node signs: this context, its name, its payload's digest."""
        return _frame(
            _PART_CONTEXT,
            self.study_id.encode(),
            self.round_label.encode(),
            node.encode(),
            self.part.encode(),
            self.request.encode(),
            self.state.encode(),
            hashlib.sha256(payload).digest(),
        )


def sign_part(identity: IdentityKey, node: str, context: PartContext, payload: bytes) -> bytes:
    """Sign one masked part with the node's identity key."""
    return identity._sign(context.message(node, payload))


def verify_part(
    trusted: bytes, node: str, context: PartContext, payload: bytes, signature: bytes
) -> None:
    """Check a node's signature on one masked part against the identity key trusted for it.

    Raises
    ------
    ProtocolError
        Naming the node, if the signature does not verify: the part was altered,
        is another node's, or was computed for another request or state.
    """
    try:
        Ed25519PublicKey.from_public_bytes(trusted).verify(
            signature, context.message(node, payload)
        )
    except (InvalidSignature, ValueError) as exc:
        raise ProtocolError(
            f"the {context.part} part of node {node} is not signed by its trusted identity key "
            "for this request and these instructions (altered, another node's, or computed for "
            "something else)"
        ) from exc
