"""The background runner's HTTP app: `/health`, and `/recognize`, which runs `recognize` in
this process and answers with what it printed and its exit code (loads Prefect: imported only
by the runner, never by a command)."""

from __future__ import annotations

import asyncio
import io
import logging
import secrets

# Loaded now, while the Prefect server boots, rather than during the first run (0.2-0.3 s).
import aiosqlite  # noqa: F401
import fastapi.encoders  # noqa: F401
import prefect.flow_engine
import prefect.task_engine  # noqa: F401
from pydantic import ValidationError
from rich.console import Console
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import ocrflow.cli.output
import ocrflow.flows.pipeline
import ocrflow.ledger  # noqa: F401
from ocrflow.cli.errors import UserError
from ocrflow.cli.main import checked_settings, explain, print_error, recognize_here
from ocrflow.cli.runner import TOKEN_HEADER
from ocrflow.jobspec import JobSpec

logger = logging.getLogger("ocrflow.runner")


def create_runner_app(token: str) -> Starlette:
    """The app, answering only requests that carry ``token``."""

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def recognize(request: Request) -> Response:
        if not secrets.compare_digest(request.headers.get(TOKEN_HEADER, ""), token):
            return PlainTextResponse("a token is needed", status_code=403)
        try:
            body = await request.json()
            specs = [JobSpec.model_validate(spec) for spec in body["specs"]]
            width, color = int(body["width"]), bool(body["color"])
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            return PlainTextResponse(f"bad request: {exc}", status_code=400)
        out, err = _console(width, color), _console(width, color)
        code = await _recognize(specs, out, err)
        return JSONResponse(
            {"stdout": _text(out), "stderr": _text(err), "exit_code": code},
        )

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/recognize", recognize, methods=["POST"]),
        ]
    )


async def _recognize(specs: list[JobSpec], out: Console, err: Console) -> int:
    """As the command would in its own process: checks first (one line, exit 2), the run."""
    try:
        settings = await asyncio.to_thread(checked_settings)  # blocking checks, a loop of their own
        return await recognize_here(specs, settings, out, err)
    except UserError as exc:
        print_error(str(exc), err)
        return 2
    except Exception as exc:
        logger.exception("recognize failed")
        print_error(explain(exc), err)
        return 1


def _console(width: int, color: bool) -> Console:
    return Console(
        file=io.StringIO(), width=max(width, 40), force_terminal=color, no_color=not color
    )


def _text(console: Console) -> str:
    file = console.file
    return file.getvalue() if isinstance(file, io.StringIO) else ""
