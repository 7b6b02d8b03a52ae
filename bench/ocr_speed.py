"""Benchmark: the emulator's OCR time per region and per page, on the shipped samples.

Run with ``make bench-ocr`` (or ``.venv/bin/python -m bench.ocr_speed [--repeat N]``); prints a
table. Measures the recognition pipeline (decode, crop, deskew, Tesseract, render) without HTTP.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
from pathlib import Path

from ocrflow.emulator.engine import TesseractEngine
from ocrflow.emulator.jobs import recognise
from ocrflow.emulator.schemas import parse_recognize_body

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def measure(engine: TesseractEngine, body: dict[str, object], repeat: int) -> float:
    """Median seconds of one recognition of ``body``."""
    parsed, image = parse_recognize_body(json.dumps(body).encode(), max_image_bytes=1 << 26)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        recognise(engine, parsed, image)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    """Print per-region and per-page times for every sample and result type."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    engine = TesseractEngine()
    print(f"Tesseract {engine.version}, median of {args.repeat} runs\n")
    print(f"{'sample':<18} {'result type':<18} {'regions':>7} {'per region ms':>14} {'page ms':>8}")
    for regions_file in sorted(SAMPLES.glob("*.regions.json")):
        document = json.loads(regions_file.read_text())
        image = base64.b64encode((SAMPLES / document["image"]).read_bytes()).decode()
        regions = [{"rect": r["rect"], "order": r["order"]} for r in document["regions"]]
        for result_type in ("Text", "JSON", "Hocr", "Pdf", "TextAndPdfAndHocr"):
            settings = {**document["settings"], "resultType": result_type}
            with_regions = measure(
                engine, {"image": image, "settings": {**settings, "regions": regions}}, args.repeat
            )
            page = measure(engine, {"image": image, "settings": settings}, args.repeat)
            print(
                f"{regions_file.name.split('.')[0]:<18} {result_type:<18} {len(regions):>7} "
                f"{with_regions / len(regions) * 1000:>14.1f} {page * 1000:>8.1f}"
            )


if __name__ == "__main__":
    main()
