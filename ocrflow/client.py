"""The async client of RecognizeRegions: submit, get result, get status, cancel, wait.

Who retries what: one layer per fault.

=====================================  ==========================================================
fault                                  retried by
=====================================  ==========================================================
connect error, timeout, 5xx, a         this client, within the call: at most ``max_attempts``
malformed 2xx body (GET)               tries, capped fully jittered backoff (``backoff_*_s``)
429 / 503 with ``Retry-After``         this client, after the hint, when it is at most
                                       ``max_retry_after_s``; a longer hint is raised at once
401 on a fresh token (GET)             this client, once more with a newer token
POST that may have reached the         nobody: a retry could create a second job (the ledger
service (read timeout, 5xx)            keeps the intent; ``ocrflow.submitting``)
job Pending / Processing               the poll: Prefect's retries of ``check-status`` in the
                                       flows, :func:`ocrflow.poller.wait_until_completed` without
                                       an orchestrator; both by the ``PollPolicy``, to its deadline
a fault that outlasted this client     the same poll layer, as one more unanswered poll (a
(the service away for longer)          ``Retry-After`` is the next wait's floor); no retry above it
job Error / NotExist                   nobody retries: the flow resubmits the original image
                                       (``ocrflow.lifecycle.after_failure``)
the ledger's database away             ``ocrflow.dbretry.retry_transient``, around ledger writes
=====================================  ==========================================================

A POST is only retried when it certainly did not reach the service (connection refused, 429,
503), so that a retry never creates a second job.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx
from pydantic import ValidationError

from ocrflow import __version__
from ocrflow.auth import ClientCredentialsAuth
from ocrflow.backoff import full_jitter_delay, parse_retry_after
from ocrflow.errors import (
    ApiError,
    AuthError,
    OcrflowError,
    RateLimitedError,
    ResponseFormatError,
    ResponseTooLargeError,
    TransportError,
    excerpt,
    is_transient,
)
from ocrflow.health import ServiceHealth
from ocrflow.ids import parse_job_id_body, read_echoed_id, validate_job_id
from ocrflow.models import (
    OcrResponse,
    RecognizeRegionsBody,
    RecognizeRegionsSettings,
    Region,
    TaskStatus,
    to_wire,
)
from ocrflow.poller import wait_until_completed
from ocrflow.polling import PollPolicy
from ocrflow.ratelimit import RateLimiter
from ocrflow.settings import ClientSettings

RECOGNIZE_REGIONS_PATH = "/v5.0/ocr/RecognizeRegions"
TASK_STATUS_PATH = "/v5.0/ocr/Utilities/GetTaskStatus"

# Errors after which the request surely never reached the server: safe to retry even a POST.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_T = TypeVar("_T")
_SYSTEM_RANDOM = random.SystemRandom()


class _MalformedBodyError(Exception):
    """A 2xx body that could not be read; worth fetching again for a GET."""


class OcrClient:
    """Async client of the RecognizeRegions endpoints; use as ``async with OcrClient(s) as c``.

    ``transport`` is the I/O seam (``httpx.MockTransport``, ``httpx.ASGITransport``) and
    ``sleep``/``rand``/``clock`` make retry waits and the rate budget testable without real
    time.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rand: Callable[[], float] = _SYSTEM_RANDOM.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.concurrency)  # bounds calls, not waits
        self._budget = (
            RateLimiter(settings.rate_limit_rps, clock=clock, sleep=sleep)
            if settings.rate_limit_rps
            else None
        )
        self._sleep = sleep
        self._rand = rand
        self.health = ServiceHealth(clock=clock)  # how long the service has been away
        self.auth = auth or ClientCredentialsAuth(
            settings.resolved_token_url,
            settings.client_id,
            settings.client_secret,
            renew_margin_s=settings.token_renew_margin_s,
            rejected_cooldown_s=settings.token_rejected_cooldown_s,
            max_token_wait_s=settings.max_retry_after_s,
            sleep=sleep,
        )
        self._http = httpx.AsyncClient(
            base_url=settings.base_url,
            auth=self.auth,
            transport=transport,
            limits=httpx.Limits(max_connections=settings.concurrency),
            timeout=httpx.Timeout(
                connect=settings.connect_timeout_s,
                read=settings.read_timeout_s,
                write=settings.write_timeout_s,
                pool=settings.pool_timeout_s,
            ),
            headers={"User-Agent": f"ocrflow/{__version__}"},
            follow_redirects=False,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def check_credentials(self) -> None:
        """One token request, now (the token is kept for the calls that follow): raises
        AuthError when the service refuses the credentials, before anything is sent."""
        if isinstance(self.auth, ClientCredentialsAuth):
            await self.auth.verify(self._http)

    @asynccontextmanager
    async def token_ahead(self) -> AsyncIterator[None]:
        """Ask for the token in the background while the block runs its own first steps (a
        run's leases and ledger reads), so that its first call does not wait a round trip for
        it. Failures are left to that call, which meets the same answer and raises it."""
        if not isinstance(self.auth, ClientCredentialsAuth):
            yield
            return
        early = asyncio.create_task(self.auth.verify(self._http))
        try:
            yield
        finally:
            early.cancel()
            await asyncio.gather(early, return_exceptions=True)

    async def submit_regions(
        self,
        image: bytes | Path,
        regions: Sequence[Region],
        settings: RecognizeRegionsSettings | None = None,
    ) -> str:
        """Send an image and its regions for recognition; return the new job's id."""
        data = self._read_image(image)
        check_regions(regions)
        body = RecognizeRegionsBody(
            image=base64.b64encode(data).decode("ascii"),
            settings=(settings or RecognizeRegionsSettings()).model_copy(
                update={"regions": list(regions)}
            ),
        )

        def read_job_id(response: httpx.Response) -> str:
            try:
                return parse_job_id_body(response.text)
            except ValueError as exc:
                raise ResponseFormatError(
                    f"POST {RECOGNIZE_REGIONS_PATH} answered without a job id: {exc}",
                    status_code=response.status_code,
                    body=response.text,
                ) from exc

        return await self._call(
            "POST",
            RECOGNIZE_REGIONS_PATH,
            read_job_id,
            content=json.dumps(to_wire(body)).encode(),
            headers={"Content-Type": "application/json", "Accept": "text/plain"},
            idempotent=False,
        )

    async def get_result(self, job_id: str) -> OcrResponse:
        """One GET of the job: its status and, once Completed, every result entry."""
        return await self._get_response(RECOGNIZE_REGIONS_PATH, job_id)

    async def get_status(self, job_id: str) -> OcrResponse:
        """The job's status without its results (``Utilities/GetTaskStatus``)."""
        return await self._get_response(TASK_STATUS_PATH, job_id)

    async def cancel(self, job_id: str) -> None:
        """Cancel the job (DELETE); later GETs read it as NotExist."""
        job_id = validate_job_id(job_id)
        await self._call("DELETE", RECOGNIZE_REGIONS_PATH, lambda _r: None, params={"id": job_id})

    async def wait_for_result(
        self,
        job_id: str,
        policy: PollPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> OcrResponse:
        """Poll the job by ``policy`` until it is Completed; see :func:`wait_until_completed`."""
        job_id = validate_job_id(job_id)
        return await wait_until_completed(
            lambda: self.get_result(job_id),
            job_id=job_id,
            policy=policy or PollPolicy(),
            clock=clock,
            sleep=self._sleep,
            rand=self._rand,
        )

    def _read_image(self, image: bytes | Path) -> bytes:
        if isinstance(image, Path):
            try:
                size = image.stat().st_size
                if size > self.settings.max_image_bytes:
                    raise ValueError(self._too_large(size))
                data = image.read_bytes()
            except OSError as exc:
                raise ValueError(f"cannot read image {image}: {exc.strerror or exc}") from exc
        else:
            data = bytes(image)
        if not data:
            raise ValueError("the image is empty")
        if len(data) > self.settings.max_image_bytes:
            raise ValueError(self._too_large(len(data)))
        return data

    def _too_large(self, size: int) -> str:
        return f"the image has {size} bytes, over the limit of {self.settings.max_image_bytes}"

    async def _get_response(self, path: str, job_id: str) -> OcrResponse:
        job_id = validate_job_id(job_id)

        def read(response: httpx.Response) -> OcrResponse:
            return parse_ocr_response(response, job_id)

        return await self._call(
            "GET", path, read, params={"id": job_id}, headers={"Accept": "application/json"}
        )

    async def _call(
        self,
        method: str,
        path: str,
        read: Callable[[httpx.Response], _T],
        *,
        idempotent: bool = True,
        **request: Any,
    ) -> _T:
        """Send one request with bounded retries and return what ``read`` makes of the answer."""
        attempts = self.settings.max_attempts
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            retry_after_s: float | None = None
            try:
                response = await self._send(method, path, **request)
            except httpx.HTTPError as exc:
                error: OcrflowError = TransportError(
                    f"{method} {path} failed: {type(exc).__name__}: {exc}".rstrip(": ")
                )
                self.health.failed(str(error))
                if last or not (idempotent or isinstance(exc, _NOT_SENT)):
                    raise error from exc
            except ApiError as exc:  # from the token endpoint, through the auth flow
                if isinstance(exc, AuthError) or is_transient(exc):
                    self.health.failed(str(exc)[:300])
                if last or not is_transient(exc):
                    raise
            else:
                self._note_answer(response.status_code, f"{method} {path}")
                try:
                    return self._read_answer(method, path, response, read)
                except _MalformedBodyError as exc:
                    if last or not idempotent:
                        raise ResponseFormatError(
                            str(exc), status_code=response.status_code, body=response.text
                        ) from exc
                except ApiError as exc:
                    retry_after_s = self._worth_another_try(exc, last=last, idempotent=idempotent)
            await self._sleep(
                retry_after_s
                if retry_after_s is not None
                else full_jitter_delay(
                    attempt,
                    base_s=self.settings.backoff_base_s,
                    cap_s=self.settings.backoff_cap_s,
                    rand=self._rand(),
                )
            )
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _note_answer(self, status: int, call: str) -> None:
        """A server error or refused credentials count as the service being away; any other
        answer (a 404, a 429 that says when to come back) as it being there."""
        if status >= 500 or status in (401, 403):
            self.health.failed(f"{call} answered HTTP {status}")
        else:
            self.health.answered()

    def _worth_another_try(self, exc: ApiError, *, last: bool, idempotent: bool) -> float | None:
        """Re-raise an answer's error unless another try may succeed; then the server's wait
        hint, if it gave one."""
        if last:
            raise exc
        if isinstance(exc, RateLimitedError):
            if (exc.retry_after_s or 0.0) > self.settings.max_retry_after_s:
                raise exc
            return exc.retry_after_s
        if isinstance(exc, AuthError):
            # A 401 right after a renewal: the new token was refused too, which a token
            # revoked early does; a read is tried again (with a newer token).
            if idempotent and exc.status_code == 401:
                return None
            raise exc
        if idempotent and is_transient(exc):
            return None
        raise exc

    async def _send(self, method: str, path: str, **request: Any) -> httpx.Response:
        """One request, within the rate budget and the concurrency bound."""
        if self._budget is not None:
            await self._budget.acquire()
        async with self._slots:
            outgoing = self._http.build_request(method, path, **request)
            response = await self._http.send(outgoing, stream=True)
            try:
                body = await self._read_bounded(method, path, response)
            finally:
                await response.aclose()
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(response.status_code, headers=headers, content=body, request=outgoing)

    async def _read_bounded(self, method: str, path: str, response: httpx.Response) -> bytes:
        """The answer's body, refused as soon as it passes ``max_response_bytes`` (decoded, so
        a compressed bomb is stopped too): a hostile or broken answer cannot exhaust memory."""
        limit = self.settings.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        too_large = f"{method} {path}: the answer is over the {limit}-byte limit; not read"
        if declared.isdigit() and int(declared) > limit:
            raise ResponseTooLargeError(too_large, status_code=response.status_code)
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                raise ResponseTooLargeError(too_large, status_code=response.status_code)
        return bytes(body)

    @staticmethod
    def _read_answer(
        method: str, path: str, response: httpx.Response, read: Callable[[httpx.Response], _T]
    ) -> _T:
        status = response.status_code
        if 200 <= status < 300:
            return read(response)
        where = f"{method} {path} answered HTTP {status}"
        if status in (429, 503):
            retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
            hint = "" if retry_after_s is None else f" (Retry-After {retry_after_s:.0f} s)"
            raise RateLimitedError(
                where + hint, status_code=status, body=response.text, retry_after_s=retry_after_s
            )
        if status in (401, 403):
            raise AuthError(
                where + ": the bearer token was refused even after renewing it",
                status_code=status,
                body=response.text,
            )
        raise ApiError(
            f"{where}: {excerpt(response.text, 200)}", status_code=status, body=response.text
        )


def parse_ocr_response(response: httpx.Response, job_id: str) -> OcrResponse:
    """Read an OCRResponse body for ``job_id``; an unknown taskStatus fails loudly."""
    try:
        payload = json.loads(response.content)
    except ValueError as exc:
        raise _MalformedBodyError(
            f"the answer for job {job_id} is not JSON: {excerpt(response.text, 120)!r}"
        ) from exc
    try:
        parsed = OcrResponse.model_validate(payload)
    except ValidationError as exc:
        raise ResponseFormatError(
            _describe_invalid_response(exc, job_id), status_code=response.status_code
        ) from exc
    if parsed.id and read_echoed_id(parsed.id) != job_id:
        raise ResponseFormatError(
            f"asked for job {job_id} but the answer is for {excerpt(parsed.id, 60)!r}",
            status_code=response.status_code,
        )
    return parsed


def _describe_invalid_response(exc: ValidationError, job_id: str) -> str:
    for error in exc.errors():
        if error["loc"] and error["loc"][0] == "taskStatus":
            known = ", ".join(status.value for status in TaskStatus)
            value = error.get("input")
            if error["type"] == "missing":
                return f"the answer for job {job_id} has no taskStatus"
            return f"unknown taskStatus {value!r} for job {job_id} (known: {known})"
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:3]
    )
    return f"the answer for job {job_id} breaks the OCRResponse schema: {problems}"


def check_regions(regions: Sequence[Region]) -> None:
    """Reject regions that cannot be read: negative corners, or no width or height."""
    if not regions:
        raise ValueError("give at least one region to recognise")
    for index, region in enumerate(regions):
        rect = region.rect
        if min(rect.top_left_x, rect.top_left_y) < 0:
            raise ValueError(f"region {index}: negative coordinates in {to_wire(rect)}")
        if rect.width <= 0 or rect.height <= 0:
            raise ValueError(f"region {index}: empty rectangle {to_wire(rect)}")
