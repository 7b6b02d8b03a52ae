"""Job id validation: a job id is a GUID, checked before it enters a URL, a log or a path."""

from __future__ import annotations

import re

from ocrflow.errors import InvalidJobIdError

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SHOWN_CHARS = 60


def validate_job_id(value: object) -> str:
    """Return the canonical (lower-case) form of a GUID job id, or raise InvalidJobIdError.

    Only the plain 8-4-4-4-12 hex form is accepted: no braces, no ``urn:uuid:``, no spaces,
    so that a hostile id (``../../etc``, ``a?b=c``) can never reach a URL or a file name.
    """
    if not isinstance(value, str):
        raise InvalidJobIdError(f"job id must be a string, got {type(value).__name__}")
    canonical = value.lower()
    if not _GUID.fullmatch(canonical):
        shown = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"
        raise InvalidJobIdError(f"not a job id (expected a GUID like 8-4-4-4-12 hex): {shown!r}")
    return canonical


def parse_job_id_body(body: str) -> str:
    """Read the job id from a POST answer: a bare GUID, possibly JSON-quoted (contract §3)."""
    text = body.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        # An ASP.NET server JSON-quotes a string when the client accepts application/json.
        text = text[1:-1].strip()
    return validate_job_id(text)


def read_echoed_id(value: str) -> str | None:
    """The job id an answer echoes, in any of the forms a .NET server may write it: quoted,
    braced (``{…}``), ``urn:uuid:``-prefixed, any case; None when it is no GUID at all. Only
    for comparing with the id we asked for: it never goes into a URL."""
    text = value.strip().strip('"').strip()
    if text.lower().startswith("urn:uuid:"):
        text = text[len("urn:uuid:") :]
    if len(text) >= 2 and text[0] == "{" and text[-1] == "}":
        text = text[1:-1]
    try:
        return validate_job_id(text.strip())
    except InvalidJobIdError:
        return None
