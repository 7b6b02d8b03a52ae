"""Thin Prefect tasks around the core: each wraps one core call, with retries where they help.

They take plain, serializable inputs (job ids, decoded entries, job specs) and reach the
client and the ledger through the runtime the flow opened (:mod:`tasks.runtime`).
"""
