"""The ledger: every job, its original image, every result; SQLAlchemy 2 (async).

SQLite by default (embedded, zero set-up), any SQLAlchemy async URL by setting
(``postgresql+asyncpg://…``). It is what makes reruns possible (resubmission needs the
original image, kept here by its SHA-256), what lets a crashed sweep resume (the next one picks
up unfinished jobs), and what stops duplicates: results are written once per job, in the same
transaction that marks the job stored, and a stored job is never fetched again.

``schema`` (tables, upgrades), ``records`` (what goes in and out), ``base`` (opening it),
``submissions``, ``claims`` (leases and fencing) and ``jobs`` (states and results); open one
with ``async with Ledger.connect(url) as ledger`` (or ``await Ledger.open(url)`` … ``close()``).
"""

from __future__ import annotations

from ocrflow.jobstate import JobState
from ocrflow.ledger.base import LedgerUnavailableError
from ocrflow.ledger.claims import ClaimsMixin
from ocrflow.ledger.jobs import JobsMixin
from ocrflow.ledger.records import (
    Fence,
    JobRecord,
    JobResults,
    Lease,
    NewResult,
    ResultRecord,
    SubmissionRecord,
    Written,
    image_digest,
)
from ocrflow.ledger.schema import SubmissionState
from ocrflow.ledger.submissions import SubmissionsMixin

__all__ = [
    "Fence",
    "JobRecord",
    "JobResults",
    "JobState",
    "Lease",
    "Ledger",
    "LedgerUnavailableError",
    "NewResult",
    "ResultRecord",
    "SubmissionRecord",
    "SubmissionState",
    "Written",
    "image_digest",
]


class Ledger(JobsMixin, ClaimsMixin, SubmissionsMixin):
    """Async access to the ledger: jobs, claims and submissions over one connection pool."""
