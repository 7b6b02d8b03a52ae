"""``python -m ocrflow.cli`` is the ``ocrflow`` command."""

from ocrflow.cli.launch import main

main()
