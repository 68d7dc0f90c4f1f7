"""Outbox messages stored whole, and a `sending` state.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

- A report is stored as the RFC 5322 bytes it is sent as (`content`), with its
  `Message-ID` (unique) and its `kind` (applied, held, ...): every attempt sends the same
  bytes. The separate `text`, `html` and `attachment` columns go.
- `status` may be `sending`: a sender holds the message until `next_attempt_at`.

Messages queued before (no syncd wrote any, but a database may hold some) are turned
into whole messages from their columns, and back on downgrade.
"""

from __future__ import annotations

import email.policy
from collections.abc import Sequence
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import make_msgid

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES_BEFORE = "'pending', 'sent', 'failed'"
_STATUSES = "'pending', 'sending', 'sent', 'failed'"
_OLD_COLUMNS = ("text", "html", "attachment_name", "attachment")


def _old_outbox() -> sa.TableClause:
    return sa.table(
        "outbox",
        sa.column("id", sa.BigInteger()),
        sa.column("job_id", sa.String()),
        sa.column("recipients", sa.JSON()),
        sa.column("subject", sa.String()),
        sa.column("text", sa.String()),
        sa.column("html", sa.String()),
        sa.column("attachment_name", sa.String()),
        sa.column("attachment", sa.LargeBinary()),
        sa.column("message_id", sa.String()),
        sa.column("content", sa.LargeBinary()),
        sa.column("status", sa.String()),
    )


def _whole(row: sa.Row[tuple[object, ...]]) -> tuple[str, bytes]:
    message = EmailMessage()
    message["Subject"] = row.subject
    message["From"] = "syncd@localhost"
    message["To"] = ", ".join(row.recipients or [])
    message["Message-ID"] = make_msgid(idstring=row.job_id or None)
    message.set_content(row.text or "")
    if row.html:
        message.add_alternative(row.html, subtype="html")
    if row.attachment is not None:
        message.add_attachment(
            row.attachment, maintype="text", subtype="csv", filename=row.attachment_name
        )
    return str(message["Message-ID"]), message.as_bytes(policy=email.policy.SMTP)


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("kind", sa.String()))
        batch.add_column(sa.Column("message_id", sa.String()))
        batch.add_column(sa.Column("content", sa.LargeBinary()))
        batch.drop_constraint("ck_outbox_status", type_="check")
        batch.create_check_constraint("ck_outbox_status", sa.text(f"status IN ({_STATUSES})"))
    conn = op.get_bind()
    table = _old_outbox()
    for row in conn.execute(sa.select(table)).all():
        message_id, content = _whole(row)
        conn.execute(
            sa.update(table)
            .where(table.c.id == row.id)
            .values(message_id=message_id, content=content)
        )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("message_id", existing_type=sa.String(), nullable=False)
        batch.alter_column("content", existing_type=sa.LargeBinary(), nullable=False)
        for name in _OLD_COLUMNS:
            batch.drop_column(name)
        batch.create_unique_constraint("uq_outbox_message_id", ["message_id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint("uq_outbox_message_id", type_="unique")
        batch.add_column(sa.Column("text", sa.String()))
        batch.add_column(sa.Column("html", sa.String()))
        batch.add_column(sa.Column("attachment_name", sa.String()))
        batch.add_column(sa.Column("attachment", sa.LargeBinary()))
    conn = op.get_bind()
    table = _old_outbox()
    for row in conn.execute(sa.select(table)).all():
        message = BytesParser(policy=email.policy.default).parsebytes(row.content)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain",))
        html = message.get_body(("html",))
        attachment = next(message.iter_attachments(), None)
        payload = attachment.get_payload(decode=True) if attachment is not None else None
        conn.execute(
            sa.update(table)
            .where(table.c.id == row.id)
            .values(
                text=body.get_content() if body is not None else "",
                html=html.get_content() if html is not None else None,
                attachment_name=attachment.get_filename() if attachment is not None else None,
                attachment=payload if isinstance(payload, bytes) else None,
                # A message some sender held goes back to waiting.
                status="pending" if row.status == "sending" else row.status,
            )
        )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("text", existing_type=sa.String(), nullable=False)
        batch.drop_column("content")
        batch.drop_column("message_id")
        batch.drop_column("kind")
        batch.drop_constraint("ck_outbox_status", type_="check")
        batch.create_check_constraint(
            "ck_outbox_status", sa.text(f"status IN ({_STATUSES_BEFORE})")
        )
