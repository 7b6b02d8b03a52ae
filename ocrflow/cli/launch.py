"""The `ocrflow` command's entry point: for a command that runs flows, the Prefect server it
will use is found or started before anything heavy loads (the command line's own imports take
0.3-0.4 s, which the server's boot then overlaps), then the command line runs."""

from __future__ import annotations

import sys

FLOW_COMMANDS = frozenset({"recognize", "submit", "fetch"})


def main() -> None:
    """Run ``ocrflow``."""
    asked = sys.argv[1:]
    if asked and asked[0] in FLOW_COMMANDS and not {"--help", "-h"} & set(asked):
        from ocrflow.cli.localserver import start_early  # noqa: PLC0415

        start_early()
    from ocrflow.cli.main import main as run_command_line  # noqa: PLC0415

    run_command_line()
