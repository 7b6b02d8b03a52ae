"""Jobs and results: recorded, finished, resubmitted, stored once, read back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ocrflow.ids import validate_job_id
from ocrflow.jobstate import JobState
from ocrflow.ledger.base import LedgerBase
from ocrflow.ledger.claims import nearest_expiry_first
from ocrflow.ledger.records import (
    Fence,
    JobRecord,
    JobResults,
    NewResult,
    ResultRecord,
    Written,
    aware,
    in_chunks,
    job_record,
    result_record,
)
from ocrflow.ledger.schema import JobRow, ResultRow


class JobsMixin(LedgerBase):
    """Jobs and results: recorded, finished, resubmitted, stored once, read back."""

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
                    created_at=submitted_at or self.clock.now(),
                )
            )

    async def get_job(self, job_id: str) -> JobRecord | None:
        """The job, or None when the ledger does not know it."""
        async with self._sessions() as session:
            row = await session.get(JobRow, validate_job_id(job_id))
            return None if row is None else job_record(row)

    async def jobs(self, job_ids: Iterable[str] | None = None) -> list[JobRecord]:
        """Jobs by id (all when None), oldest first."""
        query = select(JobRow).order_by(JobRow.created_at, JobRow.job_id)
        async with self._sessions() as session:
            if job_ids is None:
                return [job_record(row) for row in (await session.scalars(query)).all()]
            wanted = sorted({validate_job_id(j) for j in job_ids})
            rows: list[JobRow] = []
            for chunk in in_chunks(wanted):
                rows += (await session.scalars(query.where(JobRow.job_id.in_(chunk)))).all()
        rows.sort(key=lambda row: (aware(row.created_at), row.job_id))
        return [job_record(row) for row in rows]

    async def unfinished_job_ids(self, limit: int | None = None) -> list[str]:
        """Ids of the jobs a sweep should fetch, in the order it settles them (nearest the
        service's 24 h expiry first, the expired ones last)."""
        query = select(JobRow.job_id).where(JobRow.state == JobState.SUBMITTED.value)
        async with self._sessions() as session:
            return await nearest_expiry_first(session, query, self.clock.now(), limit)

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
            "finished_at": self.clock.now(),
            "updated_at": self.clock.now(),
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
                .values(resubmitting_since=self.clock.now(), updated_at=self.clock.now())
            )
            return bool(changed.rowcount)  # type: ignore[attr-defined]

    async def abandon_resubmission(self, job_id: str) -> None:
        """The resubmission surely did not reach the service: it may be tried again."""
        async with self._write() as session:
            await session.execute(
                update(JobRow)
                .where(JobRow.job_id == validate_job_id(job_id))
                .where(JobRow.state == JobState.SUBMITTED.value)
                .values(resubmitting_since=None, updated_at=self.clock.now())
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
                        created_at=submitted_at or self.clock.now(),
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
            old.finished_at = old.updated_at = self.clock.now()

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
                    updated_at=self.clock.now(),
                )
            )

    async def note_error(self, job_id: str, error: str, *, polls: int = 0) -> None:
        """Keep why an unfinished job could not be settled; it stays unfinished."""
        async with self._write() as session:
            await session.execute(
                update(JobRow)
                .where(JobRow.job_id == validate_job_id(job_id))
                .where(JobRow.state == JobState.SUBMITTED.value)
                .values(
                    last_error=error[:2000], polls=JobRow.polls + polls, updated_at=self.clock.now()
                )
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
            rows = await self._locked_rows(session, {validate_job_id(j.job_id) for j in jobs})
            for job in jobs:
                job_id = validate_job_id(job.job_id)
                row = rows.get(job_id)
                if row is None:
                    row = rows[job_id] = JobRow(job_id=job_id, regions=[], settings={})
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
                row.finished_at = self.clock.now()
                session.add_all(ResultRow(job_id=job_id, **asdict(r)) for r in job.results)
                written[job_id] = Written.NOW
        return written

    @staticmethod
    async def _locked_rows(session: AsyncSession, job_ids: set[str]) -> dict[str, JobRow]:
        """The rows of ``job_ids`` the ledger has, locked for this transaction: one read for a
        batch (a row at a time was a round trip per job), in id order, so that two stores of
        overlapping batches never wait on each other in a circle."""
        rows: dict[str, JobRow] = {}
        for chunk in in_chunks(sorted(job_ids)):
            query = (
                select(JobRow)
                .where(JobRow.job_id.in_(chunk))
                .order_by(JobRow.job_id)
                .with_for_update()
            )
            rows.update((row.job_id, row) for row in (await session.scalars(query)).all())
        return rows

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
            return [result_record(row) for row in (await session.scalars(query)).all()]

    async def count_results(self, job_id: str) -> int:
        """How many result rows a job has."""
        query = select(func.count()).select_from(ResultRow).where(ResultRow.job_id == job_id)
        async with self._sessions() as session:
            return int((await session.execute(query)).scalar_one())
