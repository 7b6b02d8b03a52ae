"""One job's way to its end, as a pure state machine: what each answer means, what comes next.

The flow drives it: it does what an action says (poll, store, resubmit, end) and reports what
happened; the machine decides, from the answers, the ledger's facts and the clock it is given.
No I/O and no Prefect here, so every path is tested with a fake clock and property-based
sequences of answers (tests/unit/test_settling.py).

::

    start ──► Poll ──answer Completed──► Store ──complete──► Done (stored)
               │  ▲                        │
               │  └──wait, fetch again─────┘ incomplete (≤ max_refetches, then End incomplete)
               ├──still not ready at the deadline──► End timed_out
               └──Error / NotExist──► after_failure ──► Resubmit ──new job──► Poll
                                                    └─► End failed / expired
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ocrflow.completeness import RefetchPolicy
from ocrflow.errors import JobFailedError, JobNotFoundError, JobNotReadyError
from ocrflow.jobstate import JobState
from ocrflow.lifecycle import JobFacts, after_failure


class Ending(StrEnum):
    """How a job that was not stored ended."""

    FAILED = "failed"
    EXPIRED = "expired"
    TIMED_OUT = "timed_out"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True, slots=True)
class Poll:
    """Poll ``job_id`` until it is done, after ``wait_s``. ``first``: the job's first poll in
    this run, which the learned schedule may place; otherwise the capped exponential policy
    (a resubmitted job, an incomplete answer fetched again)."""

    job_id: str
    wait_s: float = 0.0
    first: bool = False


@dataclass(frozen=True, slots=True)
class Store:
    """Store ``job_id``'s Completed answer. ``original``: the job the ledger record is of (its
    polls date from that record), not one of its resubmissions."""

    job_id: str
    original: bool


@dataclass(frozen=True, slots=True)
class Resubmit:
    """Send the original image of ``job_id`` again (the ledger's protocol), for ``reason``."""

    job_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class End:
    """The job ends unstored: ``job_id`` (the last of its chain) goes to ``state`` with
    ``reason``; ``last_status`` is the service's last word on it."""

    job_id: str
    ending: Ending
    state: JobState
    reason: str
    last_status: str


@dataclass(frozen=True, slots=True)
class Done:
    """``job_id`` (the last of the chain) is stored."""

    job_id: str


Action = Poll | Store | Resubmit | End | Done

_ENDING_STATE = {
    Ending.FAILED: JobState.FAILED,
    Ending.EXPIRED: JobState.EXPIRED,
    Ending.TIMED_OUT: JobState.TIMED_OUT,
    Ending.INCOMPLETE: JobState.INCOMPLETE,
}


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds a job's settling keeps to."""

    max_resubmissions: int
    poll_deadline_s: float
    refetch: RefetchPolicy


class Settling:
    """The decisions for one job, event by event; each method returns the next action.

    Once it has returned ``End`` or ``Done`` it takes no more events (a stored job is never
    written again, an ended one never polled again).
    """

    def __init__(
        self, job_id: str, facts: JobFacts, limits: Limits, now: Callable[[], datetime]
    ) -> None:
        self.job_id, self.facts, self.limits, self.now = job_id, facts, limits, now
        self.current = job_id  # the job of the chain being settled
        self.resubmissions = 0
        self.refetches = 0
        self.expired = False  # the original was past the retention (resubmitted or not)
        self.resubmitting = False  # a Resubmit was asked for and not answered yet
        self.finished: Action | None = None

    def start(
        self, looked: JobNotReadyError | JobFailedError | JobNotFoundError | None = None
    ) -> Action:
        """The first action; ``looked``: what a first look at the job found a moment ago."""
        if isinstance(looked, (JobFailedError, JobNotFoundError)):
            return self.failed(looked)
        return Poll(self.job_id, first=True)

    def incomplete_at_first_look(self, reason: str) -> Action:
        """A first look found the job Completed, but its answer could not be stored whole."""
        return self.stored(incomplete=reason)

    def answered(self) -> Action:
        """The job is Completed: store its answer."""
        self._open()
        return Store(self.current, original=self.current == self.job_id)

    def not_ready_at_deadline(self, status: str) -> Action:
        """The polls ran to the deadline and the job is still ``status``."""
        deadline = self.limits.poll_deadline_s
        why = f"still {status} {deadline:.0f} s after its submission (the polling deadline)"
        return self._end(Ending.TIMED_OUT, why, status)

    def failed(self, error: JobFailedError | JobNotFoundError) -> Action:
        """The service answered ``Error`` or ``NotExist`` for the current job."""
        self._open()
        original = self.current == self.job_id
        status = "Error" if isinstance(error, JobFailedError) else "NotExist"
        decision = after_failure(
            status=status,
            messages=error.messages if isinstance(error, JobFailedError) else [],
            detail=str(error),
            # A resubmitted job was sent moments ago: only the original can have expired.
            facts=self.facts if original else _sent_just_now(self.facts),
            resubmissions=self.resubmissions,
            limit=self.limits.max_resubmissions,
            now=self.now(),
        )
        self.expired = self.expired or decision.expired
        if decision.resubmit:
            self.resubmitting = True
            return Resubmit(self.current, decision.reason)
        ending = Ending.EXPIRED if decision.state is JobState.EXPIRED else Ending.FAILED
        return self._end(ending, decision.reason, status)

    def resubmitted(self, new_job_id: str) -> Action:
        """The original image was sent again as ``new_job_id``: poll that one."""
        if not self.resubmitting:
            raise RuntimeError(f"no resubmission of {self.current} was asked for")
        self.resubmitting = False
        self.resubmissions += 1
        self.current = new_job_id
        return Poll(new_job_id)

    def stored(self, *, incomplete: str | None = None) -> Action:
        """The store step answered: the job is stored, or its answer was incomplete
        (``incomplete``: why), and it is fetched again after a wait, a bounded number of times."""
        self._open()
        if incomplete is None:
            self.finished = Done(self.current)
            return self.finished
        self.refetches += 1
        wait_s = self.limits.refetch.delay(self.refetches)
        if wait_s is None:
            why = f"{incomplete} (fetched {self.refetches} times)"
            return self._end(Ending.INCOMPLETE, why, "Completed")
        return Poll(self.current, wait_s=wait_s)

    def _end(self, ending: Ending, reason: str, last_status: str) -> End:
        self._open()
        self.finished = End(self.current, ending, _ENDING_STATE[ending], reason, last_status)
        return self.finished

    def _open(self) -> None:
        if self.finished is not None:
            raise RuntimeError(f"job {self.job_id} is settled already ({self.finished})")
        if self.resubmitting:
            raise RuntimeError(f"job {self.current} is being resubmitted: wait for its new id")


def _sent_just_now(facts: JobFacts) -> JobFacts:
    return JobFacts(known=facts.known, can_resubmit=facts.can_resubmit, submitted_at=None)
