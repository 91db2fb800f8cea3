"""Every ``ledger`` command is documented: in the README's "Command line" table and in its own help."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def command_line_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Command line\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def documented_commands() -> set[str]:
    """The names in the first column of the table: ``| `ledger NAME ...` | ... |``."""
    return set(re.findall(r"^\| `ledger ([a-z][a-z-]*)", command_line_section(), flags=re.MULTILINE))


def test_the_readme_has_a_command_table() -> None:
    assert len(documented_commands()) >= 10


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_is_in_the_readmes_command_line_table(name: str) -> None:
    assert name in documented_commands(), f"`ledger {name}` is missing from the README's Command line table"


def test_the_readme_documents_no_command_that_does_not_exist() -> None:
    assert documented_commands() <= set(main.commands)


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_a_help_text(name: str) -> None:
    command = main.commands[name]
    assert command.help and command.help.strip(), f"ledger {name} has no help text"
    assert command.get_short_help_str().strip()
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert " ".join(command.help.split()) in " ".join(result.output.split())


def test_the_group_help_lists_every_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "ledger", "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    listed = set(re.findall(r"^  ([a-z][a-z-]*)\s", proc.stdout, flags=re.MULTILINE))
    assert listed == set(main.commands)


def test_a_usage_error_in_any_command_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    offenders = {}
    for name in sorted(main.commands):
        result = CliRunner().invoke(main, ["--db", db, name, "--no-such-option"])
        lines = result.stderr.splitlines()
        if result.exit_code != 2 or len(lines) != 1 or not lines[0].startswith("error:"):
            offenders[name] = result.stderr
    assert offenders == {}, f"usage errors are not one 'error:' line for: {sorted(offenders)}; e.g. {next(iter(offenders.values()), '')!r}"
