"""A node's per-study keys for secure aggregation, and the checks before it masks.

For every study a coordinator asks for, the node makes a fresh X25519 key
and signs it with its identity key. Before a job runs, the node checks the
participants' signed keys against the identity keys of the peers its
operator trusts (``[aggregation] peers``: a directory of their public cards),
never against keys from the coordinator. A swapped key, a study or round
label used twice, or too few participants is refused.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from genofed.errors import InputError, ProtocolError
from genofed.node.settings import AggregationSection, NodeSettings
from genofed.protocol.cards import read_card
from genofed.protocol.messages import SecureAggregation, SignedKey
from genofed.protocol.secagg import (
    IdentityKey,
    MaskedRound,
    StudyKey,
    parse_public_key,
    sign_study_key,
    signed_key_message,
    signed_study_key,
    verify_study_keys,
)

__all__ = ["StudyKeys", "trusted_peers"]

logger = logging.getLogger(__name__)


@dataclass
class _Study:
    user: str
    key: StudyKey
    signed: SignedKey
    rounds: set[str] = field(default_factory=set)


class StudyKeys:
    """Make, keep and check the study keys of one node (the most recent ``kept`` studies)."""

    def __init__(
        self,
        name: str,
        identity: IdentityKey | None,
        peers: dict[str, bytes],
        rules: AggregationSection,
        *,
        kept: int = 256,
    ) -> None:
        self.name = name
        self._identity = identity
        self._trusted = dict(peers)
        if identity is not None:
            self._trusted[name] = identity.public_bytes()
        self._rules = rules
        self._kept = kept
        self._studies: OrderedDict[str, _Study] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: NodeSettings) -> StudyKeys:
        """Load the node's identity key and its trusted peers' cards."""
        identity = settings.node.identity_key
        return cls(
            settings.node.name,
            IdentityKey.load(identity) if identity else None,
            trusted_peers(settings.aggregation.peers, me=settings.node.name),
            settings.aggregation,
        )

    def create(self, study_id: str, *, user: str) -> SignedKey:
        """Return this node's signed key for ``study_id``, made on first request.

        Raises
        ------
        InputError
            If the node has no identity key.
        ProtocolError
            If another user already holds this study id.
        """
        if self._identity is None:
            raise InputError(
                f"node {self.name} has no identity key ([node] identity_key), so it cannot "
                "take part in secure aggregation"
            )
        with self._lock:
            study = self._studies.get(study_id)
            if study is not None:
                if study.user != user:
                    raise ProtocolError(f"study {study_id} belongs to another user")
                return study.signed
            key = StudyKey.generate()
            signed = sign_study_key(self._identity, key, study_id=study_id, node=self.name)
            study = _Study(user, key, signed_key_message(signed))
            self._studies[study_id] = study
            while len(self._studies) > self._kept:
                self._studies.popitem(last=False)
        logger.info("study key made for %s, study %s", user, study_id)
        return study.signed

    def admit(self, aggregation: SecureAggregation, *, user: str) -> MaskedRound:
        """Check a job's participants and return the round this node masks for.

        Raises
        ------
        ProtocolError
            Naming the problem: an unknown study, a round label used before, a
            key that is not this node's own or not signed by a trusted peer,
            or fewer participants than ``[aggregation] min_participants``.
        """
        study_id = aggregation.study_id
        keys = [signed_study_key(message) for message in aggregation.keys]
        peers = verify_study_keys(keys, self._trusted, study_id=study_id)
        with self._lock:
            study = self._studies.get(study_id)
            if study is None or study.user != user:
                raise ProtocolError(
                    f"node {self.name} has no study {study_id} for {user}; ask for its "
                    "study key first (POST /studies)"
                )
            own = study.key.public_bytes()
            if peers.get(self.name) != own:
                raise ProtocolError(
                    f"the job does not list node {self.name}'s own study key; refusing to mask"
                )
            if len(peers) < self._rules.min_participants:
                raise ProtocolError(
                    f"node {self.name} refused: rule min_participants: a masked sum needs at "
                    f"least {self._rules.min_participants} nodes, the job lists {len(peers)}"
                )
            if aggregation.round in study.rounds:
                raise ProtocolError(
                    f"round {aggregation.round!r} of study {study_id} was used before; masks "
                    "are never reused, so a rerun needs a new round label"
                )
            study.rounds.add(aggregation.round)
        return MaskedRound(
            self.name,
            study.key,
            peers,
            study_id,
            aggregation.round,
            identity=self._identity,
            trusted={name: self._trusted[name] for name in peers},
        )


def trusted_peers(directory: Path | None, *, me: str) -> dict[str, bytes]:
    """Read the identity keys on the public cards (``*.toml``) in ``directory``.

    Raises
    ------
    InputError
        Naming the card that is unreadable, has no identity key, or names a
        node another card names too.
    """
    if directory is None:
        return {}
    if not directory.is_dir():
        raise InputError(f"peer directory {directory} does not exist")
    peers: dict[str, bytes] = {}
    for path in sorted(directory.glob("*.toml")):
        card = read_card(path)
        if card.identity_key is None:
            raise InputError(f"{path}: the card of {card.name} has no identity_key")
        if card.name == me:
            continue
        if card.name in peers:
            raise InputError(f"{path}: a second card for node {card.name}")
        try:
            peers[card.name] = parse_public_key(card.identity_key)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
    return peers
