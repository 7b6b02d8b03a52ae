"""Files of results that do not fit a table row (PDFs, raw bytes), written under one folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ocrflow.ids import validate_job_id

EXTENSIONS = {"pdf": ".pdf", "other": ".bin"}


def write_payload(root: Path, job_id: str, entry_index: int, kind: str, data: bytes) -> Path:
    """Write one entry's bytes to ``root/<job id>/<index>.<ext>`` atomically; returns the path.

    The job id is validated first, so it can never lead outside ``root``. A rerun writes the
    same file again (replacing it), so a crash between writing and recording leaves no clutter.
    """
    folder = root / validate_job_id(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{int(entry_index)}{EXTENSIONS.get(kind, '.bin')}"
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".part-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
