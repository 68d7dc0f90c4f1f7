"""Text from senders as a person is shown it: on one line, as it reads.

A file's name is the sender's to choose, and messages quote it: a line break in it
would start a line of its own in a report ("File: x" then a made-up line), a carriage
return lets it overwrite what a terminal shows before it, ESC sequences recolour or
clear the screen, and bidirectional overrides make `gpj.exe` read as `exe.jpg`. Each
such character is shown as its escape (`\\n`, `\\x1b`, `\\u202e`) instead; everything
else, accents and emoji included, is shown as it is.
"""

from __future__ import annotations

import unicodedata

#: Control characters, format characters (bidi overrides, zero-width ones), line and
#: paragraph separators, and lone surrogates (bytes of a name that was not UTF-8).
_UNSHOWN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
#: Format characters that are part of how text reads: the joiners of emoji sequences
#: (👩‍💻) and of Indic and Persian scripts.
_SHOWN = frozenset("\u200c\u200d")


def printable(text: str) -> str:
    """`text` with control, invisible, line-separating and direction-overriding characters
    escaped."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in _UNSHOWN and ch not in _SHOWN
        else ch
        for ch in text
    )
