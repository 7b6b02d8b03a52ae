"""Decisions about a job's life, pure and clock-injected: resubmit or give up, and when.

The flow asks; these answer from what the ledger knows and the time given to them:
- a job that ended ``Error`` or ``NotExist``: resubmit its original image, or end it (and why);
- a job past the service's 24 h retention: it *expired* (its own state), whatever comes next;
- an ``Error`` whose cause cannot pass on a second try (a region outside the image, data that
  is no image): never resubmitted, since a new job would fail the same way and cost a call;
- the polling deadline, which counts from the job's submission, not from the run that polls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ocrflow.ledger import JobState
from ocrflow.polling import RETENTION_S

# The service's error messages are not documented (contract §7: only "error.messages"); these
# are causes that no second job can change. Anything else is taken as one that may pass.
_PERMANENT = re.compile(
    r"not an image|could not be decoded|cannot be decoded|not supported|unsupported|"
    r"lies outside|out of (the )?(image|bounds)|region \d+ is empty|is too large|"
    r"not available|invalid (image|region|rect|language|setting)",
    re.IGNORECASE,
)

EXPIRY_WARNING_S = 2 * 3600.0  # a sweep warns about unfinished jobs this close to expiry


def is_permanent_error(messages: list[str]) -> bool:
    """True when the service's messages name a cause a new job of the same input would meet."""
    return any(_PERMANENT.search(message) for message in messages)


@dataclass(frozen=True, slots=True)
class JobFacts:
    """What the ledger knows of a job that matters to the decisions."""

    known: bool
    can_resubmit: bool
    submitted_at: datetime | None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a job that ended ``Error`` or ``NotExist``.

    ``resubmit``: send the original image again. ``state``: the state the job ends in when it
    is not resubmitted (``failed`` or ``expired``). ``expired``: the job was past the retention
    (counted in the run's message, resubmitted or not). ``reason``: one line for the ledger.
    """

    resubmit: bool
    state: JobState
    expired: bool
    reason: str


def after_failure(
    *,
    status: str,
    messages: list[str],
    detail: str,
    facts: JobFacts,
    resubmissions: int,
    limit: int,
    now: datetime,
    retention_s: float = RETENTION_S,
) -> Decision:
    """Decide what follows an ``Error`` (``status="Error"``) or ``NotExist`` answer.

    ``detail``: the answer in words (the service's messages); ``resubmissions``: how many new
    jobs this one's chain has had; ``limit``: how many it may have.
    """
    age_s = None if facts.submitted_at is None else (now - facts.submitted_at).total_seconds()
    expired = status == "NotExist" and age_s is not None and age_s >= retention_s
    if expired:
        assert age_s is not None  # noqa: S101 - expired implies a known age
        detail = (
            f"expired: submitted {age_s / 3600:.1f} h ago, and the service keeps a job "
            f"{retention_s / 3600:.0f} h"
        )
    end = JobState.EXPIRED if expired else JobState.FAILED
    why: str | None = None
    if not facts.known:
        why = "the ledger does not know this job, so it cannot be resubmitted"
    elif status == "Error" and is_permanent_error(messages):
        why = "the cause would fail a new job the same way, so it is not resubmitted"
    elif not facts.can_resubmit:
        why = "the ledger keeps no original image to resubmit"
    elif resubmissions >= limit:
        why = f"resubmitted {resubmissions} time(s), the limit is {limit}"
    if why is not None:
        return Decision(False, end, expired, f"{detail}; {why}")
    return Decision(True, end, expired, detail)


def remaining_poll_s(submitted_at: datetime | None, deadline_s: float, now: datetime) -> float:
    """Polling time left to a job: ``deadline_s`` counted from its submission (from now when
    the ledger does not know when it was sent). Never below zero."""
    if submitted_at is None:
        return deadline_s
    return max(deadline_s - (now - submitted_at).total_seconds(), 0.0)


def nearing_expiry(
    submitted_at: datetime,
    now: datetime,
    *,
    retention_s: float = RETENTION_S,
    warn_before_s: float = EXPIRY_WARNING_S,
) -> bool:
    """True when an unfinished job's results will be gone within ``warn_before_s``."""
    return (now - submitted_at).total_seconds() >= retention_s - warn_before_s
