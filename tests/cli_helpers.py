"""Shared helpers for the CLI tests: run ``ledger`` through click's runner or as a real process."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner, Result

from ledger.cli import main

CLEAN_ENV: dict[str, str | None] = dict.fromkeys(
    # COLUMNS too: tables fit $COLUMNS, else 100 columns when piped, as they are here.
    ("LEDGER_PATH", "LEDGER_SNAPSHOT_EVERY", "LEDGER_RETENTION_DAYS", "LEDGER_DURABILITY", "COLUMNS")
)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``ledger ARGS`` in-process, with no LEDGER_* variables (nor COLUMNS) unless given."""
    return CliRunner(env={**CLEAN_ENV, **(env or {})}).invoke(main, list(args))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ledger ARGS`` as a real process, without the caller's LEDGER_* variables or COLUMNS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_") and k != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "ledger", *args], capture_output=True, text=True, timeout=30, env=env)


def assert_one_error_line(result: Result, *words: str, codes: tuple[int, ...] = (2,)) -> None:
    """An exit code from ``codes`` (2: a usage error or bad value, the default; 1: a failure such as a missing
    session or ledger), one ``error:`` line on stderr holding every word, no traceback."""
    assert result.exit_code in codes, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0]
