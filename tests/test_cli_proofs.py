"""The audit walk-through on the command line: ``keygen``, ``checkpoint --sign``, ``verify --checkpoint``,
``export --with-proofs`` and ``verify-bundle``, with their exit codes (0 holds, 1 fails, 2 usage)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    """A ledger of two sessions and a key pair made by ``keygen``; returns (ledger, key prefix)."""
    db = tmp_path / "l.db"
    with Ledger(db) as led:
        for sid in ("alpha", "beta"):
            led.create_session(sid)
        for i in range(40):
            led.add_message(("alpha", "beta")[i % 2], "user", f"message {i}")
    prefix = tmp_path / "auditor"
    result = invoke("keygen", "auditor", "--out", str(prefix))
    assert result.exit_code == 0, result.output
    return db, prefix


def test_keygen_writes_a_private_signer_key_and_a_verifier_key(setup: tuple[Path, Path]) -> None:
    _, prefix = setup
    key, pub = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    assert key.read_text().startswith("PRIVATE+KEY+auditor+")
    assert pub.read_text().startswith("auditor+")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    again = invoke("keygen", "auditor", "--out", str(prefix))
    assert_one_error_line(again, "already exists")


def test_a_signed_checkpoint_verifies_and_later_appends_still_verify(setup: tuple[Path, Path], tmp_path: Path) -> None:
    db, prefix = setup
    note = tmp_path / "head.note"
    signed = invoke("--db", str(db), "checkpoint", "--sign", f"{prefix}.key", "--out", str(note))
    assert signed.exit_code == 0, signed.output
    assert note.read_text().splitlines()[1] == "42"
    assert invoke("--db", str(db), "checkpoint", "--sign", f"{prefix}.key").stdout == note.read_text()
    with Ledger(db) as led:
        led.add_message("alpha", "assistant", "later")
    checked = run("--db", str(db), "verify", "--checkpoint", str(note), "--key", f"{prefix}.pub")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok: 43 events verified; the log extends the checkpoint")


def test_a_change_before_the_checkpoint_exits_1_naming_the_position(setup: tuple[Path, Path], tmp_path: Path) -> None:
    db, prefix = setup
    note = tmp_path / "head.note"
    assert invoke("--db", str(db), "checkpoint", "--sign", f"{prefix}.key", "--out", str(note)).exit_code == 0
    raw = sqlite3.connect(db)
    raw.execute("UPDATE events SET data = replace(data, 'message', 'massage') WHERE position = 9")
    raw.commit()
    raw.close()
    result = invoke("--db", str(db), "verify", "--checkpoint", str(note), "--key", f"{prefix}.pub")
    assert result.exit_code == 1
    assert result.stderr.startswith("FAILED at position 9:")


def test_verify_checkpoint_needs_the_key(setup: tuple[Path, Path], tmp_path: Path) -> None:
    db, prefix = setup
    note = tmp_path / "head.note"
    assert invoke("--db", str(db), "checkpoint", "--sign", f"{prefix}.key", "--out", str(note)).exit_code == 0
    assert invoke("--db", str(db), "verify", "--checkpoint", str(note)).exit_code == 2
    assert invoke("--db", str(db), "verify", "--key", f"{prefix}.pub").exit_code == 2
    assert invoke("--db", str(db), "verify", "--checkpoint", str(note), "--key", f"{prefix}.pub", "--deep").exit_code == 2
    missing = invoke("--db", str(db), "verify", "--checkpoint", str(note), "--key", str(tmp_path / "nope.pub"))
    assert_one_error_line(missing, "cannot read key file", codes=(1,))


def test_a_session_bundle_exported_with_proofs_verifies_offline(setup: tuple[Path, Path], tmp_path: Path) -> None:
    db, prefix = setup
    bundle = tmp_path / "alpha.bundle.json"
    exported = invoke("--db", str(db), "export", "--session", "alpha", "--with-proofs", "--sign", f"{prefix}.key",
                      str(bundle))
    assert exported.exit_code == 0, exported.output
    db.unlink()  # the auditor has only the bundle and the verifier key
    checked = run("verify-bundle", str(bundle), "--key", f"{prefix}.pub")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok: 21 events of session alpha are in the tree of 42 events")
    data = json.loads(bundle.read_text())
    data["events"][3]["data"] = data["events"][3]["data"].replace("message", "massage")
    bundle.write_text(json.dumps(data))
    failed = invoke("verify-bundle", str(bundle), "--key", f"{prefix}.pub")
    assert failed.exit_code == 1
    assert failed.stderr.startswith(f"FAILED at position {data['events'][3]['position']}:")


def test_export_with_proofs_needs_one_session_and_a_signer_key(setup: tuple[Path, Path], tmp_path: Path) -> None:
    db, prefix = setup
    out = str(tmp_path / "b.json")
    assert invoke("--db", str(db), "export", "--with-proofs", "--sign", f"{prefix}.key", out).exit_code == 2
    assert invoke("--db", str(db), "export", "--session", "alpha", "--with-proofs", out).exit_code == 2
    assert invoke("--db", str(db), "export", "--session", "alpha", "--sign", f"{prefix}.key", out).exit_code == 2
    assert invoke("--db", str(db), "export", "--session", "alpha", "--with-proofs", "--sign", f"{prefix}.key",
                  "--until", "3", out).exit_code == 2
    wrong = invoke("--db", str(db), "export", "--session", "alpha", "--with-proofs", "--sign", f"{prefix}.pub", out)
    assert_one_error_line(wrong, "key")
