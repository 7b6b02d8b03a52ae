"""What a run reports: one line per job, the counts, the artifacts and the events."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from enum import StrEnum

from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.events import emit_event
from pydantic import BaseModel, Field

NOTHING_TO_DO = "Nothing to do"  # the state name of a run that found no job to settle


class Outcome(StrEnum):
    """How a job ended in this run."""

    STORED = "stored"  # results written now
    ALREADY_DONE = "already_done"  # final in the ledger before this run: not fetched again
    ELSEWHERE = "elsewhere"  # another live run holds its lease: settled there, not twice
    FAILED = "failed"  # Error or NotExist, and no (more) resubmission possible
    TIMED_OUT = "timed_out"  # still unfinished at the polling deadline
    INCOMPLETE = "incomplete"  # Completed, but its answer stayed incomplete: nothing stored
    EXPIRED = "expired"  # past the 24 h retention, and not resubmitted
    UNRECORDED = "unrecorded"  # a submission cut off before its job id was recorded
    ERROR = "error"  # this run could not settle it (auth, service down…): left for the next
    INVALID = "invalid"  # not a job id

    @property
    def is_failure(self) -> bool:
        """Failures make the run end Failed."""
        return self not in (Outcome.STORED, Outcome.ALREADY_DONE, Outcome.ELSEWHERE)


class JobReport(BaseModel):
    """One job's line in the run's report."""

    job_id: str
    outcome: Outcome
    image: str | None = None  # the file it was submitted from, when ocrflow submitted it
    text: str = ""  # its results in one short line, once stored
    final_job_id: str | None = None
    known: bool = True
    resubmissions: int = 0
    entries: int = 0
    failed_entries: int = 0
    expired: bool = False  # the job was past the 24 h retention (resubmitted or not)
    message: str = ""


class FetchSummary(BaseModel):
    """A fetch run's result: every job's line and the counts."""

    reports: list[JobReport] = Field(default_factory=list)
    held_elsewhere: str | None = None  # a sweep: unfinished jobs other live runs hold

    @property
    def counts(self) -> dict[str, int]:
        """Jobs per outcome."""
        return dict(Counter(report.outcome.value for report in self.reports))

    @property
    def failures(self) -> list[JobReport]:
        """The jobs that failed for good (or could not be settled) in this run."""
        return [report for report in self.reports if report.outcome.is_failure]

    def headline(self) -> str:
        """One line: how many jobs, and how they ended."""
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.counts.items()))
        failed = len(self.failures)
        lead = (
            f"{failed} of {len(self.reports)} jobs failed"
            if failed
            else f"{len(self.reports)} jobs"
        )
        if not self.reports:
            held = f"; {self.held_elsewhere}" if self.held_elsewhere else ""
            return f"no job to settle{held}"
        expired = sum(1 for report in self.reports if report.expired)
        tail = f"; {expired} expired after 24 h" if expired else ""
        if self.held_elsewhere:
            tail += f"; {self.held_elsewhere}"
        return f"{lead} ({counts or 'none'}){tail}"


# The CLI listens here for a progress bar; flows call it once per settled job.
PROGRESS_LISTENER: ContextVar[Callable[[JobReport], None] | None] = ContextVar(
    "ocrflow_progress", default=None
)


class Progress:
    """The run's progress artifact, kept up to date in the background.

    A busy server can take a second or more to write an artifact; the jobs never wait for it.
    Updates go in steps of about 2% (each is an API call), one at a time, and only the latest
    percentage is sent when several steps pass while one is under way.
    """

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.done = 0
        self._sent = 0.0
        self._artifact: asyncio.Task[object] | None = None
        self._pushing: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Create the progress artifact at 0%, without waiting for the server."""
        self._artifact = asyncio.create_task(
            acreate_progress_artifact(
                progress=0.0, key="ocrflow-fetch-progress", description="jobs settled"
            )
        )

    def advance(self, report: JobReport) -> None:
        """One more job settled."""
        self.done += 1
        listener = PROGRESS_LISTENER.get()
        if listener is not None:
            listener(report)
        idle = self._pushing is None or self._pushing.done()
        step = self.percent - self._sent >= 2 or self.done == self.total
        if self._artifact is not None and idle and step:
            self._pushing = asyncio.create_task(self._push())

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total

    async def close(self, timeout_s: float = 30.0) -> None:
        """Send the last percentage and wait (bounded) for what is under way."""
        if self._artifact is None:
            return
        try:
            async with asyncio.timeout(timeout_s):
                if self._pushing is not None:
                    await self._pushing
                if self._sent < self.percent:
                    await self._push()
        except Exception as exc:  # progress is a courtesy: a run never fails for it
            logging.getLogger(__name__).warning("progress artifact not updated: %s", exc)

    async def _push(self) -> None:
        assert self._artifact is not None  # noqa: S101 - start() came first
        artifact_id = await self._artifact
        while self._sent < self.percent:
            percent = self.percent
            await aupdate_progress_artifact(artifact_id=artifact_id, progress=percent)  # type: ignore[arg-type]
            self._sent = percent


def emit_job_event(report: JobReport) -> None:
    """One event for one job's outcome, e.g. ``ocrflow.job.failed``, the job as its resource."""
    emit_event(
        event=f"ocrflow.job.{report.outcome.value}",
        resource=job_resource(report.job_id),
        payload=job_payload(report),
    )


def job_resource(job_id: str, role: str | None = None) -> dict[str, str]:
    resource = {"prefect.resource.id": f"ocrflow.job.{job_id}", "prefect.resource.name": job_id}
    return resource if role is None else {**resource, "prefect.resource.role": role}


