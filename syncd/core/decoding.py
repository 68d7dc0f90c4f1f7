"""Bytes to UTF-8: which encoding a file is in, and refusing what is not text at all.

A BOM decides; else a configured codec, strictly; else UTF-8, else the fallback codec
(cp1252 by default) with a notice. Whatever the source encoding, the result is UTF-8
bytes without a BOM, which is what the parser wants. Plain UTF-8 input is not decoded
here at all (decoding 120 MB in Python costs more than parsing it): the parser checks it
and calls `after_invalid_utf8` if it is not valid.

A file that is UTF-8 but for a few bytes (an export with `renée` in one row and a stray
Latin-1 byte in another) is never decoded whole with the fallback, which would garble
every accented key and email in it: it is read as UTF-8, each byte that is not UTF-8
standing in the text as a *lost byte* character (`LOST_BYTE_BASE` plus the byte), and
validation fails exactly the cells holding one, naming the byte. Only a file with no
UTF-8 sequence at all falls back, and the result says its encoding was `guessed`.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from syncd.errors import FileRejected

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 LE before UTF-16 LE: its BOM starts with the UTF-16 LE one.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_SAVE_AS_CSV = "save it as CSV (in Excel: File > Save As > CSV UTF-8) and send that file"

#: A byte that is not UTF-8, in a file read as UTF-8, becomes the private-use character
#: U+10FF00 plus the byte (every such byte is 0x80 or more): no export holds these, and
#: the byte can still be named in the row's error.
LOST_BYTE_BASE = 0x10FF00
#: Characters that stand for text lost to a wrong encoding: lost bytes and U+FFFD, the
#: replacement character another program left where it could not decode a byte.
LOST_CHARACTERS = "[\U0010ff80-\U0010ffff\ufffd]"
_LOST_HANDLER = "syncd-lost-byte"


def _lost_bytes(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    lost = exc.object[exc.start : exc.end]
    return "".join(chr(LOST_BYTE_BASE + b) for b in lost), exc.end


codecs.register_error(_LOST_HANDLER, _lost_bytes)


def lost_bytes_in(cell: str) -> list[int]:
    """The bytes a cell lost (see LOST_BYTE_BASE), in order; U+FFFD names none."""
    return [ord(ch) - LOST_BYTE_BASE for ch in cell if ord(ch) >= LOST_BYTE_BASE + 0x80]


#: A lost byte's character (see LOST_BYTE_BASE).
LOST_BYTE = "[\U0010ff80-\U0010ffff]"
_LOST_BYTE = re.compile(LOST_BYTE)


def shown_lost(cell: str) -> str:
    """A cell as a person is shown it: each lost byte as U+FFFD."""
    return _LOST_BYTE.sub("\ufffd", cell)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A file as UTF-8 bytes without a BOM, and how it got there.

    `verified` is False when the bytes are the file's own, assumed to be UTF-8 but not
    yet checked; `may_fall_back` says whether invalid UTF-8 means "try the fallback
    codec" (encoding "auto", no BOM) or "mark the bytes that are not UTF-8".
    `lost_bytes`: the text holds lost-byte characters; `guessed`: the whole file was
    decoded with the fallback codec, a guess no byte of the file confirms.
    """

    data: bytes
    encoding: str
    notices: tuple[str, ...] = ()
    verified: bool = True
    may_fall_back: bool = False
    lost_bytes: bool = False
    guessed: bool = False


def decode(data: bytes, encoding: str = "auto", fallback_encoding: str = "cp1252") -> Decoded:
    """Turn a file's bytes into UTF-8 bytes, or raise FileRejected saying what to do."""
    _reject_binary(data)
    for bom, name in _BOMS:
        if data.startswith(bom):
            if name == "utf-8-sig":
                return _unchecked_utf8(data[len(bom) :], name, may_fall_back=False)
            return _transcode(data[len(bom) :], name, name)
    if encoding != "auto":
        codec = _codec_name(encoding)
        if codec == "utf-8":
            return _unchecked_utf8(data, encoding, may_fall_back=False)
        return _transcode(data, codec, encoding)
    wide = _bomless_utf16(data)
    if wide is not None:
        decoded = _transcode(data, wide, wide)
        notice = f"decoded as {wide}: the file has no byte order mark but looks like UTF-16"
        return Decoded(decoded.data, wide, (notice,))
    return _unchecked_utf8(data, "utf-8", may_fall_back=True)


