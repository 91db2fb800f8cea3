"""A mistyped path is an error, not a new empty ledger; a ledger nobody may write is still read in full.

The read-only cases run ``ledger`` as a real process without write access: as an
unprivileged user when the tests run as root (root writes through any mode),
otherwise with the modes taken away.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import Ledger, LedgerNotFound, ReadOnlyLedger, StorageError
from tests.cli_helpers import assert_one_error_line, invoke, run

READ_COMMANDS = [
    ["verify"], ["sessions"], ["show", "s"], ["messages", "s"], ["history"], ["search", "hello"], ["stats"],
    ["usage"], ["digest"], ["export", "OUT"], ["backup", "OUT"], ["replay", "--until", "1", "OUT"], ["rebuild"],
    ["purge", "s", "--reason", "typo"], ["gc"],
]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_every_command_but_init_demo_and_import_refuses_a_missing_ledger_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    db = tmp_path / "nope.db"
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
    result = invoke("--db", str(db), *args)
    assert_one_error_line(result, "no ledger at", "nope.db", "ledger --db", "init", codes=(1,))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_missing_ledger_in_a_real_process_is_one_line_exit_1_and_leaves_no_file(tmp_path: Path) -> None:
    proc = run("--db", str(tmp_path / "nope.db"), "verify")
    assert proc.returncode == 1
    assert proc.stdout == "" and proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: no ledger at")
    assert "init" in proc.stderr and not (tmp_path / "nope.db").exists()


def test_init_demo_and_import_create_the_ledger(tmp_path: Path) -> None:
    assert invoke("--db", str(tmp_path / "a.db"), "init").exit_code == 0
    assert invoke("--db", str(tmp_path / "b.db"), "demo").exit_code == 0
    invoke("--db", str(tmp_path / "b.db"), "export", str(tmp_path / "b.jsonl"))
    result = invoke("--db", str(tmp_path / "c.db"), "import", str(tmp_path / "b.jsonl"))
    assert result.exit_code == 0, result.output
    assert all((tmp_path / name).exists() for name in ("a.db", "b.db", "c.db"))


def test_an_empty_file_is_not_a_ledger_to_read(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    assert_one_error_line(invoke("--db", str(empty), "verify"), "no ledger at", "empty", codes=(1,))
    assert empty.stat().st_size == 0


def test_ledger_create_false_opens_an_existing_ledger_only(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with pytest.raises(LedgerNotFound, match="no such file") as raised:
        Ledger(path, create=False)
    assert isinstance(raised.value, FileNotFoundError) and not path.exists()
    with pytest.raises(LedgerNotFound, match="a directory"):
        Ledger(tmp_path, create=False)
    with Ledger(path) as led:
        led.create_session("s")
    with Ledger(path, create=False) as led:
        assert led.get_session("s").version == 1


def test_ledger_create_false_on_postgresql_refuses_a_schema_without_a_ledger(pg_url: str) -> None:
    with pytest.raises(LedgerNotFound, match="holds none"):
        Ledger(pg_url, create=False)
    with Ledger(pg_url) as led:
        led.create_session("s")
    with Ledger(pg_url, create=False) as led:
        assert led.get_session("s").version == 1


# -- read-only ---------------------------------------------------------------------------------

NOBODY = 65534


@contextlib.contextmanager
def shared_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is private to the user running the tests)."""
    path = Path(tempfile.mkdtemp(prefix="ledger-ro-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        path.chmod(0o755)
        for child in path.iterdir():
            child.chmod(0o644)
            child.unlink()
        path.rmdir()


_AS_READER = """
import os, sys
from ledger.cli import main
import ledger.output, ledger.storage.sqlite, projections.search, json, csv  # loaded before access is dropped
if os.geteuid() == 0:
    os.setgid({uid}); os.setuid({uid})
sys.argv = ["ledger", *sys.argv[1:]]
main()
"""


def run_as_reader(*args: str) -> subprocess.CompletedProcess[str]:
    """``ledger ARGS`` in a real process without write access to anything the tests made."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run([sys.executable, "-c", _AS_READER.format(uid=NOBODY), *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd="/")


def _record(path: Path) -> None:
    with Ledger(path) as led:
        led.create_session("s", user_id="ann")
        led.add_message("s", "user", "hello from a read-only file")
        led.link_invocation("s", "i1", "search", duration_ms=5.0, cost=0.01)


@pytest.mark.parametrize("locked", ["directory", "file", "both"])
def test_a_ledger_without_write_access_reads_in_full_and_refuses_a_change(locked: str) -> None:
    with shared_dir() as where:
        path = where / "l.db"
        _record(path)
        if locked in ("file", "both"):
            path.chmod(0o444)
        if locked == "file":
            where.chmod(0o777)  # the directory stays writable: SQLite may put its -shm there
        if locked in ("directory", "both"):
            where.chmod(0o555)
        before = sorted(p.name for p in where.iterdir())
        verify = run_as_reader("--db", str(path), "verify")
        assert verify.returncode == 0 and verify.stdout.startswith("ok: 3 events verified"), verify.stderr
        shown = run_as_reader("--db", str(path), "messages", "s", "--nl")
        assert shown.returncode == 0 and "hello from a read-only file" in shown.stdout, shown.stderr
        found = run_as_reader("--db", str(path), "search", "hello", "--csv")
        assert found.returncode == 0 and found.stdout.count("\n") == 2, found.stderr
        listed = run_as_reader("--db", str(path), "usage", "--by", "user", "--nl")
        assert listed.returncode == 0 and '"user": "ann"' in listed.stdout, listed.stderr
        refused = run_as_reader("--db", str(path), "purge", "s", "--reason", "no")
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "read-only" in refused.stderr
        if locked != "file":
            assert sorted(p.name for p in where.iterdir()) == before


def test_read_only_in_the_library_reads_and_raises_read_only_ledger_on_a_change() -> None:
    with shared_dir() as where:
        path = where / "l.db"
        _record(path)
        where.chmod(0o555)
        path.chmod(0o444)
        code = (
            "import os\nfrom ledger import Ledger, ReadOnlyLedger\n"
            f"os.geteuid() == 0 and (os.setgid({NOBODY}), os.setuid({NOBODY}))\n"
            f"with Ledger({str(path)!r}, create=False) as led:\n"
            "    assert led.get_session('s').message_count == 1 and led.verify().ok\n"
            "    try:\n        led.add_message('s', 'user', 'more')\n    except ReadOnlyLedger as exc:\n"
            "        print('refused:', exc)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
        assert proc.returncode == 0 and proc.stdout.startswith("refused:") and "read-only" in proc.stdout, proc.stderr


def test_read_only_ledger_is_a_storage_error() -> None:
    assert issubclass(ReadOnlyLedger, StorageError)
    assert issubclass(LedgerNotFound, StorageError)
