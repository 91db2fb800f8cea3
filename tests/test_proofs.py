"""Proofs over the log (issue 18): the Merkle tree's head, inclusion and consistency proofs, signed checkpoints,
and proof bundles checked offline, on both backends."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import IntegrityError, InvalidInput, Ledger, merkle
from ledger.bundles import verify_bundle
from ledger.chain import link, stored_digest
from ledger.signing import generate_keys
from projections.merkle import Tiles, TileSource
from tests.conftest import raw_sql

KEY, PUB = generate_keys("auditor")
OTHER_KEY, OTHER_PUB = generate_keys("someone-else")
EVENTS = 600  # past two full tiles of 256 leaves


def fill(led: Ledger, events: int = EVENTS, sessions: int = 6) -> None:
    with led.batch():
        for i in range(sessions):
            led.create_session(f"s{i}")
        for i in range(events - sessions):
            led.add_message(f"s{i % sessions}", "user", f"message {i}")


def chain_hashes(led: Ledger) -> list[bytes]:
    with raw_sql(led) as sql:
        return [bytes(h) for (h,) in sql.execute("SELECT hash FROM events ORDER BY position").fetchall()]


@pytest.fixture
def led(ledger_path: str) -> Iterator[Ledger]:
    with Ledger(ledger_path) as ledger:
        fill(ledger)
        yield ledger


@pytest.fixture(scope="module")
def reference() -> Callable[[list[bytes]], merkle.MemorySource]:
    return lambda hashes: merkle.MemorySource([merkle.leaf_hash(h) for h in hashes])


# -- the tree --------------------------------------------------------------------------------------


def test_the_tree_head_is_rfc_9162s_root_over_the_chain_hashes(led: Ledger, reference: Callable[..., merkle.MemorySource]) -> None:
    hashes = chain_hashes(led)
    source = reference(hashes)
    for size in (0, 1, 2, 255, 256, 257, 511, 512, 513, EVENTS):
        head = led.tree_head(size)
        assert head.size == size
        assert head.root == merkle.root(size, source)
    assert led.tree_head().size == EVENTS


def test_every_inclusion_proof_verifies_and_a_flipped_bit_fails(led: Ledger) -> None:
    hashes = chain_hashes(led)
    for size in (1, 256, 300, EVENTS):
        root = led.tree_head(size).root
        for position in sorted(p for p in {1, 2, size // 2 or 1, 256, 257, size} if p <= size):
            proof = led.inclusion_proof(position, size)
            leaf = merkle.leaf_hash(hashes[position - 1])
            assert merkle.verify_inclusion(leaf, position - 1, size, proof, root)
            for step in range(len(proof)):
                bad = list(proof)
                bad[step] = bytes([bad[step][0] ^ 1]) + bad[step][1:]
                assert not merkle.verify_inclusion(leaf, position - 1, size, bad, root)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_consistency_holds_between_any_two_sizes(led: Ledger, data: st.DataObject) -> None:
    new = data.draw(st.integers(1, EVENTS), label="new size")
    old = data.draw(st.integers(0, new), label="old size")
    proof = led.consistency_proof(old, new)
    old_root, new_root = led.tree_head(old).root, led.tree_head(new).root
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)
    if proof:
        flipped = [bytes([proof[0][0] ^ 0x80]) + proof[0][1:], *proof[1:]]
        assert not merkle.verify_consistency(old, new, old_root, new_root, flipped)


def test_the_tiles_fold_levels_above_the_leaves_as_the_reference_does() -> None:
    # 256 * 256 + 300 leaves fill a tile of level 1 (65,536 leaves) and start the next: built in memory.
    leaves = [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(65_536 + 300)]
    tiles, reference = Tiles({}), merkle.MemorySource(leaves)
    for leaf in leaves:
        tiles.push(0, leaf)
    for size in (65_535, 65_536, 65_537, len(leaves)):
        assert merkle.root(size, tiles) == merkle.root(size, reference)
    proof = merkle.inclusion_path(65_540, len(leaves), tiles)
    assert merkle.verify_inclusion(leaves[65_540], 65_540, len(leaves), proof, merkle.root(len(leaves), reference))


def test_a_purge_keeps_every_leaf_root_and_proof(led: Ledger) -> None:
    head, proof = led.tree_head(), led.inclusion_proof(10)
    led.purge_session("s3", reason="erasure request")
    assert led.tree_head(head.size) == head
    assert led.inclusion_proof(10, head.size) == proof
    new = led.tree_head()
    assert merkle.verify_consistency(head.size, new.size, head.root, new.root, led.consistency_proof(head.size))


def test_a_rebuild_of_the_tiles_gives_the_same_root(led: Ledger) -> None:
    head = led.tree_head()
    assert led.rebuild("merkle") == EVENTS
    assert led.tree_head() == head


def test_proof_arguments_out_of_range_are_invalid_input_naming_the_field(led: Ledger) -> None:
    with pytest.raises(InvalidInput):
        led.tree_head("all")  # type: ignore[arg-type]
    with raw_sql(led) as sql:
        assert sql.execute("SELECT count(*) FROM merkle_tiles").fetchone()[0] == 0  # not even the cache was written
    for call, field in (
        (lambda: led.tree_head(EVENTS + 1), "size"),
        (lambda: led.tree_head(-1), "size"),
        (lambda: led.inclusion_proof(0), "position"),
        (lambda: led.inclusion_proof(5, 4), "position"),
        (lambda: led.inclusion_proof(True), "position"),
        (lambda: led.consistency_proof(10, 5), "old_size"),
        (lambda: led.consistency_proof(1, EVENTS + 1), "new_size"),
    ):
        with pytest.raises(InvalidInput) as caught:
            call()
        assert caught.value.field == field


def test_appends_never_write_tiles_and_a_proof_brings_them_level(led: Ledger) -> None:
    def tiles() -> int:
        with raw_sql(led) as sql:
            return int(sql.execute("SELECT count(*) FROM merkle_tiles").fetchone()[0])

    assert tiles() == 0
    led.tree_head()
    assert tiles() == 4  # level 0: two full tiles and a partial one; level 1: the partial one above them
    led.add_message("s1", "user", "one more")
    assert tiles() == 4


def test_leaves_past_the_tile_cache_are_hashed_from_the_log(tmp_path: Path) -> None:
    # What a read-only ledger does: it cannot bring the cache level, so the node source hashes the rest.
    path = tmp_path / "behind.db"
    with Ledger(path) as led:
        fill(led)
        led.tree_head(300)
        for i in range(50):
            led.add_message("s1", "user", f"late {i}")
        hashes = chain_hashes(led)
    reference = merkle.MemorySource([merkle.leaf_hash(h) for h in hashes])
    raw = sqlite3.connect(path)
    try:
        source = TileSource(raw, len(hashes))
        assert merkle.root(len(hashes), source) == merkle.root(len(hashes), reference)
        assert merkle.inclusion_path(610, len(hashes), source) == merkle.inclusion_path(610, len(hashes), reference)
        with pytest.raises(IntegrityError):
            TileSource(raw, len(hashes) + 1)
    finally:
        raw.close()


# -- signed checkpoints ---------------------------------------------------------------------------------


def test_the_log_extends_its_signed_checkpoint_and_later_appends_are_fine(led: Ledger) -> None:
    note = led.sign_checkpoint(KEY)
    lines = note.splitlines()
    assert lines[0].startswith("session-ledger/") and lines[1] == str(EVENTS)
    assert base64.b64decode(lines[2]) == led.tree_head().root
    assert lines[4].startswith("— auditor ")
    assert led.verify_checkpoint(note, PUB).ok
    led.add_message("s1", "assistant", "later")
    report = led.verify_checkpoint(note, PUB)
    assert report.ok and report.checked == EVENTS + 1


def test_a_checkpoint_signed_by_another_key_does_not_verify(led: Ledger) -> None:
    report = led.verify_checkpoint(led.sign_checkpoint(OTHER_KEY), PUB)
    assert not report.ok and "not signed by that key" in (report.reason or "")


def _rewrite(led: Ledger, position: int) -> None:
    """Change one event's payload and recompute every hash from it on: the chain holds, the history is not
    the one the checkpoint signed."""
    with raw_sql(led, write=True) as sql:
        rows = sql.execute(
            "SELECT position, event_id, session_id, version, type, schema, recorded_at, data, hash FROM events"
            " WHERE position >= ? ORDER BY position", (position - 1,)
        ).fetchall()
        previous = bytes(rows[0][8])
        for row in rows[1:]:
            data = row[7].replace("message", "MESSAGE") if row[0] == position else row[7]
            new = link(previous, row[0], row[1], row[2], row[3], row[4], row[5], row[6], stored_digest(data.encode()))
            sql.execute("UPDATE events SET data = ?, hash = ? WHERE position = ?", (data, new, row[0]))
            previous = new


def test_a_rewritten_history_with_recomputed_hashes_fails_naming_the_first_bad_position(led: Ledger) -> None:
    note = led.sign_checkpoint(KEY)
    _rewrite(led, 123)
    report = led.verify_checkpoint(note, PUB)
    assert not report.ok and report.first_bad_position == 123
    assert "rewritten" in (report.reason or "")


def test_a_row_changed_in_place_fails_at_its_position(led: Ledger) -> None:
    note = led.sign_checkpoint(KEY)
    with raw_sql(led, write=True) as sql:
        sql.execute("UPDATE events SET data = replace(data, 'message', 'massage') WHERE position = 77")
    report = led.verify_checkpoint(note, PUB)
    assert not report.ok and report.first_bad_position == 77


def test_a_log_cut_short_before_the_checkpoint_fails(tmp_path: Path) -> None:
    path = tmp_path / "cut.db"
    with Ledger(path) as led:
        fill(led)
        note = led.sign_checkpoint(KEY)
    raw = sqlite3.connect(path)
    raw.execute("DELETE FROM events WHERE position > 500")
    raw.commit()
    raw.close()
    with Ledger(path) as led:
        report = led.verify_checkpoint(note, PUB)
    assert not report.ok and report.first_bad_position == 501


# -- proof bundles ---------------------------------------------------------------------------------------


def test_a_sessions_bundle_verifies_offline_with_nothing_else(led: Ledger) -> None:
    bundle = led.proof_bundle("s2", KEY)
    report = verify_bundle(bundle, PUB)
    assert report.ok, report.reason
    assert report.session_id == "s2" and report.events == 100 and report.size == EVENTS
    parsed = json.loads(bundle)
    assert {e["session_id"] for e in parsed["events"]} == {"s2"}  # nothing of the other sessions' contents


def test_a_purged_sessions_bundle_still_verifies_without_its_text(led: Ledger) -> None:
    led.purge_session("s2", reason="erasure request")
    bundle = led.proof_bundle("s2", KEY)
    assert "message" not in json.dumps([e["data"] for e in json.loads(bundle)["events"][:-1]])
    assert verify_bundle(bundle, PUB).ok


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda b: b["events"][5].update(data=b["events"][5]["data"].replace("message", "massage")), "contents"),
        (lambda b: b["events"][5]["proof"].__setitem__(0, base64.b64encode(bytes(32)).decode()), "inclusion"),
        (lambda b: b["events"].pop(7), "missing"),
        (lambda b: b["events"][3].update(session_id="s1"), "belongs"),
    ],
    ids=["changed contents", "changed proof", "event left out", "other session"],
)
def test_a_damaged_bundle_fails_naming_the_event(led: Ledger, damage: Callable[[dict[str, object]], object],
                                                 words: str) -> None:
    bundle = json.loads(led.proof_bundle("s2", KEY))
    damage(bundle)
    report = verify_bundle(json.dumps(bundle), PUB)
    assert not report.ok and words in (report.reason or "") and report.first_bad_position is not None


def _marker(digest_hex: str, purged_at: int) -> str:
    return '{"$redacted":"%s","purged_at":%d}' % (digest_hex, purged_at)


def test_a_redaction_marker_cannot_stand_in_for_text_or_move_bytes_between_fields(led: Ledger) -> None:
    clean = json.loads(led.proof_bundle("s2", KEY))
    event = clean["events"][1]
    real = hashlib.sha256(event["data"].encode()).digest()
    tail = event["recorded_at"][-17:]
    forgeries = [
        # the text of a session never purged, hidden behind a marker that carries its true digest
        {"data": _marker(real.hex(), 10**6)},
        # bytes cut off the time and carried into a marker's digest: the chain header would hash the same
        {"recorded_at": event["recorded_at"][:-17], "data": _marker((tail.encode() + real).hex(), 10**6)},
        # a digest that is not hex at all
        {"data": _marker("zz", 10**6)},
    ]
    for change in forgeries:
        bundle = json.loads(json.dumps(clean))
        bundle["events"][1].update(change)
        report = verify_bundle(json.dumps(bundle), PUB)
        assert not report.ok and report.first_bad_position == event["position"], (change, report)


def test_a_purged_sessions_events_before_the_purge_must_all_be_redacted(led: Ledger) -> None:
    led.purge_session("s2", reason="erasure request")
    bundle = json.loads(led.proof_bundle("s2", KEY))
    bundle["events"][4]["data"] = '{"role": "user", "content": "put back"}'
    report = verify_bundle(json.dumps(bundle), PUB)
    assert not report.ok and report.first_bad_position == bundle["events"][4]["position"]


def test_a_bundle_checked_with_another_key_fails(led: Ledger) -> None:
    report = verify_bundle(led.proof_bundle("s2", KEY), OTHER_PUB)
    assert not report.ok and "checkpoint" in (report.reason or "")


def test_a_bundle_of_a_missing_session_or_with_a_bad_key_is_refused(led: Ledger) -> None:
    with pytest.raises(LookupError):
        led.proof_bundle("nope", KEY)
    with pytest.raises(InvalidInput) as caught:
        led.proof_bundle("s2", "not a key")
    assert caught.value.field == "key"
    with pytest.raises(InvalidInput):
        verify_bundle("{}", PUB)


def test_a_tile_cache_that_differs_from_the_log_is_never_signed_and_deep_verify_names_it(led: Ledger) -> None:
    led.tree_head()
    with raw_sql(led, write=True) as sql:
        (hashes,) = sql.execute("SELECT hashes FROM merkle_tiles WHERE level = 0 AND idx = 2").fetchone()
        sql.execute("UPDATE merkle_tiles SET hashes = ? WHERE level = 0 AND idx = 2", (bytes(32) + bytes(hashes)[32:],))
    assert led.verify().ok  # the chain holds: only the cache is wrong
    report = led.verify(projections=True)
    assert not report.ok and report.table == "merkle_tiles"
    with pytest.raises(IntegrityError, match="rebuild"):
        led.sign_checkpoint(KEY)
    with pytest.raises(IntegrityError, match="rebuild"):
        led.proof_bundle("s2", KEY)
    led.rebuild("merkle")
    assert led.verify(projections=True).ok
    assert led.verify_checkpoint(led.sign_checkpoint(KEY), PUB).ok


def test_an_empty_origin_is_invalid_input(led: Ledger) -> None:
    with pytest.raises(InvalidInput) as caught:
        led.sign_checkpoint(KEY, origin="")
    assert caught.value.field == "origin"


def test_tiles_that_do_not_match_the_log_are_reported(led: Ledger) -> None:
    led.tree_head()
    with raw_sql(led, write=True) as sql:
        sql.execute("DELETE FROM merkle_tiles WHERE level = 0 AND idx = 0")
    with pytest.raises(IntegrityError):
        led.inclusion_proof(3)
    led.rebuild("merkle")
    assert merkle.verify_inclusion(merkle.leaf_hash(chain_hashes(led)[2]), 2, EVENTS, led.inclusion_proof(3),
                                   led.tree_head().root)
