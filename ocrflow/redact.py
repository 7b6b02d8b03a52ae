"""Keeping secrets out of what a person or a log sees: URLs with credentials, control bytes.

``mask_credentials`` hides the password of every ``scheme://user:password@host`` in a text (a
database URL in an error message, a webhook URL); ``printable`` escapes the control characters
(ANSI escapes above all) of text that came from outside before it reaches a terminal.
"""

from __future__ import annotations

import re

MASK = "***"
# scheme://user:password@ — the password stops at the last '@' before the host part.
_USERINFO = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:)(?P<password>[^\s/]*)(?P<at>@)"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def mask_credentials(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m['head']}{MASK}{m['at']}", text)


def printable(text: str, *, keep_newlines: bool = True) -> str:
    """Control characters shown as ``\\xNN`` (newlines and tabs kept when asked): stored text
    from the service or a user's file can never drive the terminal."""
    escaped = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return escaped if keep_newlines else escaped.replace("\n", "\\n")
