"""The mail templates: built in (`syncd/templates/mail/`), or an admin's from a folder.

Each kind of message (`syncd.report.content.MAIL_KINDS`: a job's report, or an alert
about a source) has three templates: `<kind>.subject.txt`, `<kind>.txt` (the plain-text
part) and `<kind>.html`; they extend `_layout.txt` / `_layout.html` and import
`_macros.txt` / `_macros.html`. An alert has no `job`: it replaces the layout's
job-specific blocks (`heading`, `facts`, `closing`). Jinja2 renders
them with `StrictUndefined` (a misspelt name is an error, never an empty string) and
autoescapes HTML templates only. The `plural` filter words a count: `{{ n|plural("row") }}`.

`[mail] templates_dir` may hold any of these files: a file found there replaces the
built-in one of that name, the others stay built in. A broken override (a syntax error,
an unknown variable, anything it raises) must not cost anyone their report: that part
of that message is rendered from the built-in template instead, and the problem is
logged. `check_templates` renders every template with sample data, so `syncd check`
names broken overrides before a report needs them.
"""

from __future__ import annotations

import re
import socket
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import structlog
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    select_autoescape,
)

from syncd.config import Config, MailConfig
from syncd.report.content import MAIL_KINDS, MailKind

log = structlog.get_logger("syncd.report")

Part = Literal["subject", "text", "html"]
PARTS: tuple[Part, ...] = ("subject", "text", "html")
#: The shared pieces the per-kind templates extend and import.
SHARED = ("_layout.txt", "_layout.html", "_macros.txt", "_macros.html")
_SUFFIX: dict[Part, str] = {"subject": ".subject.txt", "text": ".txt", "html": ".html"}
_SUBJECT_MAX = 200


def template_name(kind: MailKind, part: Part) -> str:
    return kind + _SUFFIX[part]


#: Every file name syncd reads from the templates folder.
TEMPLATE_NAMES = frozenset(
    [*SHARED, *(template_name(kind, part) for kind in MAIL_KINDS for part in PARTS)]
)


def install_name(mail: MailConfig) -> str:
    """What this syncd is called in subjects and footers: `[mail] install_name`, else
    the host name."""
    return mail.install_name or socket.gethostname()


@dataclass(frozen=True, slots=True)
class Rendered:
    """A report's three parts, ready for a message."""

    subject: str
    text: str
    html: str


def plural(count: int | str, noun: str) -> str:
    """`count` and `noun`, plural unless it is one: "1 row", "1,204 rows" (a count as
    the context gives it, already formatted, or a number)."""
    text = f"{count:,}" if isinstance(count, int) else count
    return f"{text} {noun}" if text == "1" else f"{text} {noun}s"


def _environment(loader: Any) -> Environment:
    env = Environment(
        loader=loader,
        autoescape=select_autoescape(
            enabled_extensions=("html",), default_for_string=False, default=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["plural"] = plural
    return env


@lru_cache(maxsize=1)
def _builtin() -> Environment:
    return _environment(PackageLoader("syncd", "templates/mail"))


@lru_cache(maxsize=4)
def _overriding(folder: Path) -> Environment:
    """The admin's folder first, the built-in templates for whatever it lacks (a
    layout, the macros). Jinja reloads a file that changed on disk."""
    return _environment(
        ChoiceLoader([FileSystemLoader(str(folder)), PackageLoader("syncd", "templates/mail")])
    )


def _render(env: Environment, name: str, context: dict[str, Any]) -> str:
    return env.get_template(name).render(context)


def _one_line(subject: str) -> str:
    """A subject is one line: folded whitespace, no line break to inject headers with."""
    line = re.sub(r"\s+", " ", subject).strip()
    return line if len(line) <= _SUBJECT_MAX else line[: _SUBJECT_MAX - 1] + "…"


def describe(error: BaseException, name: str, folder: Path | None = None) -> str:
    """A problem met rendering template `name`, in a sentence: the file and line that
    broke (a layout, say, rather than `name` itself), and what."""
    file, line = None, None
    if isinstance(error, TemplateSyntaxError) and error.lineno:
        file, line = error.filename or error.name, error.lineno
    else:
        # Jinja puts template lines into the traceback; the innermost one is the culprit.
        frames = [
            frame
            for frame in traceback.extract_tb(error.__traceback__)
            if frame.filename.endswith((".html", ".txt"))
        ]
        if frames:
            file, line = frames[-1].filename, frames[-1].lineno
    what = str(error) if isinstance(error, TemplateError) else f"{type(error).__name__}: {error}"
    broken = Path(file).name if file else name
    where = folder / broken if folder is not None and (folder / broken).is_file() else broken
    also = "" if broken == name else f" (rendering {name})"
    return f"{where}{f', line {line}' if line else ''}: {what}{also}"


def render_part(
    mail: MailConfig, kind: MailKind, part: Part, context: dict[str, Any]
) -> tuple[str, str | None]:
    """One part of one report, and the problem of the admin's template if it broke
    (the part is then rendered from the built-in template)."""
    name = template_name(kind, part)
    folder = mail.templates_dir
    problem = None
    if folder is not None:
        try:
            return _render(_overriding(folder), name, context), None
        except Exception as exc:  # any error of an admin's template falls back
            problem = describe(exc, name, folder)
            log.error(
                "mail_template_broken",
                template=name,
                templates_dir=str(folder),
                problem=problem,
                fallback="built-in",
            )
    return _render(_builtin(), name, context), problem


def render_report(mail: MailConfig, kind: MailKind, context: dict[str, Any]) -> Rendered:
    """The subject, text and HTML of one report or alert."""
    subject, _ = render_part(mail, kind, "subject", context)
    text, _ = render_part(mail, kind, "text", context)
    # Sections that are left out leave blank lines: one between paragraphs is enough.
    text = re.sub(r"\n{3,}", "\n\n", text.strip("\n")) + "\n"
    html, _ = render_part(mail, kind, "html", context)
    return Rendered(subject=_one_line(subject), text=text, html=html)


def check_templates(config: Config) -> list[str]:
    """Every problem of the admin's templates (`[mail] templates_dir`), found by
    rendering each one with sample data; empty when they all render (or there are
    none). For `syncd check`."""
    from syncd.report.samples import sample_contexts  # sample data only for checking

    mail = config.mail
    folder = mail.templates_dir
    if folder is None:
        return []
    if not folder.is_dir():
        return [f"mail.templates_dir: {folder} is not a folder"]
    problems: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name not in TEMPLATE_NAMES and path.suffix in (".txt", ".html"):
            problems.append(
                f"{path}: not a template syncd uses (one is named <kind>.subject.txt, "
                f"<kind>.txt or <kind>.html, kind one of {', '.join(MAIL_KINDS)})"
            )
    env = _overriding(folder)
    seen: set[str] = set()
    for kind in MAIL_KINDS:
        for part in PARTS:
            name = template_name(kind, part)
            for context in sample_contexts(kind, mail):
                try:
                    _render(env, name, context)
                except Exception as exc:  # any error of an admin's template is reported
                    problem = describe(exc, name, folder)
                    # A broken layout breaks every template that extends it: once.
                    if problem.split(" (rendering ")[0] not in seen:
                        seen.add(problem.split(" (rendering ")[0])
                        problems.append(problem)
                    break
    return problems
