"""The ledger: every job, its original image, every result; SQLAlchemy 2 (async).

SQLite by default (embedded, zero set-up), any SQLAlchemy async URL by setting
(``postgresql+asyncpg://…``). It is what makes reruns possible (resubmission needs the
original image, kept here by its SHA-256), what lets a crashed sweep resume (the next one picks
up unfinished jobs), and what stops duplicates: results are written once per job, in the same
transaction that marks the job stored, and a stored job is never fetched again.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    case,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ocrflow.completeness import JobRequest
from ocrflow.errors import OcrflowError
from ocrflow.ids import validate_job_id
from ocrflow.jobstate import JobState as JobState  # noqa: PLC0414 - re-exported for callers
from ocrflow.processing import ProcessedEntry
from ocrflow.redact import mask_credentials


class LedgerUnavailableError(OcrflowError):
    """The ledger cannot be opened (a bad URL, a database down or refusing us); the message
    shows its URL with the password masked."""


class _Base(DeclarativeBase):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


class ImageRow(_Base):
    """An original image, stored once by its SHA-256, for resubmissions."""

    __tablename__ = "ocrflow_images"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class JobRow(_Base):
    """A job of the service, as far as we know it."""

    __tablename__ = "ocrflow_jobs"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True, default=JobState.SUBMITTED.value)
    last_status: Mapped[str | None] = mapped_column(String(16))
    image_sha256: Mapped[str | None] = mapped_column(ForeignKey("ocrflow_images.sha256"))
    source: Mapped[str | None] = mapped_column(Text)
    regions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    image_bytes: Mapped[int | None] = mapped_column(Integer)
    processing_s: Mapped[float | None] = mapped_column(Float)  # estimated from the polls
    replaces: Mapped[str | None] = mapped_column(String(36), index=True)
    replaced_by: Mapped[str | None] = mapped_column(String(36))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set just before a resubmission is sent: if the run dies before the new job is recorded,
    # the next run sees it and does not send the image a second time.
    resubmitting_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A sweep's lease on an unfinished job: other sweeps skip it until it expires (its sweep
    # died) or is released.
    claimed_by: Mapped[str | None] = mapped_column(String(80), index=True)
    claim_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The fencing token: grows each time another claim takes the job. A write made under a
    # lease succeeds only with the current claim and epoch, checked in its own transaction,
    # so a sweep presumed dead (stalled, not dead) can no longer store or resubmit.
    lease_epoch: Mapped[int | None] = mapped_column(Integer)
    settled_by: Mapped[str | None] = mapped_column(String(80))  # the claim that ended it


class SubmissionState(StrEnum):
    """Where a submission stands: written before its POST, resolved right after it."""

    SENDING = "sending"  # written before the POST; a run that died leaves it so
    SENT = "sent"  # the service took it: ``job_id`` is in the jobs table
    REFUSED = "refused"  # the service answered with an error, or it was never sent: no job
    UNKNOWN = "unknown"  # may have reached the service, its job id never came back (see error)


class SubmissionRow(_Base):
    """One image's submission, written before its POST: a paid job is never unrecorded."""

    __tablename__ = "ocrflow_submissions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    image_sha256: Mapped[str] = mapped_column(ForeignKey("ocrflow_images.sha256"))
    source: Mapped[str | None] = mapped_column(Text)
    regions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    image_bytes: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(String(36))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now
    )


