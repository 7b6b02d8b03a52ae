"""Options every ocrflow task shares.

Each task does I/O or works on an answer that changes with time: none is cached, and none
persists its result (a cached Pending would hide a finished job; persisted results would pile
up on disk and keep OCR output outside the ledger).
"""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import NO_CACHE

NOT_CACHED: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}
