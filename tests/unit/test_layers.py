"""The core stays Prefect-free and FastAPI-free: checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_core_imports_without_prefect_or_fastapi() -> None:
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import ocrflow
        modules = [m.name for m in pkgutil.walk_packages(ocrflow.__path__, "ocrflow.")]
        for name in modules:
            importlib.import_module(name)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"prefect", "fastapi"})
        print(len(modules), heavy)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    count, heavy = done.stdout.split(" ", 1)
    assert int(count) >= 10, done.stdout
    assert heavy.strip() == "[]"
