"""Which digits a national (trunk) prefix can start with, read from its pattern.

phonenumbers' `parse` strips a national prefix (the 0 of 020 in the United Kingdom, the
1 of 1 212 in the United States) from the start of the national number where the
country's `national_prefix_for_parsing` pattern matches, or rewrites the start with the
country's transform rule. A national number whose first digit no non-empty match of the
pattern can start with is kept as written; `syncd.core.phones` decides those numbers
without phonenumbers. The patterns are regular expressions in a small part of Python's
syntax (digits, `\\d`, digit classes, groups, `|`, quantifiers, anchors); anything else
makes the answer "any digit", which leaves every number of that country to phonenumbers.
"""

from __future__ import annotations

_ALL_DIGITS = frozenset("0123456789")
_END = "\x00"


class _Unsure(Exception):
    """The pattern uses syntax the analysis below does not know."""


def national_prefix_starts(pattern: str, transforms: bool) -> frozenset[str]:
    """The digits a non-empty match of a national-prefix pattern can start with.

    `parse` strips (or, with a transform rule, rewrites) the national number's start
    where `pattern` matches there, so a number whose first digit is not among these is
    kept as written. The answer may be too large, never too small: unknown syntax gives
    every digit, as does a capturing group that can match nothing under a transform rule
    (an empty match would then still rewrite the number).
    """
    reader = _PrefixPattern(pattern)
    try:
        first, _ = reader.alternatives()
        if reader.at != len(pattern):
            raise _Unsure
    except _Unsure:
        return _ALL_DIGITS
    if transforms and reader.empty_group:
        return _ALL_DIGITS
    return first


class _PrefixPattern:
    """A reader of the regex syntax national-prefix patterns use: digits, `\\d`, digit
    classes, groups, `|`, quantifiers and anchors. Each part gives (first digits, can it
    match nothing)."""

    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0
        self.empty_group = False

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else _END

    def take(self) -> str:
        char = self.peek()
        self.at += 1
        return char

    def alternatives(self) -> tuple[frozenset[str], bool]:
        first, empty = self.sequence()
        while self.peek() == "|":
            self.take()
            more, also_empty = self.sequence()
            first, empty = first | more, empty or also_empty
        return first, empty

    def sequence(self) -> tuple[frozenset[str], bool]:
        first: frozenset[str] = frozenset()
        empty = True
        while self.peek() not in (_END, "|", ")"):
            part, part_empty = self.repeated()
            if empty:
                first |= part
            empty = empty and part_empty
        return first, empty

    def repeated(self) -> tuple[frozenset[str], bool]:
        first, empty = self.atom()
        char = self.peek()
        if char in ("?", "*"):
            self.take()
            empty = True
        elif char == "+":
            self.take()
        elif char == "{":
            self.take()
            least = ""
            while self.peek().isdigit():
                least += self.take()
            while self.peek() != "}":
                if self.take() not in ",0123456789":
                    raise _Unsure
            self.take()
            empty = empty or int(least or "0") == 0
        else:
            return first, empty
        if self.peek() == "?":  # lazy: matches the same strings
            self.take()
        return first, empty

    def atom(self) -> tuple[frozenset[str], bool]:
        char = self.take()
        if char in _ALL_DIGITS:
            return frozenset(char), False
        if char == "\\" and self.take() == "d":
            return _ALL_DIGITS, False
        if char == "[":
            return self.digit_class(), False
        if char in ("^", "$"):
            return frozenset(), True
        if char == "(":
            capturing = not self.text.startswith("?", self.at)
            if not capturing:
                if not self.text.startswith("?:", self.at):
                    raise _Unsure
                self.at += 2
            first, empty = self.alternatives()
            if self.take() != ")":
                raise _Unsure
            self.empty_group = self.empty_group or (capturing and empty)
            return first, empty
        raise _Unsure

    def digit_class(self) -> frozenset[str]:
        found: set[str] = set()
        while (char := self.take()) != "]":
            if char == "\\" and self.take() == "d":
                found |= _ALL_DIGITS
            elif char in _ALL_DIGITS and self.peek() == "-":
                self.take()
                last = self.take()
                if last not in _ALL_DIGITS:
                    raise _Unsure
                found |= {str(d) for d in range(int(char), int(last) + 1)}
            elif char in _ALL_DIGITS:
                found.add(char)
            else:  # negation, letters, the end of the pattern
                raise _Unsure
        return frozenset(found)
