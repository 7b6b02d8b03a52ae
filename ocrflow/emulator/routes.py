"""The emulator's endpoints: the vendor's (token, RecognizeRegions/Image, GetTaskStatus) and
its own controls under ``/_emulator`` (faults, processing time, stats, jobs, reset)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ocrflow.emulator.hostile import hostile_answer
from ocrflow.emulator.jobs import JobView, canonical_job_id
from ocrflow.emulator.schemas import BadRequestError, parse_recognize_body, problem_details
from ocrflow.emulator.settings import Faults, ProcessingTime
from ocrflow.emulator.state import EmulatorState

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
STATUS_CODES = {
    "Completed": "Ok",
    "Pending": "NotReady",
    "Processing": "NotReady",
    "Error": "Error",
    "NotExist": "TaskNotFound",
}


def get_state(request: Request) -> EmulatorState:
    """The app's state, as a dependency."""
    state: EmulatorState = request.app.state.emulator
    return state


State = Annotated[EmulatorState, Depends(get_state)]


class UnauthorizedError(Exception):
    """A missing, unknown or expired bearer token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def require_bearer(request: Request, state: State) -> None:
    """Check the bearer token; the early-expiry fault revokes a good one."""
    authorization = request.headers.get("Authorization")
    reason = state.tokens.check(authorization)
    if reason is None and state.chance(state.faults.rate_token_expired):
        state.counts["fault_token_expired"] += 1
        state.tokens.revoke(authorization)
        reason = "expired"
    if reason is not None:
        state.counts["unauthorized"] += 1
        raise UnauthorizedError(reason)


Bearer = Annotated[None, Depends(require_bearer)]
JobId = Annotated[str | None, Query(alias="id")]


def unauthorized_answer(_request: Request, exc: Exception) -> Response:
    reason = exc.reason if isinstance(exc, UnauthorizedError) else "invalid"
    challenge = "Bearer"
    if reason == "expired":
        challenge = 'Bearer error="invalid_token", error_description="The token expired"'
    elif reason == "invalid":
        challenge = 'Bearer error="invalid_token"'
    return Response(status_code=401, headers={"WWW-Authenticate": challenge})


def bad_request_answer(_request: Request, exc: Exception) -> Response:
    errors = exc.errors if isinstance(exc, BadRequestError) else {"": [str(exc)]}
    return JSONResponse(
        BadRequestError(errors).problem(), status_code=400, media_type="application/problem+json"
    )


def http_error_answer(request: Request, exc: Exception) -> Response:
    """Any other HTTP error (an unknown path's 404, a wrong method's 405) as the service's
    ProblemDetails, not FastAPI's ``{"detail": …}``; a 405 says every method the path takes."""
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    headers = dict(exc.headers or {}) if isinstance(exc, StarletteHTTPException) else {}
    if status == 405:
        # Starlette names the methods of the first route on the path only (one per method here):
        # ask the app's routes which methods they would take on this path.
        allowed = [
            method
            for method in HTTP_METHODS
            if any(
                route.matches({**request.scope, "method": method})[0] == Match.FULL
                for route in request.app.routes
            )
        ]
        headers["Allow"] = ", ".join(allowed)
    return JSONResponse(
        problem_details(status),
        status_code=status,
        headers=headers,
        media_type="application/problem+json",
    )


def _missing_id() -> BadRequestError:
    return BadRequestError({"id": ["The id field is required."]})


def ocr_response(job_id: str, view: JobView, *, with_results: bool) -> dict[str, Any]:
    """An OCRResponse body in the vendor's field order."""
    error = None
    if view.messages or view.warnings:
        error = {"messages": view.messages or None, "warnings": view.warnings or None}
    return {
        "id": job_id,
        "taskStatus": view.status,
        "responseStatusCode": STATUS_CODES[view.status],
        "results": view.results if with_results else None,
        "error": error,
    }


