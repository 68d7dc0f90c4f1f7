"""syncd: keeps an application's user directory in step with CSV exports."""

import os

__version__ = "0.1.0"

# polars' allocator keeps freed pages for reuse unless told otherwise (polars' own default
# keeps them 0.5 s, then 1 s more as "muzzy" pages that still count as the process's
# memory). syncd keeps them a quarter of a second and no longer: a million-row job frees
# hundreds of MiB between stages, and its peak stays up to 95 MiB below polars' default
# at the same speed. Returning them at once (0 ms) saved 10 to 65 MiB more but made each
# short-lived buffer a fresh page fault: `validate` took 15 to 20% longer. Set before
# polars is first imported; an admin's own setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:250,muzzy_decay_ms:0")
