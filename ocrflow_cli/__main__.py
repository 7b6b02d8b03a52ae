"""``python -m ocrflow_cli`` is the ``ocrflow`` command."""

from ocrflow_cli.main import main

main()
