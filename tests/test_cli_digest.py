"""``ledger digest [--out FILE]``: print or save the chain head, to verify against later."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger import Digest, Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import Clock


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "l.db"
    with Ledger(path, clock=Clock(step_ms=60_000)) as led:
        led.create_session("alpha", user_id="alice")
        led.add_message("alpha", "user", "hello")
        led.complete_session("alpha")
    return path


def head(db: Path) -> Digest:
    with Ledger(db) as led:
        return led.digest()


def test_digest_prints_the_chain_head_as_json(db: Path) -> None:
    result = invoke("--db", str(db), "digest")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == {"position": 3, "hash": head(db).hash}
    assert len(printed["hash"]) == 64
    assert Digest.from_json(result.stdout) == head(db)


def test_digest_of_an_empty_ledger_is_position_0(tmp_path: Path) -> None:
    empty = str(tmp_path / "empty.db")
    assert invoke("--db", empty, "init").exit_code == 0
    result = invoke("--db", empty, "digest")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["position"] == 0


def test_digest_of_a_missing_ledger_is_one_error_line_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = invoke("--db", str(missing), "digest")
    assert_one_error_line(result, "no ledger at", str(missing), "init", codes=(1,))
    assert result.stdout == ""
    assert not missing.exists()


def test_digest_out_saves_a_file_the_library_and_verify_read(db: Path, tmp_path: Path) -> None:
    saved = tmp_path / "d.json"
    result = invoke("--db", str(db), "digest", "--out", str(saved))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"digest of position 3 written to {saved}"
    assert Digest.from_json(saved.read_text()) == head(db)
    with Ledger(db) as led:
        assert led.verify(Digest.from_json(saved.read_text())).ok


def test_digest_changes_when_the_log_grows(db: Path) -> None:
    before = json.loads(invoke("--db", str(db), "digest").stdout)
    with Ledger(db) as led:
        led.create_session("beta")
    after = json.loads(invoke("--db", str(db), "digest").stdout)
    assert after["position"] == 4 and after["hash"] != before["hash"]


@pytest.mark.parametrize("where", ["before", "after"])
def test_digest_takes_db_before_or_after_the_command(db: Path, where: str) -> None:
    args = ["--db", str(db), "digest"] if where == "before" else ["digest", "--db", str(db)]
    assert json.loads(invoke(*args).stdout)["position"] == 3


def test_digest_reads_ledger_path_from_the_environment(db: Path) -> None:
    assert json.loads(invoke("digest", env={"LEDGER_PATH": str(db)}).stdout)["hash"] == head(db).hash


def test_digest_out_to_an_unwritable_place_is_one_error_line(db: Path, tmp_path: Path) -> None:
    result = invoke("--db", str(db), "digest", "--out", str(tmp_path / "no-such-dir" / "d.json"))
    assert result.exit_code == 1, result.output  # a path that cannot be written: a failure
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr


def test_digest_of_a_file_that_is_not_a_ledger_is_one_error_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"junk" * 2000)
    result = invoke("--db", str(junk), "digest")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error:")
    assert "Traceback" not in result.output


def test_digest_as_a_real_process(db: Path, tmp_path: Path) -> None:
    proc = run("--db", str(db), "digest")
    assert proc.returncode == 0, proc.stderr
    assert Digest.from_json(proc.stdout) == head(db)
    saved = tmp_path / "d.json"
    assert run("digest", "--db", str(db), "--out", str(saved)).returncode == 0
    assert Digest.from_json(saved.read_text()) == head(db)
