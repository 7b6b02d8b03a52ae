"""Whether a Completed answer holds everything its job asked for, before anything is stored.

A job asks for regions and a result type; a complete answer carries, for each region, one
entry of each format the type names (``TextAndPdf`` with 5 regions: 5 Text and 5 Pdf entries,
interleaved or grouped), and every entry decodes and parses. Anything less — ``results``
null, empty or missing, fewer entries (a proxy that truncates), more than can be placed, an
entry that does not decode — is incomplete: the answer is fetched again a bounded number of
times (the service keeps results for 24 h, and one more GET may bring them whole), then the
job ends ``incomplete`` with the reason, never ``stored``.

The layout of combined types is undocumented (contract §6, §10.3); the one layout accepted is
the documented "one entry per region" for each format, and anything less is incomplete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ocrflow.models import RecognizeRegionsSettings, ResultType
from ocrflow.processing import ProcessedEntry, ResultKind

_MAX_PROBLEMS_SHOWN = 6


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What a job asked the service for: how many regions, and in which result type.

    ``None`` for either when the ledger does not know the job (an id given by hand): then
    only "at least one entry, every entry readable" can be checked.
    """

    region_count: int | None
    result_type: ResultType | None

    @classmethod
    def from_ledger(cls, regions: Sequence[Any] | None, settings: Mapping[str, Any]) -> JobRequest:
        """The request a ledger record describes (wire settings as they were sent).

        A record with no settings was not submitted through ocrflow (an id given by hand):
        its request is unknown.
        """
        if not settings:
            return cls.unknown()
        try:
            result_type = RecognizeRegionsSettings.model_validate(dict(settings)).result_type
        except ValidationError:
            result_type = None  # an unreadable record: check only what needs no request
        # A job sent without regions reads the whole page: one "region".
        return cls(max(len(regions or []), 1), result_type)

    @classmethod
    def unknown(cls) -> JobRequest:
        """A job the ledger does not know."""
        return cls(None, None)

    def expected(self) -> dict[str, int] | None:
        """Entries a complete answer carries, per format name (``{"Text": 5, "Pdf": 5}``)."""
        if self.region_count is None or self.result_type is None:
            return None
        return dict.fromkeys(self.result_type.formats, self.region_count)


@dataclass(frozen=True, slots=True)
class Completeness:
    """The verdict on one answer: complete, or the problems found (one line each)."""

    problems: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """True when every expected entry is there and readable."""
        return not self.problems

    def reason(self) -> str:
        """The problems as one line, for the ledger, the report and the alert."""
        shown = list(self.problems[:_MAX_PROBLEMS_SHOWN])
        if len(self.problems) > _MAX_PROBLEMS_SHOWN:
            shown.append(f"and {len(self.problems) - _MAX_PROBLEMS_SHOWN} more")
        return "incomplete answer: " + "; ".join(shown)


def assess(
    entries: Sequence[ProcessedEntry],
    request: JobRequest,
    region_names: Sequence[str | None] = (),
) -> Completeness:
    """Check a processed answer against its request; pure, no I/O."""
    problems: list[str] = []
    expected = request.expected()
    if expected is None:
        if not entries:
            problems.append("the answer holds no results")
    else:
        have = Counter(format_key(entry.wire_type) for entry in entries)
        for name, count in expected.items():
            found = have[format_key(name)]
            if found < count:
                problems.append(
                    f"{found} {name} entr{'y' if found == 1 else 'ies'} for {count} region(s)"
                    + (": the answer holds no results" if not entries else "")
                )
            elif found > count:
                problems.append(
                    f"{found} {name} entries for {count} region(s): cannot tell which region "
                    "each belongs to"
                )
    for entry in entries:
        if entry.error is not None:
            problems.append(f"{_where(entry, region_names)} does not decode: {entry.error}")
    return Completeness(tuple(problems))


def format_key(wire_type: str | None) -> str:
    """The format an entry is counted as: known kinds by kind (``Json``/``JSON`` alike),
    anything else by its name in any case (``ImagePNG``)."""
    kind = ResultKind.of(wire_type)
    return f"other:{(wire_type or '').casefold()}" if kind is ResultKind.OTHER else kind.value


def _where(entry: ProcessedEntry, region_names: Sequence[str | None]) -> str:
    label = f"entry {entry.index} ({entry.wire_type or 'no type'}"
    if entry.region is not None:
        name = region_names[entry.region] if entry.region < len(region_names) else None
        label += f", region {entry.region}" + (f" {name!r}" if name else "")
    return label + ")"


@dataclass(frozen=True, slots=True)
class RefetchPolicy:
    """How often, and after what waits, an incomplete answer is fetched again.

    The n-th refetch (1-based) waits ``base_s · 2^(n-1)``, capped at ``cap_s``; after
    ``max_refetches`` the job ends incomplete.
    """

    max_refetches: int = 3
    base_s: float = 2.0
    cap_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_refetches < 0 or self.base_s < 0 or self.cap_s < self.base_s:
            raise ValueError("need max_refetches >= 0 and 0 <= base_s <= cap_s")

    def delay(self, refetch: int) -> float | None:
        """The wait before refetch number ``refetch`` (1-based); None when none is left."""
        if refetch < 1:
            raise ValueError(f"refetch is 1-based, got {refetch}")
        if refetch > self.max_refetches:
            return None
        return min(self.cap_s, self.base_s * 2.0 ** min(refetch - 1, 60))
