"""Serve the emulator (``python -m ocrflow.emulator [--host H] [--port P] [--simulate]``)."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from ocrflow.emulator.app import create_app
from ocrflow.emulator.settings import EmulatorSettings, ProcessingTime


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, build the app from settings, serve it with uvicorn."""
    parser = argparse.ArgumentParser(
        prog="python -m ocrflow.emulator", description="Local Aspose.OCR Cloud emulator (real OCR)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--simulate", action="store_true", help="no OCR: generated known text")
    parser.add_argument("--processing-s", type=float, help="processing time per job, seconds")
    parser.add_argument("--processing-sigma", type=float, help="log-normal sigma (0 = fixed)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    args = parser.parse_args(argv)

    settings = EmulatorSettings()
    if args.simulate:
        settings.simulate = True
    if args.processing_s is not None or args.processing_sigma is not None:
        sigma = args.processing_sigma or 0.0
        settings.processing = ProcessingTime(
            kind="lognormal" if sigma else "fixed",
            seconds=args.processing_s if args.processing_s is not None else 0.5,
            sigma=sigma,
        )
    logging.basicConfig(level=args.log_level.upper())
    print(
        f"emulator on http://{args.host}:{args.port}  client id {settings.client_id!r}  "
        f"({'simulation' if settings.simulate else 'Tesseract OCR'})",
        flush=True,
    )
    uvicorn.run(
        create_app(settings), host=args.host, port=args.port, log_level=args.log_level.lower()
    )


if __name__ == "__main__":
    main()
