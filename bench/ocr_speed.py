"""Benchmark: the emulator's OCR, how exactly it reads with binarization off and on, and how fast.

Run with ``make bench-ocr`` (or ``.venv/bin/python -m bench.ocr_speed [--repeat N] [--seeds N]``);
prints two tables and writes ``bench/results/ocr.json``. Measures the recognition pipeline
(decode, crop, binarize, deskew, Tesseract, render) without HTTP.

Exact reads: every shipped sample, then the two clean ones spoilt by four kinds of scan noise
(``samples.degrade``) with seeds the binarization's proportions were not chosen on (100 on),
each region read with ``makeBinarization`` false and true; a read counts when it is the
region's text exactly.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocrflow.emulator.engine import TesseractEngine
from ocrflow.emulator.jobs import recognise
from ocrflow.emulator.samples import (
    SAMPLES as MAKERS,
)
from ocrflow.emulator.samples import (
    SCAN,
    TURNED,
    Noise,
    Sample,
    application_form,
    degrade,
    id_card,
)
from ocrflow.emulator.schemas import parse_recognize_body

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
RESULTS = Path(__file__).resolve().parent / "results" / "ocr.json"
NOISES = {
    "scan": SCAN,
    "turned 2.5°": TURNED,
    "low contrast": Noise(blur=1.0, grain=6, speckle=0.0005, black=110, white=190),
    "heavy speckle": Noise(blur=1.0, grain=12, speckle=0.004, black=70, white=200),
}
RECT_KEYS = ("topLeftX", "topLeftY", "bottomRightX", "bottomRightY")
FIRST_SEED = 100  # binarize's proportions were chosen on seeds 0 and 1: these are unseen


@dataclass
class Reads:
    """Exact reads of one set of documents with one setting, and the time they took."""

    exact: int = 0
    regions: int = 0
    seconds: float = 0.0
    misses: list[tuple[str, str]] = field(default_factory=list)  # (expected, read)

    def add(self, expected: list[str], got: list[str], seconds: float) -> None:
        """Count one document's reads."""
        pairs = list(zip(expected, got, strict=True))
        self.exact += sum(e == g for e, g in pairs)
        self.regions += len(pairs)
        self.seconds += seconds
        self.misses += [(e, g) for e, g in pairs if e != g]


def body_of(sample: Sample, **settings: object) -> dict[str, Any]:
    """The POST body that reads every field of ``sample``."""
    out = io.BytesIO()
    sample.image.save(out, "PNG")
    regions = [
        {
            "order": order,
            "rect": dict(zip(RECT_KEYS, f.rect, strict=True)),
        }
        for order, f in enumerate(sample.fields)
    ]
    return {
        "image": base64.b64encode(out.getvalue()).decode(),
        "settings": {"language": "English", "resultType": "Text", "regions": regions, **settings},
    }


def run(engine: TesseractEngine, body: dict[str, Any]) -> tuple[list[dict[str, str]], float]:
    """The ``results`` entries of ``body``, and the seconds the pipeline took."""
    parsed, image = parse_recognize_body(json.dumps(body).encode(), max_image_bytes=1 << 26)
    started = time.perf_counter()
    results, _warnings = recognise(engine, parsed, image)
    return results, time.perf_counter() - started


def read(engine: TesseractEngine, body: dict[str, Any]) -> tuple[list[str], float]:
    """The texts of every region of a ``Text`` body, and the seconds the pipeline took."""
    results, seconds = run(engine, body)
    return [base64.b64decode(r["data"]).decode() for r in results], seconds


