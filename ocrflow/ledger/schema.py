"""The ledger's tables (SQLAlchemy 2 ORM) and their upgrades: new columns, new indexes, pragmas."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ocrflow.jobstate import JobState


class Base(DeclarativeBase):
    pass


def utc_now() -> datetime:
    return datetime.now(UTC)


class ImageRow(Base):
    """An original image, stored once by its SHA-256, for resubmissions."""

    __tablename__ = "ocrflow_images"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class JobRow(Base):
    """A job of the service, as far as we know it."""

    __tablename__ = "ocrflow_jobs"
    __table_args__ = (
        # A sweep's hot reads: the unfinished jobs by age (claims), the latest processing
        # times (the learned polling's history). Plans in docs/performance.md.
        Index("ix_ocrflow_jobs_state_age", "state", "created_at", "job_id"),
        Index(
            "ix_ocrflow_jobs_processing_times",
            "finished_at",
            postgresql_where=text("processing_s IS NOT NULL"),
            sqlite_where=text("processing_s IS NOT NULL"),
        ),
    )

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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now, onupdate=utc_now
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


class SubmissionRow(Base):
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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now, onupdate=utc_now
    )


class ResultRow(Base):
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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


def add_missing_columns(connection: Any) -> None:
    """Additive schema upgrades: a column a newer ocrflow added is added (nullable) to an older
    ledger, so that upgrading loses nothing. Columns are never dropped or changed here."""
    inspector = inspect(connection)
    for table in Base.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and column.nullable:
                kind = column.type.compile(dialect=connection.dialect)
                connection.execute(
                    text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')
                )


def add_missing_indexes(connection: Any) -> None:
    """Indexes a newer ocrflow added, created on an older ledger's existing tables (which
    ``create_all`` leaves as they are)."""
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            index.create(connection, checkfirst=True)


def sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; the busy timeout rides out short locks.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
