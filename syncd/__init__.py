"""syncd: keeps an application's user directory in step with CSV exports."""

import os

__version__ = "0.1.0"

# polars' allocator keeps freed pages for reuse unless told otherwise; a million-row job
# frees hundreds of MiB between stages, and returning them at once keeps the peak about
# 150 MiB lower. Set before polars is first imported; an admin's own setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
