"""Proofs over the log: the Merkle tree's head, inclusion and consistency proofs, signed checkpoints.

The tree (``ledger.merkle``, RFC 9162) has one leaf per event, in position
order, over the event's chain hash; its complete subtrees are cached in tiles
(``projections.merkle``), so a proof costs O(log n) reads. A checkpoint is the
tree's head (size and root) signed as a C2SP signed note (``ledger.signing``);
verifying one walks the log itself, never the cache: the chain must hold, the
tree recomputed from the log must have the checkpoint's root at its size, and
a consistency proof must carry that root to the current head.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec

from projections.merkle import Tiles, TileSource, differing_tile

from . import merkle
from .bundles import FORMAT, Bundle, BundleEvent, encode_bundle
from .chain import GENESIS, ChainChecker, Digest, VerifyReport
from .chain_source import EngineChain
from .engine import Engine
from .errors import IntegrityError, InvalidInput
from .signing import Checkpoint, Signer, Verifier, open_checkpoint, sign_checkpoint
from .storage import Storage
from .validation import check_id, check_int

_CHUNK = 10_000


class TreeHead(msgspec.Struct, frozen=True):
    """The Merkle tree over the first ``size`` events: its size and root hash (32 bytes)."""

    size: int
    root: bytes

    @property
    def root_hex(self) -> str:
        """The root as 64 hex digits."""
        return self.root.hex()


def origin_of(first_hash: bytes | None) -> str:
    """The default checkpoint origin of a ledger: named after its first event's chain hash, which no other
    ledger shares (a random salt and a time-ordered id are in it), so it needs no stored identity."""
    return "session-ledger/" + (first_hash.hex()[:32] if first_hash else "empty")


class Proofs:
    """Tree heads, proofs and checkpoints over one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _tree(self, size: int | None, field: str = "size") -> Iterator[tuple[Storage, TileSource, int]]:
        """Inside one read: the storage, a node source for a tree of ``size`` events (None: all), and that size."""
        engine = self._engine
        engine.outside_batch("make a proof")
        asked = None if size is None else check_int(size, field)  # bad input writes nothing, not even the cache
        if not engine.storage.read_only:
            engine.level_lazy("merkle")  # the tile cache; a read-only ledger hashes what it lacks in memory
        with engine.read("proof") as storage:
            head = storage.head.position
            if asked is None:
                size = head
            else:
                size = asked
                if not 0 <= size <= head:
                    raise InvalidInput(f"{field} must be between 0 and the log's {head} events; got {size}",
                                       field=field, limit=head)
            yield storage, TileSource(storage.connection, size), size

    def tree_head(self, size: int | None = None) -> TreeHead:
        """The Merkle tree's size and root over the first ``size`` events (None: the whole log)."""
        with self._tree(size) as (_, source, size):
            return TreeHead(size, merkle.root(size, source))

    def inclusion_proof(self, position: int, size: int | None = None) -> list[bytes]:
        """The audit path proving the event at ``position`` is in the tree of ``size`` events (None: all):
        ``merkle.verify_inclusion(leaf, position - 1, size, proof, root)`` checks it."""
        position = check_int(position, "position")
        with self._tree(size) as (_, source, size):
            if not 1 <= position <= size:
                raise InvalidInput(f"position must be between 1 and {size}; got {position}", field="position",
                                   limit=size)
            return merkle.inclusion_path(position - 1, size, source)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The proof that the tree of ``new_size`` events (None: all) extends the one of ``old_size``:
        ``merkle.verify_consistency`` checks it."""
        old_size = check_int(old_size, "old_size")
        with self._tree(new_size, "new_size") as (_, source, size):
            if not 0 <= old_size <= size:
                raise InvalidInput(f"old_size must be between 0 and {size}; got {old_size}", field="old_size",
                                   limit=size)
            return merkle.consistency_path(old_size, size, source)

    def origin(self) -> str:
        """This ledger's default checkpoint origin (``origin_of`` its first event)."""
        with self._engine.read("checkpoint") as storage:
            return origin_of(storage.row_hash(1))

    def sign_checkpoint(self, key: str, *, origin: str | None = None, size: int | None = None) -> str:
        """The tree head over the first ``size`` events (None: all) as a C2SP signed note, signed with the
        signer key text ``key`` (``ledger.signing.generate_keys``); ``origin`` defaults to this ledger's."""
        signer, given = Signer.from_text(key), _origin(origin)
        head = self.tree_head(size)
        self._confirm(head)
        note = sign_checkpoint(Checkpoint(given or self.origin(), head.size, head.root), signer)
        engine = self._engine
        if not engine.storage.read_only and not engine.in_batch():
            with engine.write("checkpoint"):  # kept as the latest, for the report's integrity line
                engine.storage.set_latest_checkpoint(note)
        return note

    def _confirm(self, head: TreeHead) -> None:
        """Before signing: walk the log, and refuse (``IntegrityError``) a broken chain, or a tile cache whose
        root is not the one the log's own hashes give: a signature vouches for the log, not for a cache."""
        engine = self._engine
        with engine.read("checkpoint"):
            checker, tiles = _walk(EngineChain(engine), until=head.size)
        report = checker.report()
        if not report.ok:
            raise IntegrityError(f"the log is damaged at position {report.first_bad_position} ({report.reason}): a"
                                 " checkpoint would vouch for it; run verify")
        if merkle.root(head.size, tiles) != head.root:
            raise IntegrityError("the Merkle tile cache does not match the log's hashes; run rebuild('merkle')")

    def check_tiles(self, report: VerifyReport) -> VerifyReport:
        """``verify``'s deep mode: every stored tile must hold what the log's hashes give (``table`` names the
        tile cache when one does not)."""
        with self._engine.read("verify") as storage:  # the chain was walked already: the hashes are the log's
            bad = differing_tile(storage.connection, storage.head.position)
        if bad is None:
            return report
        return msgspec.structs.replace(report, ok=False, table="merkle_tiles", reason=(
            f"the Merkle tile at level {bad[0]}, index {bad[1]} does not match the log; run rebuild('merkle')"))

    def latest_checkpoint(self) -> str | None:
        """The signed checkpoint ``sign_checkpoint`` made last in this ledger (its C2SP note), or None."""
        with self._engine.read("checkpoint") as storage:
            return storage.latest_checkpoint()

    def proof_bundle(self, session_id: str, key: str, *, origin: str | None = None) -> str:
        """One session's events, each with its inclusion proof, and the current tree head signed with the
        signer key text ``key``, as JSON text: ``ledger.bundles.verify_bundle`` checks it offline."""
        sid = check_id(session_id, "session_id")
        signer, given = Signer.from_text(key), _origin(origin)
        with self._tree(None) as (storage, source, size):
            self._engine.existing(sid)
            events = []
            for position, event_id, session, version, type_, schema, recorded_at, data, row_hash in storage.session_rows(sid):
                previous = storage.row_hash(position - 1) if position > 1 else GENESIS
                proof = merkle.inclusion_path(position - 1, size, source)
                events.append(BundleEvent(
                    position=position, event_id=event_id, session_id=session, version=version, type=type_,
                    schema=schema, recorded_at=recorded_at, data=data, hash=bytes(row_hash).hex(),
                    prev=bytes(previous or b"").hex(), proof=[base64.b64encode(step).decode() for step in proof],
                ))
            checkpoint = Checkpoint(given or origin_of(storage.row_hash(1)), size, merkle.root(size, source))
        self._confirm(TreeHead(checkpoint.size, checkpoint.root))
        note = sign_checkpoint(checkpoint, signer)
        return encode_bundle(Bundle(format=FORMAT, version=1, session_id=sid, checkpoint=note, events=events))

    def verify_checkpoint(self, note: str, key: str) -> VerifyReport:
        """Prove that the log extends a signed checkpoint: the signature verifies with the verifier key text
        ``key``; the chain holds; the tree recomputed from the log has the checkpoint's root at its size; and
        a consistency proof carries it to the current head. A change at or before the checkpoint fails,
        naming the first bad position; events appended after it are fine."""
        verifier = Verifier.from_text(key)
        try:
            checkpoint = open_checkpoint(note, verifier)
        except IntegrityError as exc:
            return VerifyReport(ok=False, checked=0, reason=f"the checkpoint is not signed by that key: {exc}")
        engine = self._engine
        with engine.read("verify"):
            checker, tiles = _walk(EngineChain(engine))
            report = checker.report()
            if not report.ok:
                return report
            size = checker.position
            if size < checkpoint.size:
                return _failed(report, size + 1, f"the log ends at position {size}, before the checkpoint's"
                                                 f" size {checkpoint.size}: events were removed")
            old_root = merkle.root(checkpoint.size, tiles)
            if old_root != checkpoint.root:
                first = self._first_rewritten(tiles, checkpoint.size)
                where = (f"position {first} differs from the tree the ledger cached" if first is not None
                         else "the position cannot be told (the tile cache was rewritten too)")
                return _failed(report, first if first is not None else checkpoint.size,
                               f"the log's tree at size {checkpoint.size} does not have the checkpoint's root:"
                               f" the history at or before it was rewritten ({where})")
            proof = merkle.consistency_path(checkpoint.size, size, tiles)
            if not merkle.verify_consistency(checkpoint.size, size, checkpoint.root, merkle.root(size, tiles), proof):
                return _failed(report, checkpoint.size, "the consistency proof from the checkpoint does not verify")
        return report

    def _first_rewritten(self, tiles: Tiles, size: int) -> int | None:
        """The first position whose leaf differs from the one the tile cache kept (None: none differs, or
        the cache holds nothing to compare): the cache remembers the history it was built from."""
        with self._engine.read("verify") as storage:
            cached = TileSource(storage.connection, 0)
            for index in range(size):
                try:
                    kept = cached.subtree(0, index)
                except IntegrityError:
                    return None
                if kept != tiles.subtree(0, index):
                    return index + 1
        return None


def _walk(source: EngineChain, until: int | None = None) -> tuple[ChainChecker, Tiles]:
    """Check the chain from the start (up to position ``until``, None: the end) and build the tree over the
    rows that hold, in memory."""
    checker, tiles = ChainChecker(), Tiles({})
    while until is None or checker.position < until:
        rows = source.raw_rows(checker.position, _CHUNK if until is None else min(_CHUNK, until - checker.position))
        good = checker.check(rows)
        tiles.extend(0, [merkle.leaf_hash(bytes(row[8])) for row in rows[: checker.position - tiles.leaves]])
        if not good or not rows or (until is None and len(rows) < _CHUNK):
            break
    return checker, tiles


def _origin(origin: object) -> str | None:
    """A checkpoint origin given (None: the ledger's own); an empty or non-text one is ``InvalidInput``."""
    if origin is None:
        return None
    if not isinstance(origin, str) or not origin.strip():
        raise InvalidInput("origin must be a non-empty line of text (or None for the ledger's own)", field="origin")
    return origin


def _failed(report: VerifyReport, position: int, reason: str) -> VerifyReport:
    return VerifyReport(ok=False, checked=report.checked, first_bad_position=position, reason=reason,
                        head=Digest(report.head.position, report.head.hash))
