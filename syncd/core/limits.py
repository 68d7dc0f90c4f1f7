"""The default size caps of a file, shared by the profile, the reader and every source.

A file over them is rejected whole, before it is read into memory (a fetch stops at the
byte cap). They are sized for the nightly export of a company of 5,000,000 users: at
the 140 bytes of a typical 12-column row, 5,000,000 rows are 700 MB.
"""

#: The most bytes a file may hold (1 GiB).
MAX_BYTES = 1024 * 1024 * 1024
#: The most data rows a file may hold.
MAX_ROWS = 5_000_000
