"""Text in one Unicode normal form, and text lost to a wrong encoding.

The same name can be written as different code points: `é` as one (NFC, what most systems
write) or as `e` plus a combining accent (NFD, what some exports write). Keys, emails and
names are compared in NFC, as email-validator normalises addresses; a cell is rewritten only
when it holds a character NFC could change, which `SUSPECT` finds in one regex pass over a
whole column.

Lost text (`syncd.core.decoding.LOST_CHARACTERS`: bytes that were not UTF-8, or U+FFFD left
by another program) is never stored: a cell holding it fails its row.
"""

from __future__ import annotations

import unicodedata

import polars as pl

from syncd.core.decoding import LOST_CHARACTERS

#: Hangul vowel and final jamo: conjoining letters, not marks, that NFC composes into
#: syllables (which Unicode decomposes by algorithm, so no table lists them).
_HANGUL_JAMO = "\u1161-\u1175\u11a8-\u11c2"
#: Characters that are not marks but that NFC replaces (singletons such as the Ohm sign,
#: CJK compatibility ideographs) or composes with what precedes them. Every character NFC
#: can change, or that can change its neighbour, is a mark (\p{M}), one of these, or a jamo
#: (tests/unit/test_normal_form.py checks this against the running Python's database).
_NOT_MARKS = (
    "\u0374\u037e\u0387\u0958-\u095f\u09dc-\u09dd\u09df\u0a33\u0a36\u0a59-\u0a5b\u0a5e"
    "\u0b5c-\u0b5d\u0f43\u0f4d\u0f52\u0f57\u0f5c\u0f69\u1f71\u1f73\u1f75\u1f77\u1f79\u1f7b"
    "\u1f7d\u1fbb\u1fbe\u1fc9\u1fcb\u1fd3\u1fdb\u1fe3\u1feb\u1fee-\u1fef\u1ff9\u1ffb\u1ffd"
    "\u2000-\u2001\u2126\u212a-\u212b\u2329-\u232a\u2adc\uf900-\ufa0d\ufa10\ufa12"
    "\ufa15-\ufa1e\ufa20\ufa22\ufa25-\ufa26\ufa2a-\ufa6d\ufa70-\ufad9\ufb1d\ufb1f"
    "\ufb2a-\ufb36\ufb38-\ufb3c\ufb3e\ufb40-\ufb41\ufb43-\ufb44\ufb46-\ufb4e"
    "\U0001d15e-\U0001d164\U0001d1bb-\U0001d1c0\U0002f800-\U0002fa1d"
)
#: A character NFC might change, or one standing for lost text: a cell without any is
#: already in NFC and whole.
SUSPECT = f"[\\p{{M}}{_HANGUL_JAMO}{_NOT_MARKS}{LOST_CHARACTERS[1:-1]}]"


def any_suspect(cells: pl.Expr) -> pl.Expr:
    """One boolean for a whole column: does any cell hold a SUSPECT character?

    One regex pass over the column joined into one string is far cheaper than a pass
    cell by cell, and almost every column of every file answers no. Every SUSPECT
    character is outside ASCII, so only the cells that are not ASCII (more bytes than
    characters) are joined: a third of the time on a column of names.
    """
    ascii_only = cells.str.len_bytes() == cells.str.len_chars()
    return cells.filter(~ascii_only).str.join("").str.contains(SUSPECT).fill_null(False)


def nfc(cells: pl.Expr) -> pl.Expr:
    """The cells in NFC (only worth running on a column `any_suspect` flagged)."""
    return cells.str.normalize("NFC")


def is_lost(cells: pl.Expr) -> pl.Expr:
    """True where a cell holds lost text; null stays null."""
    return cells.str.contains(LOST_CHARACTERS)


def nfc_text(text: str) -> str:
    """One text in NFC."""
    return unicodedata.normalize("NFC", text)
