"""The store: everything syncd keeps in its database, through SQLAlchemy 2.x Core.

- `engine`: connecting (SQLite pragmas, psycopg for PostgreSQL) and the schema version.
- `schema`: the tables; `syncd/migrations` creates them.
- `directory`: reading the directory (planner frames, user views); `apply`: writing a plan.
- `jobs`: job records, row errors, retained files, job files, held state; `outbox`: mail.
- `bulk`: moving whole frames in and out fast (COPY, multi-row inserts, staged tables).
- `totals`: how many users and jobs a listing leaves out.

Every function takes a `Connection` and leaves the transaction to the caller. The names
below are the store's public API, importable from `syncd.store` directly.
"""

from syncd.core.status import JobStatus
from syncd.store.apply import apply_plan
from syncd.store.directory import (
    UserView,
    details,
    directory_id,
    find_user,
    list_users,
    lock_directory,
    snapshot,
    user_ids_of,
)
from syncd.store.engine import (
    SchemaState,
    connect,
    ensure_schema,
    make_engine,
    require_schema,
    schema_state,
    sqlite_file,
    upgrade,
)
from syncd.store.jobs import (
    Job,
    RetainedFile,
    add_row_errors,
    claim_next_job,
    drop_job_files,
    find_processed,
    finish_job,
    forget_held,
    get_job,
    held_digest,
    held_passwords,
    hold_plan,
    insert_job,
    interrupt_abandoned,
    job_file,
    list_jobs,
    purge_expired,
    put_job_file,
    renew_lease,
    replace_row_errors,
    requeue_expired,
    require_job,
    retain_file,
    retained_file,
    row_errors,
    start_job,
)
from syncd.store.outbox import (
    Attachment,
    OutboxMessage,
    add_message,
    list_messages,
    mark_failed,
    mark_sent,
)
from syncd.store.totals import count_jobs, count_users

__all__ = [
    "Attachment",
    "Job",
    "JobStatus",
    "OutboxMessage",
    "RetainedFile",
    "SchemaState",
    "UserView",
    "add_message",
    "add_row_errors",
    "apply_plan",
    "claim_next_job",
    "connect",
    "count_jobs",
    "count_users",
    "details",
    "directory_id",
    "drop_job_files",
    "ensure_schema",
    "find_processed",
    "find_user",
    "finish_job",
    "forget_held",
    "get_job",
    "held_digest",
    "held_passwords",
    "hold_plan",
    "insert_job",
    "interrupt_abandoned",
    "job_file",
    "list_jobs",
    "list_messages",
    "list_users",
    "lock_directory",
    "make_engine",
    "mark_failed",
    "mark_sent",
    "purge_expired",
    "put_job_file",
    "renew_lease",
    "replace_row_errors",
    "requeue_expired",
    "require_job",
    "require_schema",
    "retain_file",
    "retained_file",
    "row_errors",
    "schema_state",
    "snapshot",
    "sqlite_file",
    "start_job",
    "upgrade",
    "user_ids_of",
]
