"""A job's results in one short line, for people reading a run (artifacts, alerts): the region
names with their text, files named by their kind."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

from ocrflow.processing import ProcessedEntry
from ocrflow.redact import printable

PREVIEW_CHARS = 160


def image_name(source: str | None) -> str | None:
    """The file name of the image a job was submitted from (its folders left out)."""
    if not source:
        return None
    return PurePath(source).name or source


def text_preview(
    entries: Sequence[ProcessedEntry],
    names: Sequence[str | None] = (),
    limit: int = PREVIEW_CHARS,
) -> str:
    """``name: text · name: text …`` in entry order, at most ``limit`` characters."""
    parts = []
    for entry in entries:
        index = entry.index  # results come back in the regions' order, as ``names`` is
        name = names[index] if 0 <= index < len(names) and names[index] else f"#{index}"
        if entry.error is not None:
            shown = "(error)"
        elif entry.text is not None:
            shown = " ".join(entry.text.split()) or "(empty)"
        else:
            shown = f"({entry.wire_type or entry.kind.value} file)"
        parts.append(f"{name}: {shown}")
    line = printable(" · ".join(parts), keep_newlines=False)
    return line if len(line) <= limit else line[: limit - 1] + "…"
