"""Text from senders as a person is shown it: on one line, as it reads.

A file's name is the sender's to choose, and messages quote it: a line break in it
would start a line of its own in a report ("File: x" then a made-up line), a carriage
return lets it overwrite what a terminal shows before it, ESC sequences recolour or
clear the screen, and bidirectional overrides make `gpj.exe` read as `exe.jpg`. Each
such character is shown as its escape (`\\n`, `\\x1b`, `\\u202e`) instead; everything
else, accents and emoji included, is shown as it is.
"""

from __future__ import annotations

import re

_UNSHOWN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with control, line-separating and direction-overriding characters escaped."""
    return _UNSHOWN.sub(lambda found: found.group().encode("unicode_escape").decode(), text)