class ResultRow(_Base):
    """One processed entry of a job's results."""

    __tablename__ = "ocrflow_results"
    __table_args__ = (UniqueConstraint("job_id", "entry_index", name="uq_result_entry"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("ocrflow_jobs.job_id"), index=True)
    entry_index: Mapped[int] = mapped_column(Integer)
    region: Mapped[int | None] = mapped_column(Integer)
    region_name: Mapped[str | None] = mapped_column(String(200))
    wire_type: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    structured: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    file_path: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


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
        return self.expires_at <= (now or _now())


@dataclass(frozen=True, slots=True)
class ResultRecord(NewResult):
    """A stored result entry: what was stored, and the job it belongs to."""

    job_id: str


_IN_LIST_CHUNK = 500


def image_digest(data: bytes) -> str:
    """The SHA-256 by which an image is kept."""
    return hashlib.sha256(data).hexdigest()


class Ledger:
    """Async access to the ledger; open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer at a time: queue our own writes instead of meeting "locked".
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @classmethod
    async def open(cls, url: str) -> Ledger:
        """Connect to the ledger at ``url`` and create its tables if they are missing."""
        try:
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite" and parsed.database not in (
                None,
                "",
                ":memory:",
            ):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url, pool_pre_ping=True)
        except Exception as exc:  # the URL's own words may hold its password: masked, unchained
            raise LedgerUnavailableError(
                f"cannot open the ledger {mask_credentials(url)}: "
                f"{type(exc).__name__}: {mask_credentials(str(exc))}"
            ) from None
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_Base.metadata.create_all)
                await connection.run_sync(_add_missing_columns)
        except Exception as exc:
            await engine.dispose()
            raise LedgerUnavailableError(
                f"cannot open the ledger {mask_credentials(url)}: "
                f"{type(exc).__name__}: {mask_credentials(str(exc))}"
            ) from None
        return cls(engine)

    async def close(self) -> None:
        """Release the connections."""
        await self.engine.dispose()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        if self._write_lock is None:
            async with self._sessions.begin() as session:
                yield session
            return
        async with self._write_lock, self._sessions.begin() as session:
            yield session

    async def save_image(self, data: bytes) -> str:
        """Keep an image (once per content); returns its SHA-256."""
        digest = image_digest(data)
        row = {"sha256": digest, "data": data, "size_bytes": len(data), "created_at": _now()}
        # Insert-or-ignore in one statement: two writers saving the same new image at once
        # (check-then-insert raced into an IntegrityError on PostgreSQL) both succeed.
        insert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        async with self._write() as session:
            await session.execute(insert(ImageRow).values(**row).on_conflict_do_nothing())
        return digest

    async def begin_submission(
        self,
        data: bytes,
        *,
        source: str | None,
        regions: Sequence[dict[str, Any]],
        settings: dict[str, Any],
    ) -> str:
        """Keep the image and write the submission as ``sending``, before its POST; its id.

        One transaction: should the run die after the POST, the ledger still holds the image
        and what was being sent, and a sweep reports it.
        """
        digest = image_digest(data)
        submission_id = str(uuid.uuid4())
        insert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        image = {"sha256": digest, "data": data, "size_bytes": len(data), "created_at": _now()}
        async with self._write() as session:
            await session.execute(insert(ImageRow).values(**image).on_conflict_do_nothing())
            session.add(
                SubmissionRow(
                    id=submission_id,
                    state=SubmissionState.SENDING.value,
                    image_sha256=digest,
                    source=source,
                    regions=list(regions),
                    settings=settings,
                    image_bytes=len(data),
                )
            )
        return submission_id

    async def record_submitted(
        self, submission_id: str, job_id: str, *, submitted_at: datetime
    ) -> None:
        """In one transaction: the new job (from its submission) and the submission ``sent``.
        Idempotent: a retried call after a lost commit changes nothing more."""
        job_id = validate_job_id(job_id)
        async with self._write() as session:
            submission = await session.get(SubmissionRow, submission_id, with_for_update=True)
            if submission is None:
                raise LookupError(f"submission {submission_id} is not in the ledger")
            if await session.get(JobRow, job_id) is None:
                session.add(
                    JobRow(
                        job_id=job_id,
                        image_sha256=submission.image_sha256,
                        source=submission.source,
                        regions=list(submission.regions or []),
                        settings=dict(submission.settings or {}),
                        image_bytes=submission.image_bytes,
                        created_at=submitted_at,
                    )
                )
            submission.state = SubmissionState.SENT.value
            submission.job_id = job_id
            submission.error = None

    async def close_submission(
        self, submission_id: str, state: SubmissionState, error: str
    ) -> bool:
        """End a submission that has no job id: ``refused`` (no job was made) or ``unknown``
        (one may have been). Only a ``sending`` one changes; False otherwise."""
        if state not in (SubmissionState.REFUSED, SubmissionState.UNKNOWN):
            raise ValueError(f"close_submission() takes refused or unknown, not {state}")
        async with self._write() as session:
            changed = await session.execute(
                update(SubmissionRow)
                .where(SubmissionRow.id == submission_id)
                .where(SubmissionRow.state == SubmissionState.SENDING.value)
                .values(state=state.value, error=error[:2000], updated_at=_now())
            )
            return bool(changed.rowcount)  # type: ignore[attr-defined]

    async def submissions(
        self,
        states: Iterable[SubmissionState] | None = None,
        *,
        older_than: datetime | None = None,
    ) -> list[SubmissionRecord]:
        """Submissions in the given states (all when None), begun before ``older_than``."""
        query = select(SubmissionRow).order_by(SubmissionRow.created_at, SubmissionRow.id)
        if states is not None:
            query = query.where(SubmissionRow.state.in_([state.value for state in states]))
        if older_than is not None:
            query = query.where(SubmissionRow.created_at < older_than)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [
            SubmissionRecord(
                id=row.id,
                state=SubmissionState(row.state),
                image_sha256=row.image_sha256,
                source=row.source,
                job_id=row.job_id,
                error=row.error,
                created_at=_aware(row.created_at),
            )
            for row in rows
        ]

    async def load_image(self, digest: str) -> bytes | None:
        """The image kept under ``digest``, if any."""
        async with self._sessions() as session:
            row = await session.get(ImageRow, digest)
            return None if row is None else row.data

    async def record_job(
        self,
        job_id: str,
        *,
        image_sha256: str | None,
        source: str | None,
        regions: Sequence[dict[str, Any]],
        settings: dict[str, Any],
        replaces: str | None = None,
        attempt: int = 1,
        image_bytes: int | None = None,
        submitted_at: datetime | None = None,
    ) -> None:
        """Add a newly submitted job (nothing happens if it is already there).

        ``submitted_at``: when the request was sent (default: now); the job's age, which the
        learned polling goes by, counts from there.
        """
        job_id = validate_job_id(job_id)
        async with self._write() as session:
            if await session.get(JobRow, job_id) is not None:
                return
            session.add(
                JobRow(
                    job_id=job_id,
                    image_sha256=image_sha256,
                    source=source,
                    regions=list(regions),
                    settings=settings,
                    replaces=replaces,
                    attempt=attempt,
                    image_bytes=image_bytes,
                    created_at=submitted_at or _now(),
                )
            )

    async def get_job(self, job_id: str) -> JobRecord | None:
        """The job, or None when the ledger does not know it."""
        async with self._sessions() as session:
            row = await session.get(JobRow, validate_job_id(job_id))
            return None if row is None else _job_record(row)

    async def jobs(self, job_ids: Iterable[str] | None = None) -> list[JobRecord]:
        """Jobs by id (all when None), oldest first."""
        query = select(JobRow).order_by(JobRow.created_at, JobRow.job_id)
        async with self._sessions() as session:
            if job_ids is None:
                return [_job_record(row) for row in (await session.scalars(query)).all()]
            wanted = sorted({validate_job_id(j) for j in job_ids})
            rows: list[JobRow] = []
            for start in range(0, len(wanted), _IN_LIST_CHUNK):  # SQLite caps bound parameters
                chunk = wanted[start : start + _IN_LIST_CHUNK]
                rows += (await session.scalars(query.where(JobRow.job_id.in_(chunk)))).all()
        rows.sort(key=lambda row: (_aware(row.created_at), row.job_id))
        return [_job_record(row) for row in rows]

    async def unfinished_job_ids(self, limit: int | None = None) -> list[str]:
        """Ids of the jobs a sweep should fetch, oldest first."""
        query = (
            select(JobRow.job_id)
            .where(JobRow.state == JobState.SUBMITTED.value)
            .order_by(JobRow.created_at, JobRow.job_id)
            .limit(limit)
        )
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())

    async def claim_unfinished(
        self, claim: str, *, lease_s: float, limit: int | None = None
    ) -> list[str]:
        """Lease up to ``limit`` unfinished jobs, oldest first, to ``claim`` for ``lease_s``;
        their ids. Jobs another claim holds are skipped (``FOR UPDATE SKIP LOCKED`` on
        PostgreSQL, so concurrent sweeps never take the same job); a lease that expired (its
        sweep died) is taken over."""
        return await self._claim(claim, lease_s, None, limit)

    async def claim_jobs(
        self, claim: str, job_ids: Iterable[str], *, lease_s: float
    ) -> tuple[list[str], list[str]]:
        """Lease the given unfinished jobs to ``claim``, as :meth:`claim_unfinished` does;
        returns (the ids now held by ``claim``, the ids another live claim holds). Ids the
        ledger does not know are recorded first (with no request: only their answer is
        known), so that two runs given the same new id never both fetch it; ids it knows
        finished are in neither."""
        wanted = sorted({validate_job_id(job_id) for job_id in job_ids})
        await self._add_unknown(wanted)
        taken: list[str] = []
        for start in range(0, len(wanted), _IN_LIST_CHUNK):
            chunk = wanted[start : start + _IN_LIST_CHUNK]
            taken += await self._claim(claim, lease_s, chunk, None)
        held = set(taken)
        elsewhere: list[str] = []
        async with self._sessions() as session:
            for start in range(0, len(wanted), _IN_LIST_CHUNK):
                chunk = [j for j in wanted[start : start + _IN_LIST_CHUNK] if j not in held]
                unfinished = (
                    select(JobRow.job_id)
                    .where(JobRow.job_id.in_(chunk))
                    .where(JobRow.state == JobState.SUBMITTED.value)
                )
                elsewhere += (await session.scalars(unfinished)).all()
        return taken, sorted(elsewhere)

    async def _add_unknown(self, job_ids: list[str]) -> None:
        """Record ids the ledger does not know (given by hand), so they can be leased too."""
        insert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        for start in range(0, len(job_ids), _IN_LIST_CHUNK):
            rows = [
                {
                    "job_id": job_id,
                    "state": JobState.SUBMITTED.value,
                    "regions": [],
                    "settings": {},
                    "attempt": 1,
                    "polls": 0,
                    "created_at": _now(),
                    "updated_at": _now(),
                }
                for job_id in job_ids[start : start + _IN_LIST_CHUNK]
            ]
            if rows:
                async with self._write() as session:
                    await session.execute(insert(JobRow).values(rows).on_conflict_do_nothing())

    async def _claim(
        self, claim: str, lease_s: float, among: list[str] | None, limit: int | None
    ) -> list[str]:
        now = _now()
        is_free = (JobRow.state == JobState.SUBMITTED.value) & (
            JobRow.claim_expires_at.is_(None)
            | (JobRow.claim_expires_at < now)
            | (JobRow.claimed_by == claim)
        )
        free = select(JobRow.job_id).where(is_free)
        if among is not None:
            free = free.where(JobRow.job_id.in_(among))
        free = (
            free.order_by(JobRow.created_at, JobRow.job_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claimed: set[str] = set()
        async with self._write() as session:
            ids = list((await session.scalars(free)).all())
            for start in range(0, len(ids), _IN_LIST_CHUNK):
                taken = await session.scalars(
                    update(JobRow)
                    .where(JobRow.job_id.in_(ids[start : start + _IN_LIST_CHUNK]))
                    .where(is_free)  # checked again: SQLite has no row locks to skip
                    .values(
                        claimed_by=claim,
                        claim_expires_at=now + timedelta(seconds=lease_s),
                        # a new holder: a new fencing token; the same holder keeps its own
                        lease_epoch=case(
                            (JobRow.claimed_by == claim, func.coalesce(JobRow.lease_epoch, 0)),
                            else_=func.coalesce(JobRow.lease_epoch, 0) + 1,
                        ),
                    )
                    .returning(JobRow.job_id)
                )
                claimed.update(taken.all())
        return [job_id for job_id in ids if job_id in claimed]

    async def fence(self, claim: str) -> Fence:
        """The fencing tokens of every unfinished job ``claim`` holds now."""
        query = (
            select(JobRow.job_id, JobRow.lease_epoch)
            .where(JobRow.claimed_by == claim)
            .where(JobRow.state == JobState.SUBMITTED.value)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return Fence(claim, {job_id: int(epoch or 0) for job_id, epoch in rows})

    async def taken_over(self, fence: Fence) -> list[str]:
        """Jobs of ``fence`` another claim has taken since (unfinished ones)."""
        wanted = sorted(fence.epochs)
        lost: list[str] = []
        async with self._sessions() as session:
            for start in range(0, len(wanted), _IN_LIST_CHUNK):
                query = (
                    select(JobRow.job_id)
                    .where(JobRow.job_id.in_(wanted[start : start + _IN_LIST_CHUNK]))
                    .where(JobRow.state == JobState.SUBMITTED.value)
                    .where(JobRow.claimed_by.is_(None) | (JobRow.claimed_by != fence.claim))
                )
                lost += (await session.scalars(query)).all()
        return lost

    async def claimable_count(self) -> int:
        """How many unfinished jobs no live lease holds: what a sweep started now could take."""
        now = _now()
        query = (
            select(func.count())
            .select_from(JobRow)
            .where(JobRow.state == JobState.SUBMITTED.value)
            .where(JobRow.claim_expires_at.is_(None) | (JobRow.claim_expires_at < now))
        )
        async with self._sessions() as session:
            return int((await session.scalar(query)) or 0)

    async def leases(self) -> list[Lease]:
        """Every claim on unfinished jobs, live or expired, with its job count."""
        query = (
            select(JobRow.claimed_by, func.count(), func.min(JobRow.claim_expires_at))
            .where(JobRow.state == JobState.SUBMITTED.value)
            .where(JobRow.claimed_by.is_not(None))
            .group_by(JobRow.claimed_by)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        # A claim always has an expiry; should one lack it, it counts as expired.
        return [
            Lease(str(claim), int(jobs), _aware(expires) if expires else _now())
            for claim, jobs, expires in rows
        ]

    async def renew_claim(self, claim: str, *, lease_s: float) -> int:
        """Extend the lease of every unfinished job ``claim`` holds; how many it renewed.

        Rows another transaction has locked are skipped, not waited for: on PostgreSQL those
        are this sweep's own jobs being stored, which leave the lease as they do. Waiting on
        them held a renewal up for seconds under load (measured: 7 s with 500 jobs storing).
        """
        held = (
            select(JobRow.job_id)
            .where(JobRow.claimed_by == claim)
            .where(JobRow.state == JobState.SUBMITTED.value)
            .with_for_update(skip_locked=True)
        )
        async with self._write() as session:
            changed = await session.execute(
                update(JobRow)
                .where(JobRow.job_id.in_(held.scalar_subquery()))
                .values(claim_expires_at=_now() + timedelta(seconds=lease_s))
            )
            return int(changed.rowcount)  # type: ignore[attr-defined]

    async def release_claim(self, claim: str) -> None:
        """Give back every job ``claim`` holds (a sweep's end): the next sweep may take them."""
        async with self._write() as session:
            await session.execute(
                update(JobRow)
                .where(JobRow.claimed_by == claim)
                .values(claimed_by=None, claim_expires_at=None)
            )

    async def finish(
        self,
        job_id: str,
        state: JobState,
        *,
        last_status: str | None = None,
        error: str | None = None,
        polls: int = 0,
        replaced_by: str | None = None,
        fence: Fence | None = None,
    ) -> bool:
        """Move an unfinished job to a final state; False when it was already final (or, with
        ``fence``, when another run holds its lease now)."""
        if not state.is_final:
            raise ValueError(f"finish() takes a final state, not {state}")
        values: dict[str, Any] = {
            "state": state.value,
            "last_error": error,
            "polls": JobRow.polls + polls,
            "finished_at": _now(),
            "updated_at": _now(),
        }
        if last_status is not None:
            values["last_status"] = last_status
        if replaced_by is not None:
            values["replaced_by"] = validate_job_id(replaced_by)
        job_id = validate_job_id(job_id)
        query = update(JobRow).where(JobRow.job_id == job_id)
        if fence is not None:
            values["settled_by"] = fence.claim
            query = query.where(fence.condition(job_id))
        async with self._write() as session:
            changed = await session.execute(
                query.where(JobRow.state == JobState.SUBMITTED.value).values(**values)
            )
            return bool(changed.rowcount)  # type: ignore[attr-defined]

    async def begin_resubmission(self, job_id: str, fence: Fence | None = None) -> bool:
        """Mark an unfinished job as being resubmitted, before the image is sent again.

        False when it is not unfinished or another run has begun resubmitting it: then it must
        not be sent. The mark stays until :meth:`record_resubmission` or
        :meth:`abandon_resubmission`; a run that dies in between leaves it, on purpose.
        """
        job_id = validate_job_id(job_id)
        query = update(JobRow).where(JobRow.job_id == job_id)
        if fence is not None:  # a run that lost the lease must not send the image
            query = query.where(fence.condition(job_id))
        async with self._write() as session:
            changed = await session.execute(
                query.where(JobRow.state == JobState.SUBMITTED.value)
                .where(JobRow.resubmitting_since.is_(None))
                .values(resubmitting_since=_now(), updated_at=_now())
            )
            return bool(changed.rowcount)  # type: ignore[attr-defined]

    async def abandon_resubmission(self, job_id: str) -> None:
        """The resubmission surely did not reach the service: it may be tried again."""
        async with self._write() as session:
            await session.execute(
                update(JobRow)
                .where(JobRow.job_id == validate_job_id(job_id))
                .where(JobRow.state == JobState.SUBMITTED.value)
                .values(resubmitting_since=None, updated_at=_now())
            )

    async def record_resubmission(
        self,
        old_job_id: str,
        new_job_id: str,
        *,
        reason: str,
        polls: int,
        image_bytes: int,
        submitted_at: datetime | None = None,
    ) -> None:
        """In one transaction: the new job (linked to the old, same original) and the old one
        moved to ``resubmitted``."""
        old_job_id, new_job_id = validate_job_id(old_job_id), validate_job_id(new_job_id)
        async with self._write() as session:
            old = await session.get(JobRow, old_job_id)
            if old is None:
                raise LookupError(f"job {old_job_id} is not in the ledger")
            if await session.get(JobRow, new_job_id) is None:
                session.add(
                    JobRow(
                        job_id=new_job_id,
                        image_sha256=old.image_sha256,
                        source=old.source,
                        regions=list(old.regions or []),
                        settings=dict(old.settings or {}),
                        replaces=old_job_id,
                        attempt=old.attempt + 1,
                        image_bytes=image_bytes,
                        created_at=submitted_at or _now(),
                        # The sweep that resubmits polls the new job: it holds it as it held
                        # the old, so no other sweep takes it meanwhile.
                        claimed_by=old.claimed_by,
                        claim_expires_at=old.claim_expires_at,
                        lease_epoch=old.lease_epoch,
                    )
                )
            old.state = JobState.RESUBMITTED.value
            old.settled_by = old.claimed_by
            old.last_error = reason
            old.polls = old.polls + polls
            old.replaced_by = new_job_id
            old.finished_at = old.updated_at = _now()

    async def note_poll(
        self, job_id: str, *, last_status: str, polls: int, error: str | None
    ) -> None:
        """Remember what the latest polls of an unfinished job saw."""
        async with self._write() as session:
            await session.execute(
                update(JobRow)
                .where(JobRow.job_id == validate_job_id(job_id))
                .where(JobRow.state == JobState.SUBMITTED.value)
                .values(
                    last_status=last_status,
                    polls=JobRow.polls + polls,
                    last_error=error,
                    updated_at=_now(),
                )
            )

    async def note_error(self, job_id: str, error: str, *, polls: int = 0) -> None:
        """Keep why an unfinished job could not be settled; it stays unfinished."""
        async with self._write() as session:
            await session.execute(
                update(JobRow)
                .where(JobRow.job_id == validate_job_id(job_id))
                .where(JobRow.state == JobState.SUBMITTED.value)
                .values(last_error=error[:2000], polls=JobRow.polls + polls, updated_at=_now())
            )

    async def store_results(
        self,
        job_id: str,
        results: Sequence[NewResult],
        *,
        polls: int = 0,
        processing_s: float | None = None,
    ) -> bool:
        """Write a completed job's results and mark it stored, in one transaction.

        Returns False, writing nothing, when the job was already stored: a job is written once.
        A job the ledger does not know yet (an id given by hand) is added first.
        """
        written = await self.store_many([JobResults(job_id, list(results), polls, processing_s)])
        return written[validate_job_id(job_id)] is Written.NOW

    async def store_many(
        self, jobs: Sequence[JobResults], fence: Fence | None = None
    ) -> dict[str, Written]:
        """:meth:`store_results` for many jobs in one transaction (all or none): job id →
        what was done. With ``fence``, a job another run holds now is not written (checked in
        this transaction, on the locked row)."""
        written: dict[str, Written] = {}
        async with self._write() as session:
            for job in jobs:
                job_id = validate_job_id(job.job_id)
                row = await session.get(JobRow, job_id, with_for_update=True)
                if row is None:
                    row = JobRow(job_id=job_id, regions=[], settings={})
                    session.add(row)
                    await session.flush()
                if row.state == JobState.STORED.value or job_id in written:
                    written.setdefault(job_id, Written.BEFORE)
                    continue
                if fence is not None and not fence.holds(row):
                    written[job_id] = Written.FENCED
                    continue
                row.settled_by = fence.claim if fence is not None else None
                row.state = JobState.STORED.value
                row.last_status = "Completed"
                row.polls = (row.polls or 0) + job.polls
                row.processing_s = job.processing_s
                row.last_error = None
                row.finished_at = _now()
                session.add_all(ResultRow(job_id=job_id, **asdict(r)) for r in job.results)
                written[job_id] = Written.NOW
        return written

    async def processing_times(self, limit: int = 2000) -> list[tuple[int | None, int, float]]:
        """Recent estimated processing times, with each job's image size and region count."""
        query = (
            select(JobRow.image_bytes, JobRow.regions, JobRow.processing_s)
            .where(JobRow.processing_s.is_not(None))
            .order_by(JobRow.finished_at.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [(size, len(regions or []), float(seconds)) for size, regions, seconds in rows]

    async def results(self, job_ids: Iterable[str] | None = None) -> list[ResultRecord]:
        """Stored results, by job and entry; all of them when ``job_ids`` is None."""
        query = select(ResultRow).order_by(ResultRow.job_id, ResultRow.entry_index)
        if job_ids is not None:
            query = query.where(ResultRow.job_id.in_([validate_job_id(j) for j in job_ids]))
        async with self._sessions() as session:
            return [_result_record(row) for row in (await session.scalars(query)).all()]

    async def count_results(self, job_id: str) -> int:
        """How many result rows a job has."""
        query = select(func.count()).select_from(ResultRow).where(ResultRow.job_id == job_id)
        async with self._sessions() as session:
            return int((await session.execute(query)).scalar_one())


def _add_missing_columns(connection: Any) -> None:
    """Additive schema upgrades: a column a newer ocrflow added is added (nullable) to an older
    ledger, so that upgrading loses nothing. Columns are never dropped or changed here."""
    inspector = inspect(connection)
    for table in _Base.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and column.nullable:
                kind = column.type.compile(dialect=connection.dialect)
                connection.execute(
                    text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')
                )


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; the busy timeout rides out short locks.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _job_record(row: JobRow) -> JobRecord:
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
        created_at=_aware(row.created_at),
        finished_at=None if row.finished_at is None else _aware(row.finished_at),
        image_bytes=row.image_bytes,
        processing_s=row.processing_s,
        resubmitting_since=(
            None if row.resubmitting_since is None else _aware(row.resubmitting_since)
        ),
        settled_by=row.settled_by,
    )


def _aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they were written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _result_record(row: ResultRow) -> ResultRecord:
    values = {f.name: getattr(row, f.name) for f in fields(ResultRecord)}
    return ResultRecord(**{**values, "warnings": list(row.warnings or [])})
