"""An HTTP client for one node, with explicit timeouts and errors that name the node."""

from __future__ import annotations

import base64
import binascii
import ssl
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ValidationError

from genofed.errors import AuthError, DisclosureError, InputError, NodeError, ProtocolError
from genofed.protocol.cards import PublicCard
from genofed.protocol.codec import ARRAY_MEDIA_TYPE, decode_arrays, encode_arrays
from genofed.protocol.messages import (
    API_PREFIX,
    SIGNATURE_HEADER,
    DatasetDescription,
    JobBase,
    JobStatus,
    ServiceInfo,
    SignedKey,
    StudyKeyRequest,
)
from genofed.protocol.tls import is_loopback, pinned_context

__all__ = ["NodeClient"]

Model = TypeVar("Model", bound=BaseModel)

RESULT_WAIT_SECONDS = 10.0


class NodeClient:
    """Talk to one node; one connection pool, reused for every call."""

    def __init__(
        self,
        card: PublicCard,
        *,
        passport: str | None = None,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        """Connect to the node on ``card``, or talk through ``http`` if given.

        ``http`` replaces the connection made from the card (e.g. a client of
        an in-process node); its base URL is the node's API root and it
        carries the passport itself. The caller closes it.
        """
        self.card = card
        self.name = card.name
        self._owned = http is None
        self._http = http or httpx.Client(
            base_url=card.url.rstrip("/") + API_PREFIX,
            timeout=httpx.Timeout(timeout, connect=5.0, read=timeout + RESULT_WAIT_SECONDS),
            verify=_verification(card),
            headers={"Authorization": f"Bearer {passport}"} if passport else None,
        )

    def close(self) -> None:
        """Close the connection pool, unless it was handed in."""
        if self._owned:
            self._http.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def service_info(self) -> ServiceInfo:
        """GA4GH service-info."""
        return self._model(ServiceInfo, self._call("GET", "/service-info"))

    def dataset(self) -> DatasetDescription:
        """Fetch the node's dataset description."""
        return self._model(DatasetDescription, self._call("GET", "/dataset"))

    def variants(self) -> dict[str, npt.NDArray[np.generic]]:
        """Fetch the node's variant list."""
        return self._arrays(self._call("GET", "/dataset/variants"))

    def study_key(self, study_id: str) -> SignedKey:
        """Ask for the node's signed key for a study."""
        body = StudyKeyRequest(study_id=study_id).model_dump(mode="json")
        return self._model(SignedKey, self._call("POST", "/studies", json=body))

    def ask(
        self, job_id: str, part: str, arrays: Mapping[str, npt.ArrayLike]
    ) -> tuple[bytes, bytes]:
        """Ask for a part that needs arrays (e.g. ``block/3/missing``).

        Returns its payload and the node's signature on it (empty for a part
        that is not a verified sum).
        """
        response = self._call(
            "POST",
            f"/jobs/{job_id}/results/{part}",
            content=encode_arrays(arrays),
            headers={"Content-Type": ARRAY_MEDIA_TYPE},
        )
        return response.content, self._signature(response)

    def total(
        self, job_id: str, part: str, contributions: Mapping[str, tuple[bytes, bytes]]
    ) -> bytes:
        """Hand the round's verifier every participant's signed part; return the release."""
        arrays: dict[str, npt.NDArray[np.uint8]] = {}
        for node, (payload, signature) in contributions.items():
            arrays[f"payload:{node}"] = np.frombuffer(payload, dtype=np.uint8)
            arrays[f"signature:{node}"] = np.frombuffer(signature, dtype=np.uint8)
        return self._call(
            "POST",
            f"/jobs/{job_id}/totals/{part}",
            content=encode_arrays(arrays),
            headers={"Content-Type": ARRAY_MEDIA_TYPE},
        ).content

    def submit(self, request: JobBase) -> JobStatus:
        """Queue a job."""
        response = self._call("POST", "/jobs", json=request.model_dump(mode="json"))
        return self._model(JobStatus, response)

    def status(self, job_id: str) -> JobStatus:
        """Fetch a job's state and progress."""
        return self._model(JobStatus, self._call("GET", f"/jobs/{job_id}"))

    def cancel(self, job_id: str) -> JobStatus | None:
        """Cancel a job and return its last status; None if the node is already gone."""
        try:
            return self._model(JobStatus, self._call("POST", f"/jobs/{job_id}/cancel"))
        except NodeError:
            return None

    def result(self, job_id: str, part: str, *, timeout: float) -> tuple[bytes, bytes, int]:
        """Wait for a result part; return it, the node's signature and the blocks done.

        Raises
        ------
        NodeError
            If the job failed or was cancelled, or the part is not ready in ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        while True:
            wait = min(RESULT_WAIT_SECONDS, max(deadline - time.monotonic(), 0.0))
            response = self._call(
                "GET", f"/jobs/{job_id}/results/{part}", params={"wait": wait}, allow=(409,)
            )
            if response.status_code == 200:
                blocks = int(response.headers.get("Genofed-Blocks-Done", 0))
                return response.content, self._signature(response), blocks
            status = self.status(job_id)
            if status.state.value in ("EXECUTOR_ERROR", "CANCELED"):
                reason = status.error or "the job was cancelled"
                raise NodeError(f"node {self.name}: job {job_id} {status.state.value}: {reason}")
            if time.monotonic() >= deadline:
                raise NodeError(
                    f"node {self.name}: no {part} of job {job_id} after {timeout:.0f} s"
                )

    def _call(
        self, method: str, path: str, *, allow: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise NodeError(f"node {self.name} ({self.card.url}) timed out: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise NodeError(f"node {self.name} ({self.card.url}) is unreachable: {exc}") from exc
        if response.is_success or response.status_code in allow:
            return response
        detail, family = _detail(response)
        if response.status_code == 422 or family == "InputError":
            raise InputError(f"node {self.name} refused the request: {detail}")
        if family == "DisclosureError":
            raise DisclosureError(detail)
        if family == "ProtocolError":
            raise ProtocolError(f"node {self.name} refused the request: {detail}")
        if family == "AuthError":
            raise AuthError(
                f"node {self.name} refused access: {detail}", status=response.status_code
            )
        raise NodeError(f"node {self.name} answered {response.status_code}: {detail}")

    def _signature(self, response: httpx.Response) -> bytes:
        value = response.headers.get(SIGNATURE_HEADER)
        if not value:
            return b""
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ProtocolError(
                f"node {self.name} sent a {SIGNATURE_HEADER} header that is not base64"
            ) from exc

    def _model(self, model: type[Model], response: httpx.Response) -> Model:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ProtocolError(
                f"node {self.name} sent a malformed {model.__name__}: {exc}"
            ) from exc

    def _arrays(self, response: httpx.Response) -> dict[str, npt.NDArray[np.generic]]:
        try:
            return decode_arrays(response.content)
        except ProtocolError as exc:
            raise ProtocolError(f"node {self.name}: {exc}") from exc


def _verification(card: PublicCard) -> ssl.SSLContext | bool:
    """Trust exactly the certificate on the card; plain HTTP only to loopback."""
    url = httpx.URL(card.url)
    if url.scheme == "https":
        if not card.certificate:
            raise InputError(
                f"node {card.name}'s card has an https URL but no certificate to pin; "
                "use the public.toml the node wrote"
            )
        return pinned_context(card.certificate)
    if url.scheme != "http" or not is_loopback(url.host):
        raise InputError(
            f"node {card.name}: {card.url} is neither https nor plain http on loopback"
        )
    return False


def _detail(response: httpx.Response) -> tuple[str, str | None]:
    """Return the error message of a node's response, and the error family it names."""
    try:
        body = response.json()
        detail, family = body.get("detail", response.text), body.get("family")
    except (ValueError, AttributeError):
        return response.text[:500], None
    if isinstance(detail, list):  # pydantic validation errors
        detail = "; ".join(
            f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail
        )
    return str(detail), family if isinstance(family, str) else None
