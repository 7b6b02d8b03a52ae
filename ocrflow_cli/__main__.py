"""``python -m ocrflow_cli`` is the ``ocrflow`` command."""

from ocrflow_cli.launch import main

main()
