"""Every command, option and argument of `syncd` says what it is for in `--help`."""

from __future__ import annotations

from collections.abc import Iterator

import click

from syncd.cli import cli


def _commands(command: click.Command, path: str = "syncd") -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")


def test_every_command_has_help() -> None:
    """Each command and group has a description, shown by `syncd ... --help`."""
    missing = [path for path, command in _commands(cli) if not (command.help or "").strip()]
    assert missing == []


def test_every_option_has_help() -> None:
    """Each option of each command has help text, so `--help` never lists a bare flag."""
    missing = [
        f"{path} {param.opts[0]}"
        for path, command in _commands(cli)
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert missing == []


def test_every_argument_is_described_in_its_commands_help() -> None:
    """click arguments take no help text: each is named (FILE, JOB_ID...) in the command's."""
    missing = [
        f"{path} {param.human_readable_name}"
        for path, command in _commands(cli)
        for param in command.params
        if isinstance(param, click.Argument)
        and param.human_readable_name not in (command.help or "")
    ]
    assert missing == []