def _json_answer(state: EmulatorState, body: dict[str, Any]) -> Response:
    if body["taskStatus"] == "Completed" and state.chance(state.faults.rate_hostile):
        state.counts[f"fault_hostile_{state.faults.hostile}"] += 1
        body = hostile_answer(body, state.faults)
    if body["results"] and state.chance(state.faults.rate_corrupt_base64):
        state.counts["fault_corrupt_base64"] += 1
        body["results"] = [dict(r) for r in body["results"]]
        body["results"][0]["data"] = "!!corrupt*" + body["results"][0]["data"][10:]
    text = json.dumps(body)
    if state.chance(state.faults.rate_malformed_json):
        state.counts["fault_malformed_json"] += 1
        text = text[: max(len(text) // 2, 1)]
    return Response(text, media_type="application/json")


def build_ocr_router(feature: str, *, regions: bool) -> APIRouter:
    """POST/GET/DELETE on ``/v5.0/ocr/<feature>``."""
    router = APIRouter(prefix=f"/v5.0/ocr/{feature}", tags=[feature])

    @router.post("", response_class=PlainTextResponse)
    async def submit(request: Request, state: State, _auth: Bearer) -> Response:
        raw = await request.body()
        body, image = parse_recognize_body(raw, max_image_bytes=state.settings.max_image_bytes)
        if not regions:
            body.settings.regions = None
        job_id = state.jobs.submit(body, image, regions_required=regions)
        state.counts[f"submit_{feature}"] += 1
        accept = request.headers.get("Accept", "")
        if "application/json" in accept and "text/plain" not in accept:
            # ASP.NET JSON-quotes a string result when only JSON is acceptable.
            return Response(json.dumps(job_id), media_type="application/json")
        return PlainTextResponse(job_id)

    @router.get("")
    async def fetch(state: State, _auth: Bearer, job_id: JobId = None) -> Response:
        if not job_id:
            raise _missing_id()
        state.counts[f"get_{feature}"] += 1
        view = state.jobs.view(job_id, with_results=True)
        echoed = canonical_job_id(job_id)  # as .NET writes a Guid back: lower-case 8-4-4-4-12
        return _json_answer(state, ocr_response(echoed, view, with_results=True))

    @router.delete("")
    async def cancel(state: State, _auth: Bearer, job_id: JobId = None) -> Response:
        if not job_id:
            raise _missing_id()
        state.counts[f"delete_{feature}"] += 1
        state.jobs.cancel(job_id)
        return Response(status_code=200)

    return router


def build_utilities_router() -> APIRouter:
    """``GET /v5.0/ocr/Utilities/GetTaskStatus``: the status without the results."""
    router = APIRouter(prefix="/v5.0/ocr/Utilities", tags=["Utilities"])

    @router.get("/GetTaskStatus")
    async def task_status(state: State, _auth: Bearer, job_id: JobId = None) -> Response:
        if not job_id:
            raise _missing_id()
        state.counts["get_status"] += 1
        view = state.jobs.view(job_id, with_results=False)
        echoed = canonical_job_id(job_id)
        return _json_answer(state, ocr_response(echoed, view, with_results=False))

    return router


def build_token_router() -> APIRouter:
    """``POST /connect/token``: form, multipart or HTTP Basic client credentials."""
    router = APIRouter(tags=["auth"])

    @router.post("/connect/token")
    async def token(request: Request, state: State) -> Response:
        state.counts["token_requests"] += 1
        faults = state.faults
        if state.chance(faults.token_429_rate):
            state.counts["fault_token_429"] += 1
            retry_after = str(math.ceil(faults.retry_after_s))
            return JSONResponse(
                {"error": "too_many_requests"}, 429, headers={"Retry-After": retry_after}
            )
        if state.chance(faults.token_reject_rate):
            state.counts["fault_token_400"] += 1
            return JSONResponse({"error": "invalid_client"}, 400)
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in FORM_TYPES:
            # An OAuth token endpoint reads a form (RFC 6749 §4.4.2): a JSON body, however
            # right its fields, is no request at all, and must not read as a wrong grant type.
            state.counts["token_400"] += 1
            sent = f"Content-Type {content_type[:80]!r}" if content_type else "no Content-Type"
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": (
                        "the token endpoint expects application/x-www-form-urlencoded "
                        f"grant_type, client_id and client_secret; the request had {sent}"
                    ),
                },
                400,
            )
        client_id, client_secret, grant_type = await _credentials(request)
        answer = state.tokens.issue(client_id, client_secret, grant_type)
        state.counts[f"token_{answer.status}"] += 1
        return JSONResponse(answer.body, answer.status, headers=answer.headers)

    return router


async def _credentials(request: Request) -> tuple[str | None, str | None, str | None]:
    """client_id, client_secret and grant_type from the Basic header or the form."""
    client_id = client_secret = None
    authorization = request.headers.get("Authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            user, _, password = decoded.partition(":")
            client_id, client_secret = unquote(user), unquote(password)
        except (binascii.Error, UnicodeDecodeError):
            pass
    form = await request.form()
    grant_type = _form_str(form.get("grant_type"))
    client_id = _form_str(form.get("client_id")) or client_id
    client_secret = _form_str(form.get("client_secret")) or client_secret
    return client_id, client_secret, grant_type


def _form_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def build_control_router() -> APIRouter:
    """Emulator controls: fault modes and counters, for tests and benchmarks."""
    router = APIRouter(prefix="/_emulator", tags=["emulator"])

    @router.get("/faults")
    async def get_faults(state: State) -> Faults:
        return state.faults

    @router.put("/faults")
    async def put_faults(state: State, faults: Faults) -> Faults:
        state.set_faults(faults)
        return faults

    @router.put("/processing")
    async def put_processing(state: State, processing: ProcessingTime) -> ProcessingTime:
        """How long jobs submitted from now on take (the jobs already in keep theirs)."""
        state.settings.processing = processing
        state.jobs.settings.processing = processing
        return processing

    @router.get("/stats")
    async def stats(state: State) -> dict[str, Any]:
        return {"counts": dict(state.counts), "jobs": state.jobs.stats()}

    @router.get("/jobs")
    async def jobs(state: State) -> list[dict[str, str]]:
        """Every job received (id, image SHA-256): the service's side of a ledger audit."""
        return state.jobs.received()

    @router.post("/reset")
    async def reset(state: State) -> dict[str, str]:
        state.set_faults(Faults())
        state.counts.clear()
        return {"status": "reset"}

    return router
