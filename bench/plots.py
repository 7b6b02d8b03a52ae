"""Bar charts of the benchmarks' results (Pillow only), drawn from their JSON in bench/results.

Each benchmark draws its own after it runs; ``python -m bench.plots`` redraws them all from the
committed figures, without running anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
IMAGES = ROOT / "docs" / "img"
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


@dataclass(frozen=True)
class Panel:
    """One chart: groups of bars (one bar per series), and a target line if there is one."""

    title: str
    groups: list[str]
    series: dict[str, list[float]]  # series name → one value per group
    target: float | None = None
    target_label: str = ""


def draw_panels(panels: list[Panel], path: Path, *, width: int = 460, height: int = 320) -> None:
    """The panels side by side, with one legend for their series under them."""
    names = list(dict.fromkeys(name for panel in panels for name in panel.series))
    image = Image.new("RGB", (width * len(panels), height + 24 + 16 * len(names)), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    for number, panel in enumerate(panels):
        _draw_panel(draw, font, panel, names, x0=number * width, width=width, height=height)
    for i, name in enumerate(names):
        y = height + 10 + 16 * i
        draw.rectangle((12, y + 2, 22, y + 12), fill=PALETTE[i % len(PALETTE)])
        draw.text((28, y), name, fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _draw_panel(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    panel: Panel,
    names: list[str],
    *,
    x0: int,
    width: int,
    height: int,
) -> None:
    left, top, right, bottom = x0 + 48, 30, x0 + width - 12, height - 30
    values = [v for series in panel.series.values() for v in series]
    top_value = max([*values, panel.target or 0.0]) * 1.15 or 1.0
    draw.text((x0 + 8, 8), panel.title, fill="black", font=font)
    draw.line((left, top, left, bottom), fill="black")
    draw.line((left, bottom, right, bottom), fill="black")
    for fraction in (0.0, 0.5, 1.0):
        y = bottom - (bottom - top) * fraction
        draw.text((x0 + 4, y - 7), _number(top_value * fraction), fill="black", font=font)
    slot = (right - left) / max(len(panel.groups), 1)
    present = [name for name in names if name in panel.series]
    bar = slot * 0.8 / max(len(present), 1)
    for g, group in enumerate(panel.groups):
        gx = left + slot * g + slot * 0.1
        for s, name in enumerate(present):
            value = panel.series[name][g]
            x = gx + bar * s
            y = bottom - (bottom - top) * value / top_value
            draw.rectangle((x, y, x + bar - 2, bottom), fill=PALETTE[names.index(name) % 5])
            draw.text((x, y - 14), _number(value), fill="black", font=font)
        draw.text((gx, bottom + 4), group, fill="black", font=font)
    if panel.target is not None:
        y = bottom - (bottom - top) * panel.target / top_value
        draw.line((left, y, right, y), fill=(0, 150, 0), width=2)
        draw.text((left + 6, y - 15), panel.target_label, fill=(0, 120, 0), font=font)


def _number(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def plot_polling_live() -> Path:
    """Calls per job and p95 lag, live against the virtual clock, before and after censoring."""
    after = json.loads((RESULTS / "polling_live.json").read_text())["workloads"]
    before_file = RESULTS / "polling_live_uncensored.json"
    before = json.loads(before_file.read_text())["workloads"] if before_file.exists() else []
    loads = [row["workload"] for row in after if row["workload"] != "done"]

    def pick(rows: list[dict[str, Any]], side: str, field: str) -> list[float]:
        by = {row["workload"]: row[side][field] for row in rows}
        return [by.get(load, 0.0) for load in loads]

    panels = []
    for field, title, target in (
        ("calls_mean", "calls per job", 5.5),
        ("lag_p95_s", "p95 lag, s", 8.0),
    ):
        series = {"virtual clock": pick(after, "virtual", field)}
        if before:
            series["live, completed jobs only (before)"] = pick(before, "live", field)
        series["live, running jobs censored (now)"] = pick(after, "live", field)
        panels.append(Panel(title, loads, series, target, f"slow target {target:g}"))
    path = IMAGES / "polling_live.png"
    draw_panels(panels, path)
    return path


def plot_overhead() -> Path:
    """Jobs per second of the flow and the bare client, per added latency."""
    rows = [r for r in json.loads((RESULTS / "overhead.json").read_text()) if r["client_s"]]
    groups = [f"{r['jobs']:,} jobs, {r['latency_ms']} ms" for r in rows]
    series = {
        "bare client": [r["jobs"] / r["client_s"] for r in rows],
        "fetch-results flow": [r["jobs"] / r["flow_s"] for r in rows],
    }
    ratios = Panel(
        "flow / bare client",
        groups,
        {"ratio": [r["client_s"] / r["flow_s"] for r in rows]},
        0.9,
        "target 0.9 (100 ms)",
    )
    path = IMAGES / "overhead.png"
    draw_panels([Panel("jobs per second", groups, series), ratios], path)
    return path


def plot_sweep_100k() -> Path:
    """Throughput of each sweep against the baseline, and the peak RSS of its processes."""
    report = json.loads((RESULTS / "sweep_100k.json").read_text())
    sweeps = report["sweeps"]
    groups = [f"{s['jobs']:,}, {s['shards']} worker(s)" for s in sweeps]
    rate = Panel(
        "jobs per second (shards' span)", groups, {"jobs/s": [s["jobs_per_s"] for s in sweeps]}
    )
    roles = ["flow-run process", "shard worker", "Prefect server"]
    memory = Panel(
        "peak RSS per process, MB",
        groups,
        {role: [s["peak_rss_mb"].get(role, 0.0) for s in sweeps] for role in roles},
        600.0,
        "limit 600 MB",
    )
    path = IMAGES / "sweep_100k.png"
    draw_panels([rate, memory], path, width=520)
    return path


def main() -> None:
    for plot in (plot_polling_live, plot_overhead, plot_sweep_100k):
        try:
            print(plot().relative_to(ROOT))
        except FileNotFoundError as exc:  # that benchmark has not been run here yet
            print(f"skipped {plot.__name__}: {exc.filename} missing")


if __name__ == "__main__":
    main()
