"""Thin Prefect tasks around the core: each wraps one core call, with retries where they help.

They take plain inputs (job ids, decoded entries, job specs) and, as a parameter, the run's
:class:`ocrflow.runtime.Runtime` (client, ledger, poll counts). Called without one (from a
user's own flow), a task opens its own from the environment and the credentials block for the
length of the call. Installed as ``ocrflow.tasks``.
"""
