"""Job IDs: readable, time-ordered, forgiving when typed back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from syncd.core.job_id import EPOCH_MS, new_job_id, normalise_job_id


def test_an_id_is_ten_crockford_characters_with_one_dash() -> None:
    """The ID reads over the phone: 11 characters in two groups of five."""
    job_id = new_job_id(EPOCH_MS + 123_456_789, b"\x12\x34")
    assert len(job_id) == 11
    assert job_id[5] == "-"
    assert set(job_id.replace("-", "")) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


@given(st.integers(EPOCH_MS, EPOCH_MS + 10**12), st.integers(100, 10**9))
def test_ids_sort_in_time_order(earlier: int, gap: int) -> None:
    """An ID minted a tenth of a second or more later sorts after, whatever the entropy."""
    assert new_job_id(earlier, b"\xff\xff") < new_job_id(earlier + gap, b"\x00\x00")


def test_typed_ids_are_normalised_case_dash_and_lookalikes() -> None:
    """Lower case, missing dash, spaces and I/L/O for 1/1/0 find the same job."""
    job_id = new_job_id(EPOCH_MS + 987_654_321_000, b"\xab\xcd")
    typed = job_id.lower().replace("-", " ").replace("1", "l").replace("0", "o")
    assert normalise_job_id(typed) == job_id
    assert normalise_job_id(job_id.replace("-", "")) == job_id


def test_text_that_cannot_be_an_id_is_refused() -> None:
    """Wrong length or a U (not in Crockford's alphabet) is not an ID."""
    assert normalise_job_id("7K3M-9QX2") is None
    assert normalise_job_id("UUUUU-UUUUU") is None