def job_payload(report: JobReport) -> dict[str, object]:
    return {
        "final_job_id": report.final_job_id,
        "resubmissions": report.resubmissions,
        "entries": report.entries,
        "failed_entries": report.failed_entries,
        "message": report.message[:500],
    }


# Jobs named in one ``ocrflow.jobs.*`` event. Prefect caps an event's related resources at 100
# and the run's context adds its own (flow run, flow, deployment, work pool, tags…).
JOBS_PER_EVENT = 50


class JobEvents:
    """The run's events about its jobs: one per job that needs attention (``ocrflow.job.failed``,
    ``.expired``, ``.error``…), and one per 50 jobs that ended well (``ocrflow.jobs.stored``,
    ``.already_done``, ``.elsewhere``) naming each job as a related resource in role ``job``.
    Measured at 100,000 jobs: an event per job was four fifths of what the server had to take
    in, and it recorded the run's task runs minutes late (docs/performance.md)."""

    def __init__(self, per_event: int = JOBS_PER_EVENT):
        self.per_event = per_event
        self.waiting: dict[Outcome, list[JobReport]] = {}

    def add(self, report: JobReport) -> None:
        if report.outcome.is_failure:
            emit_job_event(report)
            return
        waiting = self.waiting.setdefault(report.outcome, [])
        waiting.append(report)
        if len(waiting) >= self.per_event:
            self._emit(report.outcome, waiting)
            waiting.clear()

    def flush(self) -> None:
        """Send the jobs still waiting (at the end of the run, however it ends)."""
        for outcome, waiting in self.waiting.items():
            if waiting:
                self._emit(outcome, waiting)
        self.waiting.clear()

    def _emit(self, outcome: Outcome, reports: list[JobReport]) -> None:
        first = reports[0].job_id
        emit_event(
            event=f"ocrflow.jobs.{outcome.value}",
            resource={
                # An id of its own, after its first job; the jobs are its related resources.
                "prefect.resource.id": f"ocrflow.jobs.{first}",
                "prefect.resource.name": f"{len(reports)} jobs {outcome.value}",
            },
            related=[job_resource(report.job_id, role="job") for report in reports],
            payload={
                "jobs": [{"job_id": report.job_id, **job_payload(report)} for report in reports]
            },
        )


SHOWN_JOBS = 200  # a run's markdown lists this many jobs of a kind
# The table artifact's rows at most: past this (a sweep of a large backlog) a table is no longer
# read in the UI, and serialising it cost the run's process more memory than all its settling.
# The failures come first; the ledger keeps every job (`ocrflow jobs`).
TABLE_ROWS = 10_000


def outcome_rows(summary: FetchSummary, limit: int = TABLE_ROWS) -> list[dict[str, object]]:
    """The table artifact's rows: what a person looks for first (the image, how it ended, what
    was read) on the left. Up to ``limit``, the failed jobs first when not all fit."""
    reports = summary.reports
    if len(reports) > limit:
        failed = summary.failures
        reports = [*failed, *(r for r in reports if not r.outcome.is_failure)][:limit]
    return [
        {
            "image": report.image or "",
            "outcome": report.outcome.value,
            "text": report.text,
            "reason": "" if report.outcome is Outcome.STORED else report.message,
            "job": report.job_id,
            "final job": report.final_job_id or "",
            "entries": report.entries,
            "resubmissions": report.resubmissions,
        }
        for report in reports
    ]


def summary_markdown(summary: FetchSummary) -> str:
    """The run's markdown artifact: the counts, the failed jobs with their reasons, and the
    stored jobs with what was read."""
    lines = [f"# OCR fetch: {summary.headline()}", "", "| outcome | jobs |", "| --- | --- |"]
    lines += [f"| {outcome} | {n} |" for outcome, n in sorted(summary.counts.items())]
    if summary.failures:
        lines += ["", "## Failed jobs", "", "| image | job | outcome | reason |"]
        lines += ["| --- | --- | --- | --- |"]
        lines += [
            f"| {_cell(r.image or '')} | `{r.job_id}` | {r.outcome.value} | "
            f"{_cell(r.message)[:300]} |"
            for r in summary.failures[:SHOWN_JOBS]
        ]
    stored = [r for r in summary.reports if r.outcome is Outcome.STORED]
    if stored:
        lines += ["", "## Stored", "", "| image | job | read |", "| --- | --- | --- |"]
        lines += [
            f"| {_cell(r.image or '')} | `{r.job_id}` | {_cell(r.text)} |"
            for r in stored[:SHOWN_JOBS]
        ]
        if len(stored) > SHOWN_JOBS:
            where = (
                "the table artifact has all"
                if len(summary.reports) <= TABLE_ROWS
                else f"the table artifact has {TABLE_ROWS:,} jobs; `ocrflow jobs` lists every one"
            )
            lines += ["", f"… and {len(stored) - SHOWN_JOBS} more ({where})"]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (no column break, no markup read)."""
    return text.replace("|", "/").replace("`", "'").replace("<", "&lt;").replace("\n", " ")


async def publish_fetch_artifacts(summary: FetchSummary) -> None:
    """The table of every job's outcome and a markdown summary (sent side by side: the run
    ends a round trip sooner)."""
    await asyncio.gather(
        acreate_table_artifact(
            key="ocrflow-fetch-outcomes",
            table=outcome_rows(summary),
            description=(
                "Every job of the run: its image, how it ended, what was read"
                if len(summary.reports) <= TABLE_ROWS
                else f"{TABLE_ROWS:,} of the run's {len(summary.reports):,} jobs, the failed "
                "ones first (`ocrflow jobs` lists every one)"
            ),
        ),
        acreate_markdown_artifact(key="ocrflow-fetch-summary", markdown=summary_markdown(summary)),
    )