def after_invalid_utf8(original: bytes, decoded: Decoded, fallback_encoding: str) -> Decoded:
    """What to read instead once `decoded.data` turned out not to be valid UTF-8.

    `original` is the file as received. A file holding any UTF-8 sequence at all is
    UTF-8 with some bytes lost (each marked, see LOST_BYTE_BASE); so is one whose BOM or
    profile says UTF-8. Only an "auto" file without a single UTF-8 sequence is decoded
    whole with the fallback codec.
    """
    position = _first_invalid_utf8(decoded.data)
    if position is None:
        return Decoded(decoded.data, decoded.encoding, decoded.notices)  # valid after all
    marked = decoded.data.decode("utf-8", errors=_LOST_HANDLER)
    # Each lost byte is one character, as is each ASCII byte: the text is shorter than
    # the bytes exactly when some multi-byte UTF-8 sequence was read.
    utf8_seen = len(marked) < len(decoded.data)
    if not decoded.may_fall_back or utf8_seen:
        why = "it holds UTF-8 text elsewhere" if utf8_seen else f"it is {decoded.encoding}"
        notice = (
            f"read as UTF-8 ({why}) although some bytes are not UTF-8, first {position}; "
            "the rows holding them are refused, and nothing was decoded as "
            f"{fallback_encoding}; {_SAVE_AS_CSV}"
        )
        return Decoded(
            marked.encode("utf-8"), decoded.encoding, (*decoded.notices, notice), lost_bytes=True
        )
    codec = _codec_name(fallback_encoding)
    try:
        text = original.decode(codec)
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"the file can be read neither as UTF-8 ({position}) nor as {fallback_encoding} "
            f"({_describe(exc)}); {_SAVE_AS_CSV}, or set the profile's encoding"
        ) from None
    _reject_nul(text)
    notice = (
        f"decoded as {fallback_encoding}: the file is not valid UTF-8 ({position}) and holds "
        "no UTF-8 text at all; keys and emails read through this guess are never stored "
        f"unless they match the directory: {_SAVE_AS_CSV} to be sure"
    )
    return Decoded(text.encode("utf-8"), fallback_encoding, (notice,), guessed=True)


def _unchecked_utf8(data: bytes, name: str, *, may_fall_back: bool) -> Decoded:
    if b"\x00" in data:
        _reject_nul("\x00")
    # ASCII is valid UTF-8; checking it is nearly free, and spares the parser the doubt.
    return Decoded(data, name, verified=data.isascii(), may_fall_back=may_fall_back)


def _transcode(data: bytes, codec: str, name: str) -> Decoded:
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"the file cannot be read as {name}: {_describe(exc)}; "
            f"{_SAVE_AS_CSV}, or set the profile's encoding to the one the file uses"
        ) from None
    _reject_nul(text)
    if codec.startswith(("utf-16", "utf-32")):
        _reject_misaligned(text, name)
    return Decoded(text.encode("utf-8"), name)


#: ASCII characters (tab to ~) as they read from UTF-16 one byte off: 0xXX00.
_SHIFTED = re.compile("[" + "".join(chr(b << 8) for b in range(0x09, 0x7F)) + "]")
_WIDE = re.compile("[^\x00-\xff]")


