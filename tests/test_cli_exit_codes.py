"""Exit codes say what happened: 0 success, 1 failure, 2 usage error, 130 interrupted; a missing optional
dependency is one line naming the extra to install."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger import (
    ConcurrencyError,
    FileAccessError,
    IntegrityError,
    InvalidInput,
    Ledger,
    LedgerBusy,
    LedgerError,
    LedgerNotFound,
    LimitExceeded,
    MissingExtra,
    ReadOnlyLedger,
    SessionClosed,
    SessionNotFound,
    SessionPurged,
    StorageError,
    UnsupportedFormat,
)
from ledger.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, exit_code
from tests.cli_helpers import assert_one_error_line, invoke
from tests.test_cli_export import _big
from tests.test_cli_verify import tamper


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "l.db"
    with Ledger(path) as led:
        led.create_session("s")
        led.add_message("s", "user", "hello")
        led.complete_session("s")
    return path


def test_the_codes_are_the_documented_ones() -> None:
    assert (EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED) == (1, 2, 130)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["show", "nobody"], ["does not exist"]),
        (["messages", "nobody"], ["does not exist"]),
        (["history", "nobody"], ["does not exist"]),
        (["stats", "nobody"], ["does not exist"]),
        (["purge", "nobody", "--reason", "r"], ["does not exist"]),
        (["export", "--session", "nobody", "OUT"], ["does not exist"]),
        (["digest", "--out", "/proc/no/such/dir/d.json"], ["cannot write"]),
        (["export", "/proc/no/such/dir/out.jsonl"], ["cannot write"]),
        (["verify", "--digest", "/no/such/digest.json"], ["cannot read"]),
        (["import", "/no/such/export.jsonl"], ["cannot read"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0] != "does not exist" else None,
)
def test_a_failure_is_exit_1(db: Path, tmp_path: Path, args: list[str], words: list[str]) -> None:
    args = [str(tmp_path / "out.jsonl") if a == "OUT" else a for a in args]
    assert_one_error_line(invoke("--db", str(db), *args), *words, codes=(EXIT_FAILED,))


def test_a_failed_verify_is_exit_1(db: Path) -> None:
    tamper(db, "UPDATE events SET data = replace(data, 'hello', 'HELLO') WHERE position = 2")
    result = invoke("--db", str(db), "verify")
    assert result.exit_code == EXIT_FAILED and "FAILED at position 2" in result.stderr


@pytest.mark.parametrize(
    "error",
    [SessionNotFound("x"), SessionClosed("x"), SessionPurged("x"), ConcurrencyError("x"), IntegrityError("x"),
     StorageError("x"), LedgerBusy("x"), LedgerNotFound("x"), ReadOnlyLedger("x"), FileAccessError("x"),
     UnsupportedFormat("x"), MissingExtra("x", extra="mcp")],
    ids=lambda e: type(e).__name__,
)
def test_every_ledger_error_but_a_bad_value_is_a_failure(error: LedgerError) -> None:
    assert exit_code(error) == EXIT_FAILED


@pytest.mark.parametrize("error", [InvalidInput("x"), LimitExceeded("x")], ids=lambda e: type(e).__name__)
def test_a_bad_value_is_a_usage_error(error: LedgerError) -> None:
    assert exit_code(error) == EXIT_USAGE


@pytest.mark.parametrize(
    "args",
    [
        ["sessions", "--no-such-option"],
        ["show"],
        ["show", "s", "--at", "yesterday"],
        ["sessions", "--json", "--csv"],
        ["history", "--json", "--nl"],
        ["history", "--limit", "0"],
        ["usage", "--by", "weather"],
        ["sessions", "--meta", "=x"],
        ["export", "--format", "sessions-dir", "-"],
    ],
    ids=" ".join,
)
def test_a_usage_error_is_exit_2(db: Path, args: list[str]) -> None:
    assert_one_error_line(invoke("--db", str(db), *args), codes=(EXIT_USAGE,))


def test_an_unknown_command_is_exit_2(db: Path) -> None:
    assert_one_error_line(invoke("--db", str(db), "frobnicate"), "frobnicate", codes=(EXIT_USAGE,))


def _interrupt_when(proc: subprocess.Popen[str], ready: Callable[[], bool]) -> tuple[str, str]:
    deadline = time.monotonic() + 30
    while not ready():
        assert time.monotonic() < deadline and proc.poll() is None, "the command never got going"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=30)


def _ledger(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.Popen([sys.executable, "-m", "ledger", *args], stderr=subprocess.PIPE, text=True, env=env,
                            **kwargs)  # type: ignore[call-overload]


def test_ctrl_c_is_exit_130_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    _big(db, 30_000)
    out = tmp_path / "out.jsonl"
    proc = _ledger("--db", str(db), "export", str(out), stdout=subprocess.DEVNULL)
    _, stderr = _interrupt_when(proc, lambda: any(p.name.startswith("out.jsonl.partial-") for p in tmp_path.iterdir()))
    assert proc.returncode == EXIT_INTERRUPTED
    assert stderr == "interrupted\n"
    assert not out.exists()


def test_ctrl_c_stops_following_with_exit_130(db: Path) -> None:
    proc = _ledger("--db", str(db), "history", "--follow", "--nl", stdout=subprocess.PIPE)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # what is there is printed before it waits for more
    assert '"type": "created"' in first
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_INTERRUPTED and "Traceback" not in stderr


def test_a_reader_that_goes_away_stops_the_listing_quietly(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    _big(db, 5_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    proc = subprocess.run(f"{sys.executable} -m ledger --db {db} history --nl | head -n 1", shell=True,
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.stdout.count("\n") == 1 and proc.stderr == ""


# -- a missing extra ----------------------------------------------------------------------------

_WITHOUT = """
import sys
for name in {hidden!r}:
    sys.modules[name] = None  # as if it were not installed
from ledger.cli import main
sys.argv = ["ledger", *sys.argv[1:]]
main()
"""


def _without(hidden: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run([sys.executable, "-c", _WITHOUT.format(hidden=hidden), *args], capture_output=True,
                          text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("hidden", [["mcp"], ["anyio"]])
def test_ledger_mcp_without_its_extra_is_one_line_naming_it(db: Path, hidden: list[str]) -> None:
    proc = _without(hidden, "--db", str(db), "mcp")
    assert proc.returncode == EXIT_FAILED and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "pip install 'session-ledger[mcp]'" in proc.stderr and hidden[0] in proc.stderr


def test_a_postgresql_url_without_psycopg_is_one_line_naming_the_postgres_extra() -> None:
    proc = _without(["psycopg", "psycopg_pool"], "--db", "postgresql://localhost/nothing", "verify")
    assert proc.returncode == EXIT_FAILED and proc.stderr.count("\n") == 1
    assert "pip install 'session-ledger[postgres]'" in proc.stderr


def test_the_openai_agents_adapter_without_its_extra_raises_missing_extra() -> None:
    code = (
        "import sys\nsys.modules['agents'] = None\nfrom ledger import MissingExtra\n"
        "try:\n    import ledger.integrations.openai_agents\nexcept MissingExtra as exc:\n"
        "    print(exc.extra, isinstance(exc, ImportError), exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("agents True") and "pip install 'session-ledger[agents]'" in proc.stdout
