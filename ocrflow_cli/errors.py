"""User errors of the command line: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import httpx

from ocrflow.backoff import parse_retry_after
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


def check_credentials(settings: ClientSettings, timeout_s: float = 10.0) -> None:
    """Ask the token endpoint once, before starting Prefect: credentials it refuses are one
    line now (and one failed attempt, where a run would have made several: the endpoint bans
    a client after more than 5). An endpoint that is down or slow is left to the run."""
    try:
        answer = httpx.post(
            settings.resolved_token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": settings.client_id,
                "client_secret": settings.client_secret.get_secret_value(),
            },
            timeout=timeout_s,
        )
    except httpx.HTTPError:
        return
    who = f"client id {settings.client_id[:4]}…" if settings.client_id else "no client id"
    if answer.status_code in (400, 401, 403):
        raise UserError(
            f"the service refused the credentials ({who}, HTTP {answer.status_code}): check "
            "OCRFLOW_CLIENT_ID and OCRFLOW_CLIENT_SECRET (or the credentials block of the "
            "Prefect server in use)"
        )
    if answer.status_code == 429:
        wait = parse_retry_after(answer.headers.get("Retry-After"))
        when = f" for {wait:.0f} s" if wait is not None else " for a while"
        raise UserError(
            f"the token endpoint refuses these credentials ({who}){when} after failed "
            "attempts: check them, then try again once the wait is over"
        )
