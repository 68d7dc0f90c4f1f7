"""Files nobody should send, sent anyway, through `syncd validate --json`.

Each ends in a clear outcome: rejected whole (exit 2) with a message saying what to do,
row errors (exit 1), or success (exit 0); never a traceback, and always in bounded time.
"""

from __future__ import annotations

import codecs
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import hostile_corpus as corpus
from tests.e2e.cli import syncd
from tests.hostile_corpus import Writer

#: Every case, the 10 MB cell and the 10,000 columns included, finishes well within this.
TIME_LIMIT_SECONDS = 20

CONFIG = """
[[sources]]
name = "uploads"
kind = "local"
path = "drop"
profile = "default"
"""


def _huge_cell() -> Writer:
    """A 10 MB first name, then a good row."""
    return corpus.huge_cell(corpus.PEOPLE, (1, 2), 1, 1, 10_000_000)


def _with_bom(bom: bytes, text: str, encoding: str) -> Writer:
    return corpus.text(text, encoding, bom)


def _text(text: str, encoding: str = "utf-8") -> Writer:
    return corpus.text(text, encoding)


#: A good row and a broken one with non-ASCII names, to see them decoded in the errors CSV.
ACCENTED = (
    "Email{d}First Name{d}Last Name\n"
    "zoe@example.com{d}Zoë{d}Łukasiewicz\n"
    "not-an-email{d}José{d}Müller\n"
)


@dataclass(frozen=True, slots=True)
class Hostile:
    """A file, the exit code it must get, and words its messages or row errors must hold."""

    data: Writer
    code: int
    words: str
    encoding: str | None = None
    rows: int | None = None
    errors_csv_holds: tuple[str, ...] = ()


CASES = {
    "binary-with-nuls": Hostile(corpus.binary(), 2, "export the data as CSV"),
    "xlsx-workbook": Hostile(corpus.of(corpus.xlsx()), 2, "Save As > CSV"),
    "gzip-archive": Hostile(corpus.of(corpus.gzipped(b"Email\na@example.com\n")), 2, "decompress"),
    "nul-inside-csv": Hostile(_text("Email,First Name\nana@example.com,A\x00na\n"), 2, "NUL"),
    "ten-megabyte-cell": Hostile(
        _huge_cell(), 1, "10,000,000 characters, more than the 1,000,000 allowed", rows=2
    ),
    "ten-thousand-columns": Hostile(
        corpus.wide(corpus.PEOPLE, (1,), 10_000), 2, "check that the delimiter"
    ),
    "unbalanced-quotes": Hostile(
        _text('Email,First Name\nana@example.com,"Ana\nbo@example.com,Bo\n'),
        2,
        "add the missing closing",
    ),
    "header-only": Hostile(_text("Email,First Name\r\n"), 2, "no data rows"),
    "html-table-as-xls": Hostile(
        _text(
            '<html xmlns:x="urn:schemas-microsoft-com:office:excel">\r\n<body><table>'
            "<tr><td>Email</td><td>First Name</td></tr>"
            "<tr><td>ana@example.com</td><td>Ana</td></tr></table></body></html>\r\n"
        ),
        2,
        "web page (HTML)",
    ),
    "empty": Hostile(_text(""), 2, "empty"),
    "only-a-bom": Hostile(corpus.of(codecs.BOM_UTF8), 2, "byte order mark"),
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
        corpus.of(b"Email,First Name\nana@example.com,A\x81na\n"), 2, "set the profile's encoding"
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
    corpus.write_file(file, case.data)
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
