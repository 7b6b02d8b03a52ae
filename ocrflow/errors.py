"""The one exception tree of the core; callers catch at the level they care about.

::

    OcrflowError
    ├── InvalidJobIdError (also ValueError)  a job id that is not a GUID, rejected before use
    ├── ApiError                             an HTTP answer we cannot use: .status_code, .body
    │   ├── AuthError                        credentials rejected, token endpoint banned us, 401
    │   ├── RateLimitedError                 429/503 still answered after the retries
    │   └── ResponseFormatError              malformed JSON, an unknown status, a bad job id
    │       └── ResponseTooLargeError        an answer over max_response_bytes, not read on
    ├── TransportError                       connection failures and timeouts after the retries
    ├── JobError                             the job itself: .job_id
    │   ├── JobNotReadyError                 Pending/Processing: poll again later
    │   ├── JobFailedError                   taskStatus Error: .messages
    │   ├── JobNotFoundError                 taskStatus NotExist: unknown, expired or cancelled
    │   ├── IncompleteAnswerError            Completed, but entries missing or unreadable
    │   └── JobTimeoutError                  still unfinished at the polling deadline
    ├── ResubmissionInFlightError            begun by another run, or by one that died
    └── DecodeError                          one result entry could not be decoded or parsed
        └── ResultTooLargeError              an entry above the configured size limit

Only ``TransportError``, ``RateLimitedError`` and ``ApiError`` with a 5xx status are
*transient*: ``is_transient`` says so, and the retrying layers use it.
"""

from __future__ import annotations

BODY_EXCERPT_CHARS = 500


def excerpt(text: str, limit: int = BODY_EXCERPT_CHARS) -> str:
    """Shorten a response body for an error message or a log line."""
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


class OcrflowError(Exception):
    """Base of every error the core raises on purpose."""


class InvalidJobIdError(OcrflowError, ValueError):
    """A job id is not a GUID; it never reaches a URL, a log line or a file name."""


class ApiError(OcrflowError):
    """The service answered, but not with something we can use."""

    def __init__(self, message: str, *, status_code: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = excerpt(body)


class AuthError(ApiError):
    """Authentication failed: rejected credentials, a banned client, or a 401 after renewal."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body)
        self.retry_after_s = retry_after_s


class RateLimitedError(ApiError):
    """429 or 503 kept coming after the client's retries, or asked for too long a wait."""

    def __init__(
        self, message: str, *, status_code: int, body: str = "", retry_after_s: float | None
    ) -> None:
        super().__init__(message, status_code=status_code, body=body)
        self.retry_after_s = retry_after_s


class ResponseFormatError(ApiError):
    """A 2xx answer whose body breaks the wire contract."""


class ResponseTooLargeError(ResponseFormatError):
    """An answer larger than the configured limit: reading stopped there, nothing kept."""


class TransportError(OcrflowError):
    """The request never got an answer: connection refused or reset, timeout."""


class JobError(OcrflowError):
    """Something about one job; ``job_id`` is already validated."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobNotReadyError(JobError):
    """The job is Pending or Processing: poll again later."""

    def __init__(self, message: str, *, job_id: str, status: str) -> None:
        super().__init__(message, job_id=job_id)
        self.status = status


class JobFailedError(JobError):
    """The service reports taskStatus Error for the job."""

    def __init__(self, message: str, *, job_id: str, messages: list[str]) -> None:
        super().__init__(message, job_id=job_id)
        self.messages = messages


class JobNotFoundError(JobError):
    """The service reports taskStatus NotExist: unknown id, expired (24 h) or cancelled."""


class IncompleteAnswerError(JobError):
    """Completed, but the answer lacks entries its request asked for, or has unreadable ones."""


class JobTimeoutError(JobError):
    """The job was still unfinished when the polling deadline came."""

    def __init__(self, message: str, *, job_id: str, attempts: int, elapsed_s: float) -> None:
        super().__init__(message, job_id=job_id)
        self.attempts = attempts
        self.elapsed_s = elapsed_s


class ResubmissionInFlightError(OcrflowError):
    """A job's resubmission was begun elsewhere and never recorded: it is not sent again."""


class DecodeError(OcrflowError):
    """One result entry could not be decoded or parsed; only its region fails."""


class ResultTooLargeError(DecodeError):
    """A result entry is larger than the configured limit; it is refused before decoding."""


def is_transient(exc: BaseException) -> bool:
    """True for failures that may succeed when tried again later."""
    if isinstance(exc, TransportError | RateLimitedError):
        return True
    return (
        isinstance(exc, ApiError)
        and not isinstance(exc, AuthError | ResponseFormatError)
        and exc.status_code is not None
        and exc.status_code >= 500
    )
