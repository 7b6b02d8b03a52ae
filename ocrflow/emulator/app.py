"""The emulator's FastAPI app, built by a factory: settings in, app out.

Vendor endpoints (contract §1, §5): ``POST /connect/token``; ``POST/GET/DELETE`` on
``/v5.0/ocr/RecognizeRegions`` and ``/v5.0/ocr/RecognizeImage``;
``GET /v5.0/ocr/Utilities/GetTaskStatus``. Emulator controls, outside the vendor's paths:
``GET/PUT /_emulator/faults``, ``GET /_emulator/stats``, ``GET /_emulator/jobs``,
``POST /_emulator/reset``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException

from ocrflow.emulator.engine import Engine, TesseractEngine
from ocrflow.emulator.faults import FaultMiddleware
from ocrflow.emulator.routes import (
    UnauthorizedError,
    bad_request_answer,
    build_control_router,
    build_ocr_router,
    build_token_router,
    build_utilities_router,
    http_error_answer,
    unauthorized_answer,
)
from ocrflow.emulator.schemas import BadRequestError
from ocrflow.emulator.settings import EmulatorSettings
from ocrflow.emulator.state import EmulatorState

__all__ = ["EmulatorState", "create_app"]


def create_app(
    settings: EmulatorSettings | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    engine: Engine | None = None,
) -> FastAPI:
    """Build an emulator: ``create_app(EmulatorSettings(...))`` → an ASGI app."""
    settings = settings or EmulatorSettings()
    if engine is None and not settings.simulate:  # simulated jobs read no image: no engine
        engine = TesseractEngine()
    state = EmulatorState(settings, clock, engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        state.jobs.close()

    app = FastAPI(
        title="Aspose.OCR Cloud emulator (ocrflow)",
        description="Speaks the RecognizeRegions wire protocol and does real OCR offline.",
        lifespan=lifespan,
    )
    app.state.emulator = state
    app.add_exception_handler(UnauthorizedError, unauthorized_answer)
    app.add_exception_handler(BadRequestError, bad_request_answer)
    app.add_exception_handler(StarletteHTTPException, http_error_answer)
    app.include_router(build_token_router())
    app.include_router(build_ocr_router("RecognizeRegions", regions=True))
    app.include_router(build_ocr_router("RecognizeImage", regions=False))
    app.include_router(build_utilities_router())
    app.include_router(build_control_router())
    app.add_middleware(FaultMiddleware, state=state)
    return app
