"""The core stays Prefect-free and FastAPI-free: checked in a fresh interpreter.

The core is the ``ocrflow`` package less the layers built on it, which live in the same
namespace: ``ocrflow.tasks``, ``ocrflow.flows``, ``ocrflow.cli`` and ``ocrflow.emulator``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_core_imports_without_prefect_or_fastapi() -> None:
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import ocrflow
        above = ("ocrflow.tasks", "ocrflow.flows", "ocrflow.cli", "ocrflow.emulator")
        modules = [
            m.name
            for m in pkgutil.iter_modules(ocrflow.__path__, "ocrflow.")
            if m.name not in above
        ]
        modules += [  # the core's own subpackages, with their modules
            sub.name
            for m in pkgutil.iter_modules(ocrflow.__path__, "ocrflow.")
            if m.ispkg and m.name not in above
            for sub in pkgutil.walk_packages(
                importlib.import_module(m.name).__path__, m.name + "."
            )
        ]
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
