"""Files nobody should send, sent anyway, through `syncd validate --json`.

Each ends in a clear outcome: rejected whole (exit 2) with a message saying what to do,
row errors (exit 1), or success (exit 0); never a traceback, and always in bounded time.
"""

from __future__ import annotations

import codecs
import gzip
import io
import random
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.cli import syncd

#: Every case, the 10 MB cell and the 10,000 columns included, finishes well within this.
TIME_LIMIT_SECONDS = 20

CONFIG = """
[[sources]]
name = "uploads"
kind = "local"
path = "drop"
profile = "default"
"""


def _binary() -> bytes:
    noise = random.Random(20261122).randbytes(8192)
    return noise[:100] + b"\x00\x00\x00" + noise[100:]


def _xlsx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        book.writestr("xl/workbook.xml", "<workbook/>")
        book.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    return out.getvalue()


def _huge_cell() -> bytes:
    return (
        b"Email,First Name\r\n"
        + b"ana@example.com,"
        + b"x" * 10_000_000
        + b"\r\nbo@example.com,Bo\r\n"
    )


def _wide() -> bytes:
    header = ",".join(["Email", *(f"Extra {i}" for i in range(1, 10_000))])
    row = ",".join(["ana@example.com", *("v" for _ in range(1, 10_000))])
    return f"{header}\n{row}\n".encode()


def _text(text: str, encoding: str = "utf-8") -> Callable[[], bytes]:
    return lambda: text.encode(encoding)


def _with_bom(bom: bytes, text: str, encoding: str) -> Callable[[], bytes]:
    return lambda: bom + text.encode(encoding)


#: A good row and a broken one with non-ASCII names, to see them decoded in the errors CSV.
ACCENTED = (
    "Email{d}First Name{d}Last Name\n"
    "zoe@example.com{d}Zoë{d}Łukasiewicz\n"
    "not-an-email{d}José{d}Müller\n"
)


@dataclass(frozen=True, slots=True)
class Hostile:
    """A file, the exit code it must get, and words its messages or row errors must hold."""

    data: Callable[[], bytes]
    code: int
    words: str
    encoding: str | None = None
    rows: int | None = None
    errors_csv_holds: tuple[str, ...] = ()


CASES = {
    "binary-with-nuls": Hostile(_binary, 2, "export the data as CSV"),
    "xlsx-workbook": Hostile(_xlsx, 2, "Save As > CSV"),
    "gzip-archive": Hostile(lambda: gzip.compress(b"Email\na@example.com\n"), 2, "decompress"),
    "nul-inside-csv": Hostile(_text("Email,First Name\nana@example.com,A\x00na\n"), 2, "NUL"),
    "ten-megabyte-cell": Hostile(
        _huge_cell, 1, "10,000,000 characters, more than the 1,000,000 allowed", rows=2
    ),
    "ten-thousand-columns": Hostile(_wide, 2, "check that the delimiter"),
    "unbalanced-quotes": Hostile(
        _text('Email,First Name\nana@example.com,"Ana\nbo@example.com,Bo\n'),
        2,
        "add the missing closing",
    ),
    "header-only": Hostile(_text("Email,First Name\r\n"), 2, "no data rows"),
    "empty": Hostile(_text(""), 2, "empty"),
    "only-a-bom": Hostile(lambda: codecs.BOM_UTF8, 2, "byte order mark"),
    "duplicate-headers": Hostile(
        _text("Email,First Name,Email\nana@example.com,Ana,bo@example.com\n"),
        2,
        "keep one of these columns",
    ),
    "ragged-rows": Hostile(
        _text(
            "Email,First Name\nana@example.com,Ana,extra,more\nbo@example.com\ncy@example.com,Cy\n"
        ),
        1,
        "row has 4 cells but the header has 2",
        rows=3,
    ),
    "utf16-bom-tabs": Hostile(
        _with_bom(codecs.BOM_UTF16_LE, ACCENTED.format(d="\t"), "utf-16-le"),
        1,
        "not-an-email",
        encoding="utf-16-le",
        rows=2,
        errors_csv_holds=("José", "Müller"),
    ),
    "utf16be-bom": Hostile(
        _with_bom(codecs.BOM_UTF16_BE, ACCENTED.format(d=","), "utf-16-be"),
        1,
        "not-an-email",
        encoding="utf-16-be",
        rows=2,
        errors_csv_holds=("José", "Müller"),
    ),
    "cp1252-bytes": Hostile(
        _text(ACCENTED.format(d=",").replace("Łukasiewicz", "Öztürk"), "cp1252"),
        1,
        "not-an-email",
        encoding="cp1252",
        rows=2,
        errors_csv_holds=("José", "Müller"),
    ),
    "neither-utf8-nor-cp1252": Hostile(
        lambda: b"Email,First Name\nana@example.com,A\x81na\n", 2, "set the profile's encoding"
    ),
    "semicolon-delimited": Hostile(
        _text("Email;First Name;Last Name\nana@example.com;Ana;Ñ\nbo@example.com;Bo;Ö\n"),
        0,
        "",
        rows=2,
    ),
    "bare-cr-line-ends": Hostile(
        _text("Email,First Name\rana@example.com,Ana\rbo@example.com,Bo\r"), 0, "", rows=2
    ),
    "quoted-line-breaks-crlf": Hostile(
        _text('Email,First Name\r\nana@example.com,"An\r\na"\r\nbo@example.com,"=1+2"\r\n'),
        1,
        "line breaks",
        rows=2,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_hostile_file_gets_a_clear_outcome_and_never_a_traceback(
    case: Hostile, tmp_path: Path
) -> None:
    """The file is rejected with advice, or its rows are judged, quickly and without a crash."""
    config = tmp_path / "syncd.toml"
    config.write_text(CONFIG, encoding="utf-8")
    file = tmp_path / "upload.csv"
    file.write_bytes(case.data())
    errors_out = tmp_path / "errors.csv"

    started = time.monotonic()
    finished = syncd(
        "--config",
        config,
        "validate",
        file,
        "--errors-out",
        errors_out,
        "--json",
        cwd=tmp_path,
        timeout=TIME_LIMIT_SECONDS * 3,
    )
    elapsed = time.monotonic() - started

    assert "Traceback" not in finished.stderr
    assert finished.stderr == ""
    assert elapsed < TIME_LIMIT_SECONDS
    outcome = finished.json()
    assert finished.code == case.code, outcome
    counts = outcome["counts"]
    assert counts["rows"] == counts["valid"] + counts["invalid"]
    said = (
        " ".join(outcome["messages"]) + " " + " ".join(e["message"] for e in outcome["row_errors"])
    )
    assert case.words in said
    if case.code == 2:
        assert outcome["status"] == "rejected"
        assert outcome["messages"], "a rejected file says why"
        assert outcome["errors_csv"] is None
        assert not errors_out.exists()
        return
    assert outcome["status"] == ("invalid" if case.code == 1 else "valid")
    if case.rows is not None:
        assert counts["rows"] == case.rows
    if case.encoding is not None:
        assert outcome["encoding"] == case.encoding
    if case.code == 1:
        assert counts["invalid"] >= 1
        assert outcome["errors_csv"] == str(errors_out)
        text = errors_out.read_text(encoding="utf-8-sig")
        for word in case.errors_csv_holds:
            assert word in text
    else:
        assert counts["invalid"] == 0
        assert outcome["errors_csv"] is None
