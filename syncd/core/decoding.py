"""Bytes to UTF-8: which encoding a file is in, and refusing what is not text at all.

A BOM decides; else a configured codec, strictly; else UTF-8, else the fallback codec
(cp1252 by default) with a notice. Whatever the source encoding, the result is UTF-8
bytes without a BOM, which is what the parser wants. Plain UTF-8 input is not decoded
here at all (decoding 120 MB in Python costs more than parsing it): the parser checks it
and calls `after_invalid_utf8` if it is not valid.
"""

from __future__ import annotations

import codecs
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


@dataclass(frozen=True, slots=True)
class Decoded:
    """A file as UTF-8 bytes without a BOM, and how it got there.

    `verified` is False when the bytes are the file's own, assumed to be UTF-8 but not
    yet checked; `may_fall_back` says whether invalid UTF-8 means "try the fallback
    codec" (encoding "auto", no BOM) or "reject the file".
    """

    data: bytes
    encoding: str
    notices: tuple[str, ...] = ()
    verified: bool = True
    may_fall_back: bool = False


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

    `original` is the file as received. Only an "auto" encoding falls back; a BOM or a
    configured UTF-8 makes invalid bytes a file-level problem.
    """
    position = _first_invalid_utf8(decoded.data)
    if position is None:
        return Decoded(decoded.data, decoded.encoding, decoded.notices)  # valid after all
    if not decoded.may_fall_back:
        raise FileRejected(
            f"the file is not valid {decoded.encoding}: {position}; "
            f"{_SAVE_AS_CSV}, or set the profile's encoding to the one the file uses"
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
    notice = f"decoded as {fallback_encoding}: the file is not valid UTF-8 ({position})"
    return Decoded(text.encode("utf-8"), fallback_encoding, (notice,))


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
    return Decoded(text.encode("utf-8"), name)


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
    if head.startswith(b"\x1f\x8b"):
        raise FileRejected("this is a gzip archive, not a CSV file; decompress it first")


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
