"""ocrflow core: a Prefect-free library for Aspose.OCR Cloud's RecognizeRegions jobs.

Wire models, an async client with OAuth client-credentials auth, the polling policy and the
result decoders live here; Prefect tasks (``tasks/``) and flows (``flows/``) build on them.
This package must never import Prefect or FastAPI (a test checks it).
"""

__version__ = "0.1.0"