def _reject_misaligned(text: str, name: str) -> None:
    """A UTF-16 file that lost or gained a byte reads, from there on, as other characters:
    each ASCII character then comes out as the code point 0xXX00 (its byte moved to the
    high half), line ends included. Text where most characters above U+00FF are such
    code points is refused: every row after the broken byte would be gibberish.
    (Real text has them only by chance: one character in 256 of a CJK text.)"""
    shifted = _SHIFTED.findall(text)
    if len(shifted) < 4 or 2 * len(shifted) <= len(_WIDE.findall(text)):
        return
    first = _SHIFTED.search(text)
    line = text.count("\n", 0, first.start() if first else 0) + 1
    raise FileRejected(
        f"the file is {name}, but a byte is missing or extra in line {line:,}, so what "
        f"follows cannot be read; export the file again ({_SAVE_AS_CSV})"
    )


def _codec_name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise FileRejected(
            f"the profile's encoding {encoding!r} is not a known encoding; "
            "use a name such as utf-8, cp1252, latin-1 or utf-16, or 'auto'"
        ) from None


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM: in the first KB, every other byte is NUL (ASCII text)."""
    head = data[:1024]
    half = len(head) // 2
    if half < 2:
        return None
    even_nuls = head[0 : half * 2 : 2].count(0)
    odd_nuls = head[1 : half * 2 : 2].count(0)
    if odd_nuls >= 0.9 * half and even_nuls <= 0.1 * half:
        return "utf-16-le"
    if even_nuls >= 0.9 * half and odd_nuls <= 0.1 * half:
        return "utf-16-be"
    return None


#: The first bytes of every gzip member and every zstd frame.
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _reject_binary(data: bytes) -> None:
    head = data[:4096]
    if head.startswith(b"PK\x03\x04"):
        if b"xl/" in head or b"[Content_Types].xml" in head:
            raise FileRejected(f"this looks like an Excel workbook (.xlsx); {_SAVE_AS_CSV}")
        if b"opendocument.spreadsheet" in head:
            raise FileRejected(
                "this looks like an OpenDocument spreadsheet (.ods); save it as CSV and send that"
            )
        raise FileRejected("this is a ZIP archive, not a CSV file; unzip it and send the CSV")
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise FileRejected(f"this looks like an old Excel workbook (.xls); {_SAVE_AS_CSV}")
    if head.startswith(b"%PDF"):
        raise FileRejected("this is a PDF document, not a CSV file; export the data as CSV")
    if head.startswith(GZIP_MAGIC):
        raise FileRejected("this is a gzip archive, not a CSV file; decompress it first")
    if head.startswith(ZSTD_MAGIC):
        raise FileRejected("this is a zstd archive, not a CSV file; decompress it first")
    _reject_markup(head)


#: How a web page or an XML document starts (lower-cased), after any BOM and spaces.
_HTML_STARTS = (b"<!doctype html", b"<html", b"<table")


def _reject_markup(head: bytes) -> None:
    """Web pages and XML saved under .csv: many HR and web systems offer an "Excel"
    export that is an HTML table (or Excel's XML Spreadsheet 2003), which would
    otherwise read as a file of one odd column with no data rows."""
    start = head.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n").lower()
    if start.startswith(_HTML_STARTS):
        raise FileRejected(
            "this is a web page (HTML), not a CSV file: some systems save an HTML table "
            f"under .xls or .csv; open it in Excel and {_SAVE_AS_CSV}, or export CSV"
        )
    if start.startswith(b"<?xml"):
        if b"excel.sheet" in start or b"office:spreadsheet" in start:
            raise FileRejected(f"this looks like an Excel XML spreadsheet; {_SAVE_AS_CSV}")
        raise FileRejected("this is an XML document, not a CSV file; export the data as CSV")


def _reject_nul(text: str) -> None:
    if "\x00" in text:
        raise FileRejected(
            "the file is not text: it contains NUL bytes; "
            "export the data as CSV from the system it comes from"
        )


def _first_invalid_utf8(data: bytes) -> str | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _describe(exc)
    return None


def _describe(exc: UnicodeDecodeError) -> str:
    bad = exc.object[exc.start : exc.start + 1]
    line = exc.object.count(b"\n", 0, exc.start) + 1
    return f"byte 0x{bad.hex().upper()} at offset {exc.start:,}, line {line:,}"
