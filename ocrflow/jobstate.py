"""Where a job stands in the ledger: its states (light to import: the command line's options
list them)."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Where a job stands in the ledger."""

    SUBMITTED = "submitted"  # the service has it; not finished yet
    STORED = "stored"  # completed, results written: never fetched again
    RESUBMITTED = "resubmitted"  # ended NotExist or Error; ``replaced_by`` carries on
    FAILED = "failed"  # ended NotExist or Error for good
    TIMED_OUT = "timed_out"  # never finished before the polling deadline
    INCOMPLETE = "incomplete"  # Completed, but its answer stayed incomplete: nothing stored
    EXPIRED = "expired"  # NotExist past the 24 h retention, and not resubmitted

    @property
    def is_final(self) -> bool:
        """A final job is not fetched by a sweep."""
        return self is not JobState.SUBMITTED
