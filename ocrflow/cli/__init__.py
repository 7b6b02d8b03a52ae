"""The ``ocrflow`` command line: emulator, submit, fetch, results, demo.

Sits on top of every layer; imports Prefect, the flows and the emulator only inside the
commands that need them, so ``ocrflow --help`` and user errors answer at once.
"""
