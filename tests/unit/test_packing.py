"""The copies kept of received files (`syncd.packing`): what is packed, whole or part by
part, unpacks to exactly those bytes; a copy kept before, gzip, still reads back."""

from __future__ import annotations

import gzip

from hypothesis import given
from hypothesis import strategies as st

from syncd.packing import pack, packer, unpack


@given(st.binary(max_size=200_000))
def test_packed_bytes_unpack_to_themselves(data: bytes) -> None:
    assert unpack(pack(data)) == data


@given(st.lists(st.binary(max_size=50_000), max_size=6))
def test_a_file_packed_part_by_part_unpacks_to_the_whole(parts: list[bytes]) -> None:
    packing = packer()
    packed = b"".join(packing.compress(part) for part in parts) + packing.flush()
    assert unpack(packed) == b"".join(parts)


@given(st.binary(max_size=200_000))
def test_a_copy_kept_as_gzip_before_still_unpacks(data: bytes) -> None:
    assert unpack(gzip.compress(data, 1)) == data


def test_a_packed_export_is_smaller_than_it_was() -> None:
    export = b"".join(b"E%06d,user%d@example.com,Ann,Lee,Sales\r\n" % (i, i) for i in range(20_000))
    assert len(pack(export)) < len(export) / 3
