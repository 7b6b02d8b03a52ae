"""Settings every test starts from."""

from __future__ import annotations

import os

# A command run by a test starts no Prefect server that outlives it (ocrflow/cli/localserver):
# the one test of that server turns it on, in a folder of its own, and stops it.
os.environ["OCRFLOW_LOCAL_SERVER"] = "0"
