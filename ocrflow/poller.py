"""The polling loop for callers without an orchestrator: fetch until terminal, by the policy.

Clock, sleep and randomness are injected, so tests poll a fake clock and never sleep.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from ocrflow.errors import (
    JobNotReadyError,
    JobTimeoutError,
    OcrflowError,
    RateLimitedError,
    is_transient,
)
from ocrflow.models import OcrResponse
from ocrflow.outcome import require_completed
from ocrflow.polling import PollPolicy

_SYSTEM_RANDOM = random.SystemRandom()


async def wait_until_completed(
    fetch: Callable[[], Awaitable[OcrResponse]],
    *,
    job_id: str,
    policy: PollPolicy,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rand: Callable[[], float] = _SYSTEM_RANDOM.random,
) -> OcrResponse:
    """Call ``fetch`` until the job is Completed and return that answer.

    Raises JobFailedError or JobNotFoundError as soon as the service says so, and
    JobTimeoutError once the policy's deadline has passed. A transient fault that outlasted the
    client's own retries (``ocrflow.errors.is_transient``) counts as one more unanswered poll,
    as a check-status task run's retry does; its ``Retry-After``, if any, is the next delay's
    floor. Anything else is raised.
    """
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        retry_after_s: float | None = None
        try:
            return require_completed(await fetch(), job_id)
        except JobNotReadyError:
            pass
        except OcrflowError as exc:
            if not is_transient(exc):
                raise
            if isinstance(exc, RateLimitedError):
                retry_after_s = exc.retry_after_s
        elapsed_s = clock() - started
        delay = policy.next_delay(
            attempt, elapsed_s=elapsed_s, retry_after_s=retry_after_s, rand=rand()
        )
        if delay is None:
            raise JobTimeoutError(
                f"job {job_id} still unfinished after {attempt} polls in {elapsed_s:.0f} s "
                f"(deadline {policy.deadline_s:.0f} s)",
                job_id=job_id,
                attempts=attempt,
                elapsed_s=elapsed_s,
            )
        await sleep(delay)