def exact_reads(engine: TesseractEngine, seeds: int) -> dict[str, dict[bool, Reads]]:
    """Exact reads per document set, with binarization off (False) and on (True)."""
    sets: dict[str, list[Sample]] = {"shipped samples": [make() for make in MAKERS.values()]}
    for name, noise in NOISES.items():
        sets[name] = [
            degrade(make(), noise, seed=FIRST_SEED + seed)
            for make in (id_card, application_form)
            for seed in range(seeds)
        ]
    table: dict[str, dict[bool, Reads]] = {}
    for name, samples in sets.items():
        table[name] = {False: Reads(), True: Reads()}
        for sample in samples:
            expected = [f.text for f in sample.fields]
            for binarize in (False, True):
                body = body_of(sample, makeSkewCorrect=True, makeBinarization=binarize)
                got, seconds = read(engine, body)
                table[name][binarize].add(expected, got, seconds)
    return table


def timings(engine: TesseractEngine, repeat: int) -> list[dict[str, Any]]:
    """Median milliseconds per region and per page, per shipped sample and result type."""
    rows = []
    for regions_file in sorted(SAMPLES.glob("*.regions.json")):
        document = json.loads(regions_file.read_text())
        image = base64.b64encode((SAMPLES / document["image"]).read_bytes()).decode()
        regions = [{"rect": r["rect"], "order": r["order"]} for r in document["regions"]]
        for result_type in ("Text", "JSON", "Hocr", "Pdf", "TextAndPdfAndHocr"):
            settings = {**document["settings"], "resultType": result_type}
            with_regions = statistics.median(
                run(engine, {"image": image, "settings": {**settings, "regions": regions}})[1]
                for _ in range(repeat)
            )
            page = statistics.median(
                run(engine, {"image": image, "settings": settings})[1] for _ in range(repeat)
            )
            rows.append(
                {
                    "sample": regions_file.name.split(".")[0],
                    "result_type": result_type,
                    "regions": len(regions),
                    "binarization": bool(document["settings"].get("makeBinarization")),
                    "per_region_ms": with_regions / len(regions) * 1000,
                    "page_ms": page * 1000,
                }
            )
    return rows


def main() -> None:
    """Print the exact-read table and the timing table; write both as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="timing runs per case (median)")
    parser.add_argument("--seeds", type=int, default=5, help="noisy copies per clean sample")
    parser.add_argument("--misses", action="store_true", help="list every inexact read")
    args = parser.parse_args()
    engine = TesseractEngine()
    print(f"Tesseract {engine.version}\n")

    table = exact_reads(engine, args.seeds)
    print(
        f"{'documents':<16} {'regions':>7} {'exact, off':>11} {'exact, on':>10} {'ms/region off':>14} {'on':>6}"
    )
    for name, by_setting in table.items():
        off, on = by_setting[False], by_setting[True]
        print(
            f"{name:<16} {off.regions:>7} {off.exact / off.regions:>11.0%} "
            f"{on.exact / on.regions:>10.0%} {off.seconds / off.regions * 1000:>14.1f} "
            f"{on.seconds / on.regions * 1000:>6.1f}"
        )
        if args.misses:
            for setting, reads in (("off", off), ("on", on)):
                for expected, got in reads.misses:
                    print(f"    {setting}: {expected!r} read as {got!r}")
    print(f"\nmedian of {args.repeat} runs")
    print(f"{'sample':<18} {'result type':<18} {'regions':>7} {'per region ms':>14} {'page ms':>8}")
    rows = timings(engine, args.repeat)
    for row in rows:
        print(
            f"{row['sample']:<18} {row['result_type']:<18} {row['regions']:>7} "
            f"{row['per_region_ms']:>14.1f} {row['page_ms']:>8.1f}"
        )
    RESULTS.write_text(
        json.dumps(
            {
                "tesseract": engine.version,
                "seeds": [FIRST_SEED, FIRST_SEED + args.seeds - 1],
                "exact_reads": {
                    name: {
                        setting: {
                            "regions": reads.regions,
                            "exact": reads.exact,
                            "ms_per_region": reads.seconds / reads.regions * 1000,
                            "misses": reads.misses,
                        }
                        for setting, reads in (("off", by[False]), ("on", by[True]))
                    }
                    for name, by in table.items()
                },
                "timings": rows,
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    print(
        f"\nwritten: {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}"
    )


if __name__ == "__main__":
    main()
