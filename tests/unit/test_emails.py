"""Email addresses: the fast pattern, the email-validator fallback and normalisation."""

from __future__ import annotations

import unicodedata

import polars as pl
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, find, given, settings
from hypothesis import strategies as st

from syncd.core.emails import check_email, decide, fast_accepts, keep_local_case


def fast(addresses: list[str]) -> list[bool]:
    frame = pl.DataFrame({"a": addresses}, schema={"a": pl.String})
    return frame.select(fast_accepts(pl.col("a")))["a"].to_list()


def accepted_by_email_validator(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@pytest.mark.parametrize(
    "address",
    [
        "jane@example.com",
        "Jane.Doe@Example.COM",
        "o'brien+hr@mail.example.co.uk",
        "a_b-c@sub-domain.example.org",
        "x@b.io",
        "user#1!$%&*/=?^`{|}~@example.com",
        "a@1.example.com",
        "jane@example.tests",
        "jane@example.loca",
        "jane@example.localhostx",
        "jane@example.onions",
    ],
)
def test_fast_pattern_accepts_common_addresses(address: str) -> None:
    """Ordinary addresses pass the vectorised pattern without email-validator."""
    assert fast([address]) == [True]


@pytest.mark.parametrize(
    "address",
    [
        "jane.@example.com",
        ".jane@example.com",
        "ja..ne@example.com",
        "jane@example",
        "jane@example..com",
        "jane@-example.com",
        "jane@example-.com",
        "jane@ab--cd.com",
        "jane@xn--bcher-kva.de",
        "jane@example.c0m",
        "jane@example.test",
        "jane@host.LOCAL",
        "jane@host.localhost",
        "jane@x.Onion",
        "jane@10.in-addr.arpa",
        "jane@mail.invalid",
        '"jane doe"@example.com',
        "jane@[192.0.2.1]",
        "jösé@example.com",
        "jane@bücher.de",
        "jane doe@example.com",
        "jane@@example.com",
        "jane",
        "@example.com",
        "jane@" + "a" * 40 + ".com",
        "j" * 250 + "@example.com",
    ],
)
def test_fast_pattern_leaves_near_misses_to_email_validator(address: str) -> None:
    """Anything unusual goes to the slow path, which has the last word."""
    assert fast([address]) == [False]


def test_a_blank_cell_is_not_fast_accepted() -> None:
    """A null cell is not an address (required-ness is decided elsewhere)."""
    frame = pl.DataFrame({"a": [None]}, schema={"a": pl.String})
    assert frame.select(fast_accepts(pl.col("a")))["a"].to_list() == [False]


def normalised(addresses: list[str]) -> list[str]:
    frame = pl.DataFrame({"a": addresses}, schema={"a": pl.String})
    cell = pl.col("a")
    return frame.select(keep_local_case(cell, cell.str.to_lowercase()))["a"].to_list()


def test_normalising_lower_cases_the_domain_only() -> None:
    """The local part is kept as given; the domain is lower-cased."""
    out = normalised(["Jane.Doe@Example.COM", "x@y.org"])
    assert out == ["Jane.Doe@example.com", "x@y.org"]


def test_email_validator_accepts_an_international_address_with_its_domain_lower_cased() -> None:
    """Addresses beyond the fast pattern are accepted when email-validator accepts them."""
    assert check_email("Jösé@Bücher.DE").address == "Jösé@bücher.de"


def test_email_validator_accepts_long_labels_the_fast_pattern_skips() -> None:
    """A 40-character label is valid DNS; the fallback accepts it."""
    label = "a" * 40
    assert check_email(f"jane@{label}.com").address == f"jane@{label}.com"


def test_email_validator_refusal_carries_its_message() -> None:
    """A refused address comes back with email-validator's own explanation."""
    verdict = check_email("jane@example")
    assert verdict.address is None
    assert verdict.problem == "The part after the @-sign is not valid. It should have a period."


# A grammar of ordinary addresses, each then given zero to three near-miss mutations:
# dots at the ends, double dots, odd or unicode characters, quoted locals, IP literals,
# long labels, hyphen games, special-use and numeric top-level domains, missing or
# doubled @, overall length.
_ATEXT = "abcxyzABCXYZ0189!#$%&'*+/=?^_`{|}~-"
_LETTERS = "abcdefxyzABCXYZ"
_atom = st.text(st.sampled_from(_ATEXT), min_size=1, max_size=8)
_local = st.lists(_atom, min_size=1, max_size=3).map(".".join)
_label = st.one_of(
    st.text(st.sampled_from(_LETTERS + "0129"), min_size=1, max_size=10),
    st.builds(
        lambda a, b: f"{a}-{b}",
        st.text(st.sampled_from(_LETTERS), min_size=1, max_size=5),
        st.text(st.sampled_from(_LETTERS + "09"), min_size=1, max_size=5),
    ),
    st.integers(min_value=28, max_value=70).map(lambda n: "a" * n),
    st.integers(min_value=25, max_value=40).map(lambda n: "a-" * n + "a"),
)
_tld = st.one_of(
    st.text(st.sampled_from(_LETTERS), min_size=1, max_size=6),
    st.sampled_from(["test", "local", "LocalHost", "onion", "arpa", "invalid", "example"]),
    st.sampled_from(["c0m", "123", "a-b", "xn--p1ai", "xn--zzz"]),
)
_domain = st.builds(
    lambda labels, tld: ".".join([*labels, tld]), st.lists(_label, min_size=1, max_size=3), _tld
)
_MUTATIONS = [
    lambda lp, d, x: (f".{lp}", d),
    lambda lp, d, x: (f"{lp}.", d),
    lambda lp, d, x: (lp.replace(".", "..", 1) if "." in lp else f"{lp}..x", d),
    lambda lp, d, x: (lp[: len(lp) // 2] + x + lp[len(lp) // 2 :], d),
    lambda lp, d, x: (lp, d[: len(d) // 2] + x + d[len(d) // 2 :]),
    lambda lp, d, x: (f'"{lp} {x}"', d),
    lambda lp, d, x: (lp, "[192.0.2.1]"),
    lambda lp, d, x: (lp, "[IPv6:2001:db8::1]"),
    lambda lp, d, x: (lp, f"{d}."),
    lambda lp, d, x: (lp, f".{d}"),
    lambda lp, d, x: (lp, d.replace(".", "..", 1)),
    lambda lp, d, x: (lp, f"-{d}"),
    lambda lp, d, x: (lp, d.replace(".", "-.", 1)),
    lambda lp, d, x: (lp, f"ab--{d}"),
    lambda lp, d, x: (lp, f"xn--{d}"),
    lambda lp, d, x: (lp, d.rpartition(".")[2]),
    lambda lp, d, x: (lp * 30, d),
    lambda lp, d, x: (lp.upper(), d.upper()),
    lambda lp, d, x: (f"{lp}@", d),
    lambda lp, d, x: ("", d),
]
_odd = st.sampled_from([*' "(),:;<>[]\\@.-_é߀\u200b\t\u0301', "ü", "xn--"])


@st.composite
def _address(draw: st.DrawFn) -> str:
    local, domain = draw(_local), draw(_domain)
    for mutate in draw(st.lists(st.sampled_from(_MUTATIONS), max_size=3)):
        local, domain = mutate(local, domain, draw(_odd))
    return f"{local}@{domain}"


@settings(max_examples=500, deadline=None)
@given(st.lists(_address(), min_size=1, max_size=60))
def test_fast_pattern_accepts_only_what_email_validator_accepts(addresses: list[str]) -> None:
    """Every address the fast pattern takes, email-validator takes too, same domain case."""
    for address, ok in zip(addresses, fast(addresses), strict=True):
        if not ok:
            continue
        result = validate_email(address, check_deliverability=False)
        local = address.rpartition("@")[0]
        assert normalised([address]) == [f"{local}@{result.domain}"]


@settings(max_examples=300, deadline=None)
@given(st.lists(_address(), min_size=1, max_size=40))
@example(["0@A\u0301.A"])  # a domain in NFD: stored in NFC, as email-validator has it
def test_deciding_undecided_addresses_agrees_with_email_validator(addresses: list[str]) -> None:
    """The per-domain shortcut gives exactly email-validator's verdict, address by address,
    on the address in NFC (the form addresses are judged and stored in)."""
    expected: list[str | None] = []
    for given_address in addresses:
        address = unicodedata.normalize("NFC", given_address)
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError:
            expected.append(None)
            continue
        local, _, domain = address.rpartition("@")
        expected.append(f"{local}@{domain.lower()}")
    assert decide(pl.Series(addresses)).to_list() == expected


def test_an_international_domain_is_judged_once_for_many_addresses() -> None:
    """Plain local parts at one domain share its verdict; the length limit still counts,
    also for the domain's IDNA form (xn--bcher-kva.de is longer than bücher.de)."""
    fits_ascii = "x" * (254 - len("@xn--bcher-kva.de"))
    fits_as_given_only = "x" * (254 - len("@bücher.de".encode()))
    addresses = [
        "Anna@Bücher.DE",
        "jösé@bücher.de",
        f"{fits_ascii}@bücher.de",
        f"{fits_as_given_only}@bücher.de",
        "bob@bücher",
    ]
    assert decide(pl.Series(addresses)).to_list() == [
        "Anna@bücher.de",
        "jösé@bücher.de",
        f"{fits_ascii}@bücher.de",
        None,
        None,
    ]


def test_the_grammar_produces_fast_refused_and_slow_accepted_addresses() -> None:
    """The property above is not vacuous: its grammar yields addresses of every kind."""
    find(_address(), lambda a: fast([a]) == [True])
    find(_address(), lambda a: fast([a]) == [False] and not accepted_by_email_validator(a))
    find(_address(), lambda a: fast([a]) == [False] and accepted_by_email_validator(a))
