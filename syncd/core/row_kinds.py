"""What a row of a file does to its user: create, reactivate, archive, update, or nothing.

The planner decides each row's kind on the narrow frame of the row beside its stored user
(`syncd.core.plan.match`); the refusals (`syncd.core.refusals`) read it too.
"""

from __future__ import annotations

import polars as pl

#: What a row does to its user; an Enum (one byte a row) rather than text.
KINDS = pl.Enum(["create", "reactivate", "archive", "update", "unchanged"])
KIND = pl.col("_kind")
WRITES = (KIND == "reactivate") | (KIND == "update") | ((KIND == "archive") & pl.col("_changes"))


def with_kind(rows: pl.DataFrame) -> pl.DataFrame:
    """Add `_kind`: what the row does to its user, given `_changes` (any field differs)."""
    was_active, now = pl.col("s_active"), pl.col("status")
    kind = (
        # No stored user: create, archived if the row says so (importing history).
        pl.when(pl.col("user_id").is_null())
        .then(pl.lit("create"))
        # An archived user who comes back active is reactivated, whatever else changed.
        .when(~was_active & (now == "active"))
        .then(pl.lit("reactivate"))
        # An Archived row archives its active user (field changes ride along).
        .when(was_active & (now == "archived"))
        .then(pl.lit("archive"))
        # Same status: only real differences make an update.
        .when(pl.col("_changes"))
        .then(pl.lit("update"))
        .otherwise(pl.lit("unchanged"))
    )
    return rows.with_columns(kind.cast(KINDS).alias("_kind"))
