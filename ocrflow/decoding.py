"""Strict base64 decoding of result entries, with a size limit checked before decoding."""

from __future__ import annotations

import base64
import binascii

from ocrflow.errors import DecodeError, ResultTooLargeError

_LINE_BREAKS = str.maketrans("", "", "\r\n")


def decode_base64(data: str | None, *, max_bytes: int) -> bytes:
    """Decode one entry's ``data``: standard alphabet, correct padding, at most ``max_bytes``.

    ``null`` and ``""`` decode to no bytes (a region with no text). Line breaks, which MIME
    encoders insert, are ignored; any other stray character is an error. The size is judged
    from the encoded length, so an oversized entry is refused without allocating it.
    """
    if not data:
        return b""
    # Judged on the raw length first (MIME line breaks add under 3%), so that a huge entry is
    # refused before even the copy without line breaks is made.
    if len(data) // 4 * 3 > max_bytes * 1.03 + 3:
        raise ResultTooLargeError(
            f"result of about {len(data) // 4 * 3} bytes is over the {max_bytes}-byte limit"
        )
    text = data.translate(_LINE_BREAKS)
    decoded_size = len(text) // 4 * 3 - text[-2:].count("=")
    if decoded_size > max_bytes:
        raise ResultTooLargeError(
            f"result of about {decoded_size} bytes is over the {max_bytes}-byte limit"
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"result data is not valid base64: {exc}") from exc
