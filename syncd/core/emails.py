"""Email addresses: a fast vectorised pattern for the common case, email-validator for the rest.

`FAST_EMAIL` accepts plain ASCII addresses only, and only ones that email-validator
accepts as well (tests/unit/test_emails.py proves it with Hypothesis), so a million
ordinary addresses are checked by one regex pass. Whatever the pattern does not accept
goes to `decide`, where email-validator has the last word (asked once per domain when
that is enough, also proved); `check_email` gives its reason for a refused address.
Addresses are stored with the domain lower-cased and the local part as given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from syncd.core.normal_form import is_lost, nfc, nfc_text

# RFC 5322 atext; email-validator accepts exactly these (plus dots between runs) before @.
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
# A DNS label with no hyphen at either end and never two in a row, which keeps
# email-validator's IDNA rules (R-LDH labels, Punycode "xn--") out of the fast path;
# at most 32 letters and digits, so never over the 63-character limit even with hyphens
# between them all (longer labels are rare and left to email-validator).
_LABEL = r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,31}"
# Special-use names email-validator refuses (its SPECIAL_USE_DOMAIN_NAMES); a dotted
# domain ends in one exactly when its last label is one.
SPECIAL_USE_TLDS = ("arpa", "invalid", "local", "localhost", "onion", "test")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _letters_except(excluded: Sequence[str]) -> str:
    return "".join(c + c.upper() for c in _LETTERS if c not in excluded)


def _label_except(words: Sequence[str], prefix: str = "", room: int = 63) -> str:
    """A pattern for labels of 1 to `room` letters (any case) other than `words`.

    The regex engine has no look-ahead, so "none of these words" is spelled out along
    the words' prefix tree: from `prefix`, either stop (unless `prefix` is a word), take
    a letter no word continues with and then any letters, or follow a word's next letter.
    """
    nexts = sorted({w[len(prefix)] for w in words if w.startswith(prefix) and w != prefix})
    ways = [] if prefix in words or not prefix else [""]
    if room > 0:
        ways.append(f"[{_letters_except(nexts)}][A-Za-z]{{0,{room - 1}}}")
        ways += [f"[{c}{c.upper()}]{_label_except(words, prefix + c, room - 1)}" for c in nexts]
    return f"(?:{'|'.join(ways)})"


# The top-level label: letters only (email-validator wants it to end with a letter),
# never a special-use name, so one regex pass decides.
_TLD = _label_except(SPECIAL_USE_TLDS)

FAST_EMAIL = rf"^[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@(?:{_LABEL}\.)+{_TLD}$"

EMAIL_MAX_LENGTH = 254

# A plain (ASCII dot-atom) local part up to the first @: email-validator accepts it
# as it is, so only the domain and the overall length remain to be judged.
_PLAIN_LOCAL = rf"^[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@"

# Only an upper-case letter before the @ keeps an address from being its lower-cased self.
_UPPER_IN_LOCAL = r"^[^@]*[A-Z]"


def fast_accepts(cell: pl.Expr) -> pl.Expr:
    """True where `cell` is an address the fast pattern vouches for; False elsewhere."""
    fast = cell.str.contains(FAST_EMAIL) & (cell.str.len_bytes() <= EMAIL_MAX_LENGTH)
    return fast.fill_null(False)


def upper_in_local(cell: pl.Expr) -> pl.Expr:
    """True where the part before the @ has an upper-case letter (it must keep it)."""
    return cell.str.contains(_UPPER_IN_LOCAL).fill_null(False)


def keep_local_case(cell: pl.Expr, lowered: pl.Expr) -> pl.Expr:
    """Local part as given, domain lower-cased, for addresses `fast_accepts` took (ASCII,
    so `lowered`, the whole address lower-cased, lines up with `cell` character by
    character)."""
    at = cell.str.find("@", literal=True)
    return pl.concat_str(cell.str.slice(0, at), lowered.str.slice(at))


@dataclass(frozen=True, slots=True)
class EmailVerdict:
    """email-validator's word on one address: the address to store, or why not."""

    address: str | None
    problem: str | None = None


