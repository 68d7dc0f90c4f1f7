"""syncd: keeps an application's user directory in step with CSV exports."""

import os

__version__ = "0.1.0"

# polars' allocator keeps freed pages for reuse unless told otherwise (polars' own default
# keeps them 0.5 s, then 1 s more as "muzzy" pages that still count as the process's
# memory). syncd keeps them a quarter of a second and no longer: a million-row job frees
# hundreds of MiB between stages, and returning them soon keeps its peak 100 to 150 MiB
# lower; returning them at once (0 ms) made every short-lived buffer a fresh page fault,
# and `validate` 15 to 20% slower, for 10 to 60 MiB less. Set before polars is first
# imported; an admin's own setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:250,muzzy_decay_ms:0")
