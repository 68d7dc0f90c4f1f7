"""The shape of a CSV file's text: which delimiter separates cells, which character ends lines.

Detection looks at a sample from the start of the file, parsed quote-aware with Python's
`csv` module, so a delimiter inside a quoted cell does not count.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter

#: The delimiters syncd reads, in the order that breaks detection ties.
DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")

#: How much of the file detection looks at, and how many records of it.
SAMPLE_BYTES = 64 * 1024
SAMPLE_RECORDS = 50


def delimiter_name(delimiter: str) -> str:
    """The delimiter as a person would name it in a message."""
    return "tab" if delimiter == "\t" else repr(delimiter)


#: A CR that does not end a CRLF (one regex pass: twice as fast as counting both).
_LONE_CR = re.compile(rb"\r(?!\n)")
#: Excel's delimiter line: `sep=;` alone on the file's first line (quoted by some
#: writers), which Excel reads as the delimiter and never shows as a row.
_SEP_LINE = re.compile(rb'(?i)("?)sep=([^\r\n"])\1(?:\r\n|\r|\n|$)')


def excel_sep_line(data: bytes) -> tuple[str, int] | None:
    """The delimiter a `sep=` first line names (see `_SEP_LINE`) and the length of that
    line with its line end; None when the file does not start with one."""
    found = _SEP_LINE.match(data)
    if found is None:
        return None
    return found.group(2).decode("ascii", errors="replace"), found.end()


def line_end(data: bytes) -> str | None:
    """ "\\n" for files whose every CR ends a CRLF (LF and CRLF files); None for any other
    file (old-Mac bare CR line ends, or a mix), which only a parser that takes every
    line end, quote-aware, reads right."""
    if b"\r" not in data:
        return "\n"
    if b"\n" in data and _LONE_CR.search(data) is None:
        return "\n"
    return None


def sample_text(data: bytes) -> str:
    """The start of UTF-8 `data` as text; a character cut at the end is dropped."""
    return data[:SAMPLE_BYTES].decode("utf-8", errors="ignore")


def sample_records(sample: str, delimiter: str, *, complete: bool) -> list[list[str]]:
    """Up to SAMPLE_RECORDS non-blank records of `sample`.

    With `complete` False the sample was cut from a longer file, so its last record may
    be cut too; it is dropped unless it is the only one (a single very long first line).
    """
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, quotechar='"')
    records: list[list[str]] = []
    try:
        for record in reader:
            if any(record):
                records.append(record)
            if len(records) > SAMPLE_RECORDS:
                return records[:SAMPLE_RECORDS]
    except csv.Error:
        pass  # a cell longer than csv's field limit; the records before it still tell
    if not complete and len(records) > 1:
        records.pop()
    return records


def detect_delimiter(sample: str, *, complete: bool, expected_columns: int | None = None) -> str:
    """The delimiter among DELIMITERS giving the most consistent column count (> 1).

    Scored by: the profile's column count matching (header-less files), the first record
    having the most common count, then how many records have it; ties go to the earlier
    delimiter. A file that no delimiter splits is a single-column file: ",".
    """
    best = ","
    best_score: tuple[bool, bool, int] | None = None
    for delimiter in DELIMITERS:
        counts = [len(r) for r in sample_records(sample, delimiter, complete=complete)]
        if not counts:
            continue
        mode, frequency = Counter(counts).most_common(1)[0]
        if mode < 2:
            continue
        score = (mode == expected_columns, counts[0] == mode, frequency)
        if best_score is None or score > best_score:
            best, best_score = delimiter, score
    return best