def check_email(text: str) -> EmailVerdict:
    """Ask email-validator (no DNS) about one whole address, in NFC."""
    from email_validator import EmailNotValidError, validate_email  # only when asked

    text = nfc_text(text)
    if len(text) > 4 * EMAIL_MAX_LENGTH:
        # Far past any valid length (in any encoding): no need to make email-validator
        # parse a multi-megabyte cell to say so.
        return EmailVerdict(None, f"The email address is too long ({len(text):,} characters).")
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        return EmailVerdict(None, str(exc))
    except UnicodeError as exc:  # a codec failure deep in IDNA decoding is still "invalid"
        return EmailVerdict(None, f"The part after the @-sign is not valid IDNA ({exc}).")
    # Quoted local parts are refused by default, so the only @ left is the separator.
    local, _, domain = text.rpartition("@")
    return EmailVerdict(f"{local}@{domain.lower()}")


def _domain_room(domain: str) -> int | None:
    """None if email-validator refuses `domain`; else its longest form in UTF-8 bytes.

    The address is checked with the shortest plain local part, so the verdict holds for
    every plain local part as long as the whole stays within the length limit.
    """
    from email_validator import EmailNotValidError, validate_email  # only when asked

    try:
        result = validate_email(f"a@{domain}", check_deliverability=False)
    except (EmailNotValidError, UnicodeError):
        return None
    forms = (domain, result.domain, result.ascii_domain)
    return max(len(form.encode("utf-8")) for form in forms)


def decide(addresses: pl.Series, problems: dict[str, str] | None = None) -> pl.Series:
    """email-validator's verdict on addresses the fast pattern left undecided: the address
    to store (domain lower-cased), or null. `problems`, if given, gets email-validator's
    reason for each address it was asked about whole and refused (by the address as
    given), so explaining a refused row does not ask it again: on a file of 100,000 bad
    addresses, asking twice was half of the job's time.

    Mostly these are addresses at an international domain, and a file has few distinct
    domains: when the local part is plain, email-validator judges the domain alone (once
    per domain) and what remains is the length limit. Other addresses are asked whole.
    Addresses are judged and stored in NFC; one holding text lost to a wrong encoding is
    refused.
    """
    frame = pl.DataFrame({"a": addresses}, schema={"a": pl.String}).select(
        pl.when(~is_lost(pl.col("a"))).then(nfc(pl.col("a"))).alias("a")
    )
    frame = frame.with_columns(
        plain=pl.col("a").str.contains(_PLAIN_LOCAL).fill_null(False),
        at=pl.col("a").str.find("@", literal=True),
    )
    frame = frame.with_columns(
        local=pl.col("a").str.slice(0, pl.col("at")),
        domain=pl.col("a").str.slice(pl.col("at") + 1),
    )
    domains = frame.filter("plain")["domain"].unique().to_list()
    rooms = [_domain_room(d) for d in domains]
    room = pl.col("domain").replace_strict(domains, rooms, default=None, return_dtype=pl.Int64)
    fits = pl.col("local").str.len_bytes() + 1 + room <= EMAIL_MAX_LENGTH
    decided = frame.select(
        pl.when(pl.col("plain") & fits.fill_null(False)).then(
            pl.concat_str(pl.col("local"), pl.lit("@"), pl.col("domain").str.to_lowercase())
        )
    ).to_series()
    others = (~frame["plain"] & frame["a"].is_not_null()).arg_true()
    if others.len():
        verdicts = [check_email(a) for a in frame["a"].gather(others)]
        decided.scatter(others, [v.address for v in verdicts])
        if problems is not None:
            for given, verdict in zip(addresses.gather(others), verdicts, strict=True):
                if verdict.problem is not None:
                    problems[given] = verdict.problem
    return decided
