"""What a job changed, user by user: the changes frame and `<job_id>-changes.csv`.

Pure and columnar, like the planner it reads. Inputs:

- a `Plan` (`syncd.core.plan`);
- `details`: the stored values the planner compared (the `details` frame of
  `syncd.core.plan`: `user_id`, one column per directory field in the records'
  representation, `password_tag`), and optionally `extra`, the stored `email` of users
  the plan touches that `details` does not hold (users archived for being absent and
  reactivated users whose fields did not change are not compared, so the store never
  fetched them: `missing_users(plan, details)` names them).

The changes frame (every column `String`, empty text rather than null):
  `change`: `create` | `update` | `rename` | `reactivate` | `archive`;
  `key`, `email`: the user's key and email (the new email when it changes);
  `field`, `old`, `new`: for `update`, the field (custom fields without their `field:`
  prefix) and its stored and new value, lists as items joined by `, `; for `rename`,
  `email` and the old and new address; for `reactivate`, `status` from `archived` to
  `active`; for `archive`, `reason` and why (`absent from the file`, or `status Archived`
  in the file); blank for `create`.

One line per created, reactivated or archived user, one per changed field of an updated
user, one per email change. The users of the file come first in file order (a
reactivation or an email change before that user's field updates), then the archived.
A password is never shown: its change is a line of field `password` with both values
blank, and neither a password nor its tag is read into the frame.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import polars as pl

from syncd.core.formula import neutralised
from syncd.core.plan import Plan
from syncd.core.records import CUSTOM_PREFIX
from syncd.core.table import ROW

#: The columns of the changes frame and of the changes CSV, in order.
CHANGE_COLUMNS = ("change", "key", "email", "field", "old", "new")
#: The columns of the CSV of users a held job would archive.
ARCHIVED_COLUMNS = ("key", "email", "reason")
#: How a list is shown in one cell.
LIST_JOIN = ", "
#: Why a user is archived, as the `archives` frame says it and as people read it.
ARCHIVE_REASONS = {"absent": "absent from the file", "status": "status Archived"}
#: Fields whose values are never shown, only that they changed.
SECRET_FIELDS = frozenset({"password"})

_SCHEMA = pl.Schema(dict.fromkeys(CHANGE_COLUMNS, pl.String))
_BOM = "\ufeff"
# Sort keys: the file's users by row, then the archived; within a row, these first.
_FIRST = {"reactivate": 0, "rename": 1}
_UPDATE_RANK = 2
_ARCHIVE_SECTION = 1


def missing_users(plan: Plan, details: pl.DataFrame) -> pl.Series:
    """The `user_id`s whose email `plan_changes` needs and `details` lacks: fetch their
    stored `email` and pass them as `extra`."""
    wanted = pl.concat(
        [plan.updates.get_column("user_id").cast(pl.Int64), plan.archives["user_id"].cast(pl.Int64)]
    )
    known = details.get_column("user_id").cast(pl.Int64) if "user_id" in details.columns else None
    if known is not None:
        wanted = wanted.filter(~wanted.is_in(known.implode()))
    return wanted.unique().sort().rename("user_id")


def _text(frame: pl.DataFrame, name: str) -> pl.Expr:
    """A column of `frame` as display text: lists joined, null as ""."""
    if name not in frame.columns:
        return pl.lit("")
    dtype = frame.schema[name]
    if isinstance(dtype, pl.List):
        return pl.col(name).cast(pl.List(pl.String)).list.join(LIST_JOIN).fill_null("")
    return pl.col(name).cast(pl.String).fill_null("")


def _shown(field: str) -> str:
    return field.removeprefix(CUSTOM_PREFIX)


def _stored_emails(details: pl.DataFrame, extra: pl.DataFrame | None) -> pl.DataFrame:
    """`user_id` -> stored `email`, from details first, then extra."""
    parts = [
        frame.select(pl.col("user_id").cast(pl.Int64), _text(frame, "email").alias("s_email"))
        for frame in (details, extra)
        if frame is not None and "user_id" in frame.columns
    ]
    if not parts:
        return pl.DataFrame(schema={"user_id": pl.Int64, "s_email": pl.String})
    return pl.concat(parts).unique("user_id", keep="first", maintain_order=True)


def _lines(frame: pl.DataFrame, *columns: pl.Expr) -> pl.DataFrame:
    """Change lines with their sort keys `_section`, `_row`, `_rank`."""
    return frame.select(*columns).select(*CHANGE_COLUMNS, "_section", "_row", "_rank")


def _sort_keys(row: pl.Expr, rank: int | pl.Expr) -> list[pl.Expr]:
    rank_expr = rank if isinstance(rank, pl.Expr) else pl.lit(rank)
    return [
        pl.lit(0, pl.Int8).alias("_section"),
        row.cast(pl.Int64).alias("_row"),
        rank_expr.cast(pl.Int32).alias("_rank"),
    ]


def _creates(plan: Plan) -> pl.DataFrame:
    creates = plan.creates
    return _lines(
        creates,
        pl.lit("create").alias("change"),
        _text(creates, "key").alias("key"),
        _text(creates, "email").alias("email"),
        *(pl.lit("").alias(name) for name in ("field", "old", "new")),
        *_sort_keys(pl.col(ROW), 0),
    )


def _updates(plan: Plan, details: pl.DataFrame, emails: pl.DataFrame) -> list[pl.DataFrame]:
    """Reactivations, email changes and one line per changed field."""
    updates = plan.updates.join(emails, on="user_id", how="left")
    new_email = _text(updates, "email") if "email" in updates.columns else pl.col("s_email")
    email = pl.when(new_email != "").then(new_email).otherwise(pl.col("s_email").fill_null(""))
    common = [pl.col("key").alias("key"), email.alias("email")]
    out = [
        _lines(
            updates.filter(pl.col("reactivate")),
            pl.lit("reactivate").alias("change"),
            *common,
            pl.lit("status").alias("field"),
            pl.lit("archived").alias("old"),
            pl.lit("active").alias("new"),
            *_sort_keys(pl.col(ROW), _FIRST["reactivate"]),
        )
    ]
    changed = updates.get_column("changed")
    fields = sorted(set(changed.explode().drop_nulls().to_list()), key=_field_order(plan))
    stored_suffix = "\x00old"
    for rank, name in enumerate(fields, start=_UPDATE_RANK):
        rows = updates.filter(pl.col("changed").list.contains(name))
        if name in SECRET_FIELDS:
            old, new = pl.lit(""), pl.lit("")
        else:
            if name in details.columns:
                stored = details.select(
                    pl.col("user_id").cast(pl.Int64), pl.col(name).alias(name + stored_suffix)
                )
                rows = rows.join(stored, on="user_id", how="left")
            old, new = _text(rows, name + stored_suffix), _text(rows, name)
        change: pl.Expr = pl.lit("update")
        row_rank: pl.Expr = pl.lit(rank)
        if name == "email":
            # An email change is reported as such; a change of case only is an update.
            change = pl.when(pl.col("email_changed")).then(pl.lit("rename")).otherwise(change)
            row_rank = pl.when(pl.col("email_changed")).then(_FIRST["rename"]).otherwise(rank)
        out.append(
            _lines(
                rows,
                change.alias("change"),
                *common,
                pl.lit(_shown(name)).alias("field"),
                old.alias("old"),
                new.alias("new"),
                *_sort_keys(pl.col(ROW), row_rank),
            )
        )
    return out


def _field_order(plan: Plan) -> Callable[[str], tuple[bool, int, str]]:
    """Fields in the order the profile gives them; the password last."""
    order = {name: i for i, name in enumerate(plan.fields)}

    def key(name: str) -> tuple[bool, int, str]:
        return (name in SECRET_FIELDS, order.get(name, len(order)), name)

    return key


def _archives(plan: Plan, emails: pl.DataFrame) -> pl.DataFrame:
    archives = plan.archives.with_columns(pl.col("user_id").cast(pl.Int64)).join(
        emails, on="user_id", how="left"
    )
    reason = pl.col("reason").replace_strict(ARCHIVE_REASONS, default=pl.col("reason"))
    return _lines(
        archives,
        pl.lit("archive").alias("change"),
        pl.col("key").cast(pl.String).alias("key"),
        pl.col("s_email").fill_null("").alias("email"),
        pl.lit("reason").alias("field"),
        pl.lit("").alias("old"),
        reason.cast(pl.String).alias("new"),
        # Archived because the row says so first, then the absent, each by key.
        pl.lit(_ARCHIVE_SECTION, pl.Int8).alias("_section"),
        (pl.col("reason") != "status").cast(pl.Int64).alias("_row"),
        pl.lit(0, pl.Int32).alias("_rank"),
    )


def plan_changes(
    plan: Plan, details: pl.DataFrame, extra: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The changes frame of `plan` (see the module docstring); `extra`: the stored
    `email` (with `user_id`) of the users `missing_users(plan, details)` names."""
    emails = _stored_emails(details, extra)
    parts = [_creates(plan), *_updates(plan, details, emails), _archives(plan, emails)]
    found = [part for part in parts if part.height]
    if not found:
        return no_changes()
    lines = pl.concat(found, how="vertical")
    lines = lines.sort("_section", "_row", "_rank", "key", maintain_order=True)
    return lines.select(*CHANGE_COLUMNS)


