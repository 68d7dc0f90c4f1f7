"""The store: everything syncd keeps in its database, through SQLAlchemy 2.x Core.

- `engine`: connecting (SQLite pragmas, psycopg for PostgreSQL) and the schema version.
- `schema`: the tables; `syncd/migrations` creates them.
- `directory`: reading the directory (planner frames, user views); `apply`: writing a plan.
  `ahead`: the planner's snapshot read on a second connection while a file is validated.
- `jobs`: job records and row errors; `queue`: the daemon's claims, file order and leases;
  `job_files`: retained inputs, errors CSVs and held state; `outbox`: report mail.
- `bulk`: moving whole frames in and out fast (COPY, multi-row inserts, staged tables).
  `pgcopy`: PostgreSQL's COPY of frames, binary or CSV.
- `totals`: how many users and jobs a listing leaves out.

Every function takes a `Connection` and leaves the transaction to the caller. The names
below are the store's public API, importable from `syncd.store` directly.
"""

from syncd.core.status import JobStatus
from syncd.store.ahead import SnapshotAhead, prune_users_writes, snapshot_ahead
from syncd.store.apply import apply_plan
from syncd.store.directory import (
    UserView,
    details,
    directory_id,
    find_user,
    fingerprint_sums,
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
from syncd.store.job_files import (
    RetainedFile,
    drop_job_files,
    forget_held,
    held_digest,
    held_passwords,
    hold_plan,
    job_file,
    kept_files,
    latest_files,
    purge_expired,
    put_job_file,
    retain_file,
    retained_file,
)
from syncd.store.job_records import (
    Job,
    add_row_errors,
    count_row_errors,
    directory_stamp,
    failed_rows,
    find_processed,
    finish_job,
    forget_job,
    get_job,
    insert_job,
    jobs_by_id,
    last_full_file,
    list_jobs,
    replace_row_errors,
    require_job,
    row_errors,
)
from syncd.store.outbox import (
    Attachment,
    OutboxMessage,
    add_message,
    list_messages,
    mark_failed,
    mark_sent,
)
from syncd.store.queue import (
    claim_next_job,
    claimed_job,
    queue_file,
    recover_abandoned,
    release_job,
    renew_lease,
    set_content,
    start_job,
)
from syncd.store.totals import count_jobs, count_users

__all__ = [
    "Attachment",
    "Job",
    "JobStatus",
    "OutboxMessage",
    "RetainedFile",
    "SchemaState",
    "SnapshotAhead",
    "UserView",
    "add_message",
    "add_row_errors",
    "apply_plan",
    "claim_next_job",
    "claimed_job",
    "connect",
    "count_jobs",
    "count_row_errors",
    "count_users",
    "details",
    "directory_id",
    "directory_stamp",
    "drop_job_files",
    "ensure_schema",
    "failed_rows",
    "find_processed",
    "find_user",
    "fingerprint_sums",
    "finish_job",
    "forget_held",
    "forget_job",
    "get_job",
    "held_digest",
    "held_passwords",
    "hold_plan",
    "insert_job",
    "job_file",
    "jobs_by_id",
    "kept_files",
    "last_full_file",
    "latest_files",
    "list_jobs",
    "list_messages",
    "list_users",
    "lock_directory",
    "make_engine",
    "mark_failed",
    "mark_sent",
    "prune_users_writes",
    "purge_expired",
    "put_job_file",
    "queue_file",
    "recover_abandoned",
    "release_job",
    "renew_lease",
    "replace_row_errors",
    "require_job",
    "require_schema",
    "retain_file",
    "retained_file",
    "row_errors",
    "schema_state",
    "set_content",
    "snapshot",
    "snapshot_ahead",
    "sqlite_file",
    "start_job",
    "upgrade",
    "user_ids_of",
]
