"""User errors of the command line: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from ocrflow.settings import ClientSettings


class UserError(Exception):
    """Something the user can fix; printed as ``error: …`` with exit code 2."""


def check_reachable(base_url: str, timeout_s: float = 5.0) -> None:
    """Fail fast, before starting Prefect, when nothing answers at ``base_url``."""
    try:
        httpx.get(base_url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        hint = (
            " is the emulator running? Start it with `ocrflow emulator` or `make emulator`"
            if "127.0.0.1" in base_url or "localhost" in base_url
            else " check OCRFLOW_BASE_URL and the network"
        )
        reason = type(exc).__name__
        raise UserError(f"cannot reach the OCR service at {base_url} ({reason});{hint}") from exc


def check_credentials(settings: ClientSettings) -> None:
    """Ask the token endpoint once, before starting Prefect: credentials it refuses are one
    line now (and one failed attempt, where a run would have made several: the endpoint bans
    a client after more than 5). An endpoint that is down or failing is left to the run."""
    from ocrflow.client import OcrClient  # noqa: PLC0415 - kept out of the launcher's imports
    from ocrflow.errors import AuthError, OcrflowError  # noqa: PLC0415

    async def ask() -> None:
        async with OcrClient(settings) as client:
            await client.check_credentials()

    try:
        asyncio.run(ask())
    except AuthError as exc:
        raise UserError(str(exc)) from None
    except (OcrflowError, httpx.HTTPError):  # the endpoint failing or away: the run retries
        return