def no_changes() -> pl.DataFrame:
    """The changes frame of a plan that changes nothing."""
    return pl.DataFrame(schema=_SCHEMA)


def archived_users(changes: pl.DataFrame) -> pl.DataFrame:
    """The users a changes frame archives: `key`, `email`, `reason` (in words)."""
    return changes.filter(pl.col("change") == "archive").select(
        "key", "email", reason=pl.col("new")
    )


def _csv(frame: pl.DataFrame, columns: tuple[str, ...]) -> bytes:
    """UTF-8 with a BOM, CRLF, every cell neutralised: the errors CSV's conventions.
    Columnar (a first load lists a million users); an empty cell is written empty, as
    `csv.writer` writes it, not as `""`."""
    cells = [cell.replace("", None) for cell in neutralised(frame, columns)]
    out = io.BytesIO()
    out.write(_BOM.encode("utf-8"))
    frame.select(cells).write_csv(out, line_terminator="\r\n", quote_style="necessary")
    return out.getvalue()


def render_changes_csv(changes: pl.DataFrame) -> bytes:
    """`<job_id>-changes.csv`: the changes frame for a spreadsheet."""
    return _csv(changes, CHANGE_COLUMNS)


def render_archived_csv(archived: pl.DataFrame) -> bytes:
    """`<job_id>-archived.csv`: the users a held job would archive (`archived_users`)."""
    return _csv(archived, ARCHIVED_COLUMNS)
