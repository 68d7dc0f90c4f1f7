"""Reports: a job's outcome as an email, queued in the outbox and sent from it.

- `content`: what a report says (`JobReport`, `report_context`, which files go with it);
- `templates`: the Jinja2 templates, an admin's overrides, `check_templates`;
- `compose`: the `EmailMessage` and `queue_report`, called in the job's transaction;
- `smtp` and `sending`: `deliver_pending`, retries and backoff, .eml files without SMTP.

`syncd.core.changes` makes the changes CSV a report carries. The names below are the
package's public API.
"""

from syncd.report.compose import ComposedReport, compose_report, queue_report, recipients
from syncd.report.content import REPORT_KINDS, JobReport, ReportKind, report_kind
from syncd.report.sending import Delivery, deliver_pending
from syncd.report.smtp import smtp_session
from syncd.report.templates import check_templates

#: The name a job's changes CSV is kept under (gzip-compressed), for `syncd jobs changes`.
CHANGES_CSV = "changes.csv.gz"

__all__ = [
    "CHANGES_CSV",
    "REPORT_KINDS",
    "ComposedReport",
    "Delivery",
    "JobReport",
    "ReportKind",
    "check_templates",
    "compose_report",
    "deliver_pending",
    "queue_report",
    "recipients",
    "report_kind",
    "smtp_session",
]
