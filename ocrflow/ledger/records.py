"""What the ledger hands out and takes in: job, submission and result records, leases, fences."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func

from ocrflow.adaptive import job_class
from ocrflow.completeness import JobRequest
from ocrflow.jobstate import JobState
from ocrflow.ledger.schema import JobRow, ResultRow, SubmissionState, utc_now
from ocrflow.processing import ProcessedEntry


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as read from the ledger."""

    job_id: str
    state: JobState
    last_status: str | None
    image_sha256: str | None
    source: str | None
    regions: list[Any]
    settings: dict[str, Any]
    attempt: int
    polls: int
    replaces: str | None
    replaced_by: str | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    image_bytes: int | None = None
    processing_s: float | None = None
    resubmitting_since: datetime | None = None
    settled_by: str | None = None  # the claim (run) that ended the job, when it held a lease

    @property
    def resubmission_interrupted(self) -> bool:
        """A resubmission was begun and never recorded: it may have reached the service."""
        return self.state is JobState.SUBMITTED and self.resubmitting_since is not None

    @property
    def given_by_id(self) -> bool:
        """Recorded only because its id was given to a fetch: ocrflow never submitted it, so
        neither its request nor its image is known (nor when it was sent)."""
        return not self.settings and self.image_sha256 is None

    @property
    def learning_class(self) -> str | None:
        """Its class for the learned polling (image size and region count,
        ``adaptive.job_class``); None for an id given by hand, whose class is unknown."""
        if self.given_by_id:
            return None
        return job_class(self.image_bytes or 0, len(self.regions))

    @property
    def request(self) -> JobRequest:
        """What the job asked for: what a complete answer carries."""
        return JobRequest.from_ledger(self.regions, self.settings)

    @property
    def can_resubmit(self) -> bool:
        """True when the original image is kept, so a new job can be sent."""
        return self.image_sha256 is not None


@dataclass(frozen=True, slots=True)
class SubmissionRecord:
    """A submission as read from the ledger."""

    id: str
    state: SubmissionState
    image_sha256: str
    source: str | None
    job_id: str | None
    error: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class JobResults:
    """A completed job's entries to store, with its poll count and estimated processing time."""

    job_id: str
    results: list[NewResult]
    polls: int = 0
    processing_s: float | None = None


@dataclass(frozen=True, slots=True)
class NewResult:
    """A result entry to store."""

    entry_index: int
    region: int | None
    region_name: str | None
    wire_type: str | None
    kind: str
    text: str | None
    structured: dict[str, Any] | None
    file_path: str | None
    error: str | None
    warnings: list[str]

    @classmethod
    def from_entry(
        cls, entry: ProcessedEntry, *, region_name: str | None, file_path: str | None
    ) -> NewResult:
        """The row to store for a processed entry."""
        return cls(
            entry_index=entry.index,
            region=entry.region,
            region_name=region_name,
            wire_type=entry.wire_type,
            kind=entry.kind.value,
            text=entry.text,
            structured=entry.structured(),
            file_path=file_path,
            error=entry.error,
            warnings=list(entry.warnings),
        )


@dataclass(slots=True)
class Fence:
    """A run's fencing tokens: its claim, and the lease epoch of each job it holds."""

    claim: str
    epochs: dict[str, int]

    def holds(self, row: JobRow) -> bool:
        """True when the row is still this run's, at the epoch it was leased at."""
        epoch = self.epochs.get(row.job_id)
        return (
            row.claimed_by == self.claim and epoch is not None and (row.lease_epoch or 0) == epoch
        )

    def condition(self, job_id: str) -> Any:
        """The same check as a SQL condition, for conditional updates."""
        return (JobRow.claimed_by == self.claim) & (
            func.coalesce(JobRow.lease_epoch, 0) == self.epochs.get(job_id, -1)
        )


class Written(StrEnum):
    """What a store did for one job."""

    NOW = "now"  # written in this call
    BEFORE = "before"  # stored before: nothing written again
    FENCED = "fenced"  # another run holds the job's lease now: nothing written


@dataclass(frozen=True, slots=True)
class Lease:
    """The unfinished jobs one sweep holds, and when its lease on them runs out."""

    claim: str
    jobs: int
    expires_at: datetime

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or utc_now())


@dataclass(frozen=True, slots=True)
class ResultRecord(NewResult):
    """A stored result entry: what was stored, and the job it belongs to."""

    job_id: str


IN_LIST_CHUNK = 500


def in_chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    """``ids`` an IN list at a time: SQLite caps the parameters bound to one statement."""
    for start in range(0, len(ids), IN_LIST_CHUNK):
        yield ids[start : start + IN_LIST_CHUNK]


def image_digest(data: bytes) -> str:
    """The SHA-256 by which an image is kept."""
    return hashlib.sha256(data).hexdigest()


def job_record(row: JobRow) -> JobRecord:
    return JobRecord(
        job_id=row.job_id,
        state=JobState(row.state),
        last_status=row.last_status,
        image_sha256=row.image_sha256,
        source=row.source,
        regions=list(row.regions or []),
        settings=dict(row.settings or {}),
        attempt=row.attempt,
        polls=row.polls,
        replaces=row.replaces,
        replaced_by=row.replaced_by,
        last_error=row.last_error,
        created_at=aware(row.created_at),
        finished_at=None if row.finished_at is None else aware(row.finished_at),
        image_bytes=row.image_bytes,
        processing_s=row.processing_s,
        resubmitting_since=(
            None if row.resubmitting_since is None else aware(row.resubmitting_since)
        ),
        settled_by=row.settled_by,
    )


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they were written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def result_record(row: ResultRow) -> ResultRecord:
    values = {f.name: getattr(row, f.name) for f in fields(ResultRecord)}
    return ResultRecord(**{**values, "warnings": list(row.warnings or [])})
