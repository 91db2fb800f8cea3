"""``ledger purge SESSION --reason R [--by WHO]``: remove a session's payloads everywhere; verify still passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import Clock


# One made-up word per kind of payload, none sharing a prefix with another (the full-text
# index stores its terms prefix-compressed, so the scan also looks for each word's tail).
SECRETS = {
    "user_id": "uzr7kq4wbx", "purpose": "pzr8mv2tyc", "tag": "tgq5nd7rhe", "metadata key": "mkey3jd8sa",
    "metadata value": "mval6ft2qp", "data key": "dkey9hs4lw", "data value": "dval2gk7zn", "message": "msgx4hv9pe",
    "tool message": "outq2zc8nf", "tool name": "toolq8jw3rm", "invocation": "invk5cb7yd", "artifact": "artf3xe6ug",
    "model": "modl7wr2kv", "fork message": "frkm9pb3ts", "fork metadata": "fmeta5yx1o",
}
KEPT = "keepz8ta5qw"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """secret (every kind of payload, snapshotted, searchable), its fork child (and grandchild), and other."""
    path = tmp_path / "l.db"
    s = SECRETS
    with Ledger(path, clock=Clock(step_ms=60_000), snapshot_every=2) as led:
        led.create_session("secret", user_id=s["user_id"], purpose=f"about {s['purpose']}", tags=[s["tag"]],
                           metadata={s["metadata key"]: s["metadata value"]})  # 1
        led.add_message("secret", "user", f"please look at {s['message']} today")  # 2
        led.link_invocation("secret", "inv-x", s["tool name"], artifact=f"file:///{s['artifact']}/",
                            duration_ms=5.0)  # 3
        led.add_message("secret", "tool", f"found {s['tool message']}", tool_name=s["tool name"],
                        invocation_id=s["invocation"])  # 4
        led.create_session("other", user_id="bob", tags=["kept"])  # 5
        led.add_message("other", "user", f"this stays {KEPT}", model="gpt-x")  # 6
        led.set_data("secret", s["data key"], {"value": s["data value"]})  # 7
        led.add_message("secret", "assistant", "ok", model=s["model"])  # 8
        led.fork("secret", new_session_id="child")  # 9
        led.add_message("child", "user", f"the fork says {s['fork message']}")  # 10
        led.set_metadata("child", "note", s["fork metadata"])  # 11
        led.fork("child", new_session_id="grandchild")  # 12
        led.complete_session("other")  # 13
    return path


def raw_bytes(db: Path) -> bytes:
    """The database file and any WAL, lowercased (the full-text index lowercases its terms)."""
    files = [db, Path(f"{db}-wal"), Path(f"{db}-journal")]
    return b"".join(f.read_bytes() for f in files if f.exists()).lower()


def leftovers(db: Path) -> list[str]:
    data = raw_bytes(db)
    return [kind for kind, word in SECRETS.items() if word.encode() in data or word[-6:].encode() in data]


def state(db: Path, sid: str) -> dict[str, Any]:
    result = invoke("--db", str(db), "show", sid, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_scenario_really_holds_the_text_before_the_purge(db: Path) -> None:
    assert sorted(leftovers(db)) == sorted(SECRETS)
    assert KEPT.encode() in raw_bytes(db)


def test_purge_then_verify_passes_and_no_purged_text_remains_in_the_file(db: Path) -> None:
    result = invoke("--db", str(db), "purge", "secret", "--reason", "privacy request 42", "--by", "dpo")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "purged secret (version 7)"
    verified = invoke("--db", str(db), "verify")
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.startswith("ok: 16 events verified")
    assert leftovers(db) == []
    assert KEPT.encode() in raw_bytes(db)  # the scan does see text that was not purged


def test_purge_is_recorded_as_an_event_saying_who_and_why(db: Path) -> None:
    assert invoke("--db", str(db), "purge", "secret", "--reason", "privacy request 42", "--by", "dpo").exit_code == 0
    timeline = json.loads(invoke("--db", str(db), "history", "secret", "--json").stdout)
    last = timeline[-1]
    assert last["type"] == "purged"
    assert last["payload"]["reason"] == "privacy request 42" and last["payload"]["by"] == "dpo"
    assert [e["type"] for e in timeline[:-1]] == ["created", "message_added", "invocation_linked", "message_added",
                                                 "data_set", "message_added"]


def test_a_purged_session_reads_as_purged_in_show_and_sessions(db: Path) -> None:
    assert invoke("--db", str(db), "purge", "secret", "--reason", "gdpr").exit_code == 0
    shown = state(db, "secret")
    assert shown["status"] == "purged"
    assert (shown["user_id"], shown["purpose"], shown["tags"], shown["metadata"], shown["data"]) == (None, None, [], {}, {})
    table = invoke("--db", str(db), "show", "secret")
    assert any(line.split() == ["status", "purged"] for line in table.stdout.splitlines())
    listed = {row["session_id"]: row["status"]
              for row in json.loads(invoke("--db", str(db), "sessions", "--json").stdout)["items"]}
    assert listed == {"secret": "purged", "child": "purged", "grandchild": "purged", "other": "completed"}
    purged = json.loads(invoke("--db", str(db), "sessions", "--status", "purged", "--json").stdout)["items"]
    assert sorted(row["session_id"] for row in purged) == ["child", "grandchild", "secret"]
    assert json.loads(invoke("--db", str(db), "messages", "secret", "--json").stdout) == []


def test_forks_of_the_purged_session_are_purged_too(db: Path) -> None:
    assert invoke("--db", str(db), "purge", "secret", "--reason", "gdpr").exit_code == 0
    for fork in ("child", "grandchild"):
        shown = state(db, fork)
        assert shown["status"] == "purged" and shown["metadata"] == {}
        assert json.loads(invoke("--db", str(db), "messages", fork, "--json").stdout) == []
    assert json.loads(invoke("--db", str(db), "search", SECRETS["fork message"], "--json").stdout) == []


def test_other_sessions_are_untouched(db: Path) -> None:
    with Ledger(db) as led:
        before = (led.get_session("other"), led.messages("other"), [e.hash for e in led.history("other")])
    assert invoke("--db", str(db), "purge", "secret", "--reason", "gdpr").exit_code == 0
    with Ledger(db) as led:
        assert (led.get_session("other"), led.messages("other"), [e.hash for e in led.history("other")]) == before
        assert [h.session_id for h in led.search_messages(KEPT)] == ["other"]


def test_a_replay_or_export_cut_before_the_purge_still_verifies(db: Path, tmp_path: Path) -> None:
    assert invoke("--db", str(db), "purge", "secret", "--reason", "gdpr").exit_code == 0
    replayed = tmp_path / "before-purge.db"
    assert invoke("--db", str(db), "replay", "--until", "10", str(replayed)).exit_code == 0
    assert invoke("--db", str(replayed), "verify").exit_code == 0
    exported, imported = tmp_path / "before-purge.jsonl", tmp_path / "imported.db"
    assert invoke("--db", str(db), "export", "--until", "2026-01-01T12:09:30Z", str(exported)).exit_code == 0
    assert len(exported.read_text().splitlines()) == 1 + 10 + 1  # header, rows, closing line
    result = invoke("--db", str(imported), "import", str(exported))
    assert result.exit_code == 0, result.output
    verified = invoke("--db", str(imported), "verify")
    assert verified.exit_code == 0 and verified.stdout.startswith("ok: 10 events verified")
    for word in SECRETS.values():  # nothing purged comes back through a copy either
        assert word not in exported.read_text().lower()
    assert leftovers(replayed) == [] and leftovers(imported) == []


def test_a_purged_sessions_past_is_gone_with_one_error_line(db: Path) -> None:
    assert invoke("--db", str(db), "purge", "secret", "--reason", "gdpr").exit_code == 0
    assert_one_error_line(invoke("--db", str(db), "show", "secret", "--version", "2"), "purged", codes=(1,))


def test_purging_twice_changes_nothing(db: Path) -> None:
    assert invoke("--db", str(db), "purge", "secret", "--reason", "gdpr").exit_code == 0
    with Ledger(db) as led:
        head = led.digest()
    again = invoke("--db", str(db), "purge", "secret", "--reason", "gdpr")
    assert again.exit_code == 0 and again.stdout.strip() == "purged secret (version 7)"
    with Ledger(db) as led:
        assert led.digest() == head


@pytest.mark.parametrize("where", ["before", "after"])
def test_purge_takes_db_before_or_after_the_command(db: Path, where: str) -> None:
    args = (["--db", str(db), "purge", "other", "--reason", "r"] if where == "before"
            else ["purge", "other", "--reason", "r", "--db", str(db)])
    assert invoke(*args).exit_code == 0
    assert state(db, "other")["status"] == "purged" and state(db, "secret")["status"] == "active"


def test_purge_reads_ledger_path_from_the_environment(db: Path) -> None:
    assert invoke("purge", "other", "--reason", "r", env={"LEDGER_PATH": str(db)}).exit_code == 0
    assert state(db, "other")["status"] == "purged"


@pytest.mark.parametrize(("args", "word", "code"), [(["nobody", "--reason", "r"], "does not exist", 1),
                                                    (["secret", "--reason", ""], "reason", 2),
                                                    (["bad id!", "--reason", "r"], "session_id", 2)])
def test_purge_refuses_a_missing_session_or_bad_reason_with_one_error_line(
    db: Path, args: list[str], word: str, code: int
) -> None:
    with Ledger(db) as led:
        head = led.digest()
    assert_one_error_line(invoke("--db", str(db), "purge", *args), word, codes=(code,))
    with Ledger(db) as led:
        assert led.digest() == head


def test_purge_as_a_real_process_while_another_ledger_is_open(db: Path) -> None:
    with Ledger(db) as bystander:  # an idle reader in this process must not keep the text in the WAL
        assert bystander.get_session("secret").status == "active"
        proc = run("--db", str(db), "purge", "secret", "--reason", "retention", "--by", "ops")
        assert proc.returncode == 0, proc.stderr
        assert bystander.get_session("secret").status == "purged"
    verified = run("--db", str(db), "verify")
    assert verified.returncode == 0, verified.stderr
    assert leftovers(db) == []
