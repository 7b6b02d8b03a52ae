"""Prefect flows that only orchestrate: which jobs, in what order, with what concurrency.

``submit_regions`` (images → jobs), ``fetch_results`` (the parent flow: jobs → stored
results, with resubmission) and ``ocr_pipeline`` (both). No HTTP or SQL here: tasks do it.
"""
