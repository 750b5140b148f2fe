"""Study keys for secure aggregation: one fresh, signed X25519 key per study."""

from __future__ import annotations

from fastapi import APIRouter, Request

from genofed.node.deps import Caller, Studies
from genofed.protocol.messages import SignedKey, StudyKeyRequest

router = APIRouter(prefix="/studies", tags=["studies"])


@router.post("")
def study_key(
    request: StudyKeyRequest, studies: Studies, caller: Caller, http: Request
) -> SignedKey:
    """Return this node's signed key for the study, the same on every call for it."""
    http.state.computation = "study-key"
    http.state.parameters = request.model_dump(mode="json")
    return studies.create(request.study_id, user=caller.user)
