"""Prefect flows that only orchestrate: which jobs, in what order, with what concurrency.

``submit_regions`` (images → jobs), ``fetch_results`` (the parent flow: jobs → stored
results, with resubmission), ``ocr_pipeline`` (both) and ``sharded_sweep`` (the unfinished jobs
in shard runs over several workers). ``fetch_results`` leases its jobs and hands them to
``settle_many`` (batches looked at and stored together), which hands the jobs not done yet to
``settle_one`` (one job driven through :class:`ocrflow.settling.Settling`). No HTTP to the
service or SQL here: tasks do it (the sweep's lease on its jobs is the one ledger call a flow
makes itself, around its tasks). Installed as ``ocrflow.flows``.
"""
