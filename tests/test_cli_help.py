"""``ledger`` on its own, ``-h``, and ``--version`` versus ``--at-version`` (issue 14, item 5)."""

from __future__ import annotations

from pathlib import Path

from ledger import Ledger
from tests.cli_helpers import invoke, run


def test_ledger_alone_prints_the_help_as_help_and_exits_0() -> None:
    done = run()  # a real process: what a new user types first
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("Usage: ") and "Commands:" in done.stdout and "error" not in done.stdout


def test_h_is_help_on_the_group_and_on_every_command() -> None:
    assert invoke("-h").stdout == invoke("--help").stdout
    shown = invoke("show", "-h")
    assert shown.exit_code == 0 and "--at-version" in shown.stdout


def test_version_is_the_programs_and_at_version_a_sessions(tmp_path: Path) -> None:
    assert invoke("--version").stdout.startswith("ledger, version ")
    db = tmp_path / "l.db"
    with Ledger(db) as led:
        led.create_session("s")
        led.add_message("s", "user", "one")
    for spelling in ("--at-version", "--version"):  # the old spelling keeps working
        result = invoke("--db", str(db), "show", "s", spelling, "1", "--json")
        assert result.exit_code == 0 and '"version": 1' in result.stdout.replace('"version":1', '"version": 1')
