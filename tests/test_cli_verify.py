"""``ledger verify [--digest FILE]``: exit 0 when the chain holds, 1 with the first bad position and the reason."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import Clock


def build(path: Path, words: str = "hello") -> None:
    """Six events: alpha at 1, 2, 3, 5, 6; beta at 4."""
    with Ledger(path, clock=Clock(step_ms=60_000)) as led:
        led.create_session("alpha", user_id="alice")
        led.add_message("alpha", "user", words)
        led.set_data("alpha", "step", {"n": 1})
        led.create_session("beta", user_id="bob")
        led.add_message("alpha", "assistant", "answer")
        led.complete_session("alpha")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "l.db"
    build(path)
    return path


def tamper(path: Path, sql: str) -> None:
    raw = sqlite3.connect(path)
    raw.execute(sql)
    raw.commit()
    raw.close()


def test_verify_exits_0_and_names_the_head_when_the_chain_holds(db: Path) -> None:
    with Ledger(db) as led:
        head = led.digest()
    result = invoke("--db", str(db), "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"ok: 6 events verified; head 6 {head.hash}"
    assert result.stderr == ""


def test_verify_of_an_empty_ledger_passes(tmp_path: Path) -> None:
    empty = str(tmp_path / "empty.db")
    assert invoke("--db", empty, "init").exit_code == 0
    result = invoke("--db", empty, "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: 0 events verified")


def test_verify_of_a_missing_ledger_fails_with_one_error_line_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = invoke("--db", str(missing), "verify")
    assert_one_error_line(result, "no ledger at", str(missing), f"ledger --db {missing} init", codes=(1,))
    assert result.stdout == ""
    assert not missing.exists()


def test_verify_exits_1_with_the_first_bad_position_and_the_reason_after_tampering(db: Path) -> None:
    tamper(db, "UPDATE events SET data = replace(data, 'answer', 'ANSWER') WHERE position = 5")
    tamper(db, "UPDATE events SET data = replace(data, 'hello', 'HELLO') WHERE position = 2")
    result = invoke("--db", str(db), "verify")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("FAILED at position 2: ")
    assert "hash does not match" in line
    assert result.stdout == ""


@pytest.mark.parametrize("change", ["recorded_at = '2026-01-01T12:03:30.000000Z'", "session_id = 'gamma'", "version = 9"])
def test_verify_catches_a_changed_time_session_or_version(db: Path, change: str) -> None:
    tamper(db, f"UPDATE events SET {change} WHERE position = 4")
    result = invoke("--db", str(db), "verify")
    assert result.exit_code == 1
    assert result.stderr.startswith("FAILED at position 4:")


def test_verify_against_a_digest_saved_by_the_digest_command(db: Path, tmp_path: Path) -> None:
    saved = tmp_path / "digest.json"
    assert invoke("--db", str(db), "digest", "--out", str(saved)).exit_code == 0
    with Ledger(db) as led:
        led.create_session("gamma")  # the log grows after the digest
    result = invoke("--db", str(db), "verify", "--digest", str(saved))
    assert result.exit_code == 0, result.output
    assert "ok: 7 events verified" in result.stdout
    assert "matches the digest at position 6" in result.stdout


def test_a_digest_from_a_longer_log_fails_after_the_last_row_is_deleted(db: Path, tmp_path: Path) -> None:
    saved = tmp_path / "digest.json"
    assert invoke("--db", str(db), "digest", "--out", str(saved)).exit_code == 0
    tamper(db, "DELETE FROM events WHERE position = 6")
    assert invoke("--db", str(db), "verify").exit_code == 0  # what is left is still a chain...
    result = invoke("--db", str(db), "verify", "--digest", str(saved))
    assert result.exit_code == 1  # ...but not the one the digest vouched for
    (line,) = result.stderr.splitlines()
    assert line.startswith("FAILED at position 6:")
    assert "ends at position 5" in line


def test_a_digest_of_a_different_log_fails_as_rewritten(db: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    build(other, words="a different first message")
    saved = tmp_path / "other-digest.json"
    assert invoke("--db", str(other), "digest", "--out", str(saved)).exit_code == 0
    result = invoke("--db", str(db), "verify", "--digest", str(saved))
    assert result.exit_code == 1
    assert "rewritten" in result.stderr and "position 6" in result.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_verify_takes_db_before_or_after_the_command(db: Path, where: str) -> None:
    args = ["--db", str(db), "verify"] if where == "before" else ["verify", "--db", str(db)]
    result = invoke(*args)
    assert result.exit_code == 0 and result.stdout.startswith("ok: 6 events verified")


def test_verify_reads_ledger_path_from_the_environment(db: Path) -> None:
    result = invoke("verify", env={"LEDGER_PATH": str(db)})
    assert result.exit_code == 0 and result.stdout.startswith("ok: 6 events verified")


@pytest.mark.parametrize(("content", "word", "code"), [(None, "cannot read", 1), ("not json", "not a ledger digest", 2),
                                                        ('{"position": -1, "hash": "00"}', "position", 2)])
def test_verify_refuses_a_missing_or_bad_digest_file_with_one_error_line(
    db: Path, tmp_path: Path, content: str | None, word: str, code: int
) -> None:
    path = tmp_path / "digest.json"
    if content is not None:
        path.write_text(content)
    # A file that cannot be read is a failure (1); one that is not a digest is a bad value (2).
    assert_one_error_line(invoke("--db", str(db), "verify", "--digest", str(path)), word, codes=(code,))


def test_verify_as_a_real_process_exits_0_then_1_after_tampering(db: Path) -> None:
    ok = run("--db", str(db), "verify")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: 6 events verified") and ok.stderr == ""
    tamper(db, "UPDATE events SET event_id = 'forged' WHERE position = 3")
    bad = run("--db", str(db), "verify")
    assert bad.returncode == 1
    assert bad.stderr.splitlines()[0].startswith("FAILED at position 3:")
    assert "Traceback" not in bad.stderr


def test_a_digest_file_that_is_binary_or_endless_is_one_error_line(db: Path, tmp_path: Path) -> None:
    binary = tmp_path / "binary.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81 not a digest \x00" * 10)
    assert_one_error_line(invoke("--db", str(db), "verify", "--digest", str(binary)), "digest")
    done = run("--db", str(db), "verify", "--digest", "/dev/zero")  # a real process: it must end, not read for ever
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error:") and "digest" in done.stderr and len(done.stderr.splitlines()) == 1


def test_verify_deep_names_a_forged_read_table(db: Path) -> None:
    assert "the read tables match the log" in invoke("--db", str(db), "verify", "--deep").stdout
    tamper(db, "UPDATE messages SET content = 'FORGED' WHERE position = 2")
    assert invoke("--db", str(db), "verify").exit_code == 0
    result = invoke("--db", str(db), "verify", "--deep")
    assert result.exit_code == 1 and "FAILED at table messages" in result.stderr and "FORGED" in result.stderr
