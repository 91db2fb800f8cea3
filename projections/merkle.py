"""The Merkle tree's tiles: complete subtree hashes over the log, kept so a proof costs O(log n) reads.

The tree (``ledger.merkle``, RFC 9162 section 2.1) has one leaf per event in
position order: leaf ``i`` is SHA-256(0x00 || the chain hash of position
``i + 1``). A purge keeps every row's chain hash, so it keeps every leaf.

As in C2SP tlog-tiles, the hashes are stored in tiles of 256: the tile at
``level`` ``L`` and index ``i`` holds the hashes of the tree nodes at height
``8 * L`` numbered ``256 * i`` to ``256 * i + 255`` (height 0: the leaves),
concatenated, 32 bytes each. A full tile's root (eight levels up) is the next
entry of the tile one level above; the right-most tile of each level may be
partial and grows as events arrive. Any complete subtree is then at most 128
hashes of one tile folded up to seven levels, and a root or a proof needs
O(log n) of them.

The table is a cache rebuilt from the log (a lazy projector: brought level
before a proof is made, never on the append path). ``TileSource`` reads it,
and hashes in memory the leaves of positions past the point the table has
reached (a read-only ledger cannot bring it level).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from ledger.errors import IntegrityError
from ledger.events import RecordedEvent
from ledger.merkle import LEAF_PREFIX, NODE_PREFIX, leaf_hash

from .base import Connection, Projector, dialect_of

WIDTH = 256  # hashes per tile
HEIGHT = 8  # tree levels per tile level: 2 ** HEIGHT == WIDTH
_HASH = 32
_CHUNK = 50_000  # hashes read per step while levelling
_STRICT = ", STRICT" if sqlite3.sqlite_version_info >= (3, 37, 0) else ""
_SQLITE_SCHEMA = (
    "CREATE TABLE merkle_tiles (level INTEGER NOT NULL, idx INTEGER NOT NULL, hashes BLOB NOT NULL,"
    f" PRIMARY KEY (level, idx)) WITHOUT ROWID{_STRICT}"
)
_PG_SCHEMA = (
    "CREATE TABLE merkle_tiles (level INTEGER NOT NULL, idx BIGINT NOT NULL, hashes BYTEA NOT NULL,"
    " PRIMARY KEY (level, idx))"
)
_UPSERT = {
    "sqlite": "INSERT OR REPLACE INTO merkle_tiles (level, idx, hashes) VALUES (?, ?, ?)",
    "postgres": "INSERT INTO merkle_tiles (level, idx, hashes) VALUES (?, ?, ?)"
    " ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes",
}


def tile_root(hashes: bytes) -> bytes:
    """The root of a full tile: its 256 hashes folded up eight levels."""
    return fold([hashes[i : i + _HASH] for i in range(0, len(hashes), _HASH)])


def fold(nodes: list[bytes]) -> bytes:
    """The root of a complete subtree given its nodes at one height (a power of two of them, in order):
    ``ledger.merkle.node_hash`` pair by pair, inlined (levelling hashes about one node per leaf)."""
    sha256, prefix = hashlib.sha256, NODE_PREFIX
    while len(nodes) > 1:
        nodes = [sha256(prefix + nodes[i] + nodes[i + 1]).digest() for i in range(0, len(nodes), 2)]
    return nodes[0]


class Tiles:
    """The right-most tile of each level, grown leaf by leaf; ``changed`` says which to write back."""

    def __init__(self, tails: dict[int, tuple[int, bytearray]]) -> None:
        self.tails = tails  # level -> (tile index, its hashes so far)
        self.changed: set[int] = set()
        self.full: dict[tuple[int, int], bytes] = {}  # tiles that filled up here, to write: (level, index) -> hashes

    @property
    def leaves(self) -> int:
        """How many leaves the tiles hold."""
        index, hashes = self.tails.get(0, (0, bytearray()))
        return index * WIDTH + len(hashes) // _HASH

    def push(self, level: int, node: bytes) -> None:
        """Add the next node at tile level ``level``; a tile that fills up passes its root up a level."""
        self.extend(level, [node])

    def extend(self, level: int, nodes: Sequence[bytes]) -> None:
        """Add nodes at tile level ``level``, a tile's worth at a time; the roots of the tiles they fill go up a
        level together."""
        index, hashes = self.tails.get(level, (0, bytearray()))
        roots: list[bytes] = []
        start, full = 0, WIDTH * _HASH
        while start < len(nodes):
            if len(hashes) == full:
                index, hashes = index + 1, bytearray()
            room = WIDTH - len(hashes) // _HASH
            hashes += b"".join(nodes[start : start + room])
            start += room
            if len(hashes) == full:
                done = bytes(hashes)
                self.full[(level, index)] = done
                roots.append(tile_root(done))
        self.tails[level] = (index, hashes)
        self.changed.add(level)
        if roots:
            self.extend(level + 1, roots)

    def tile(self, level: int, index: int) -> bytes | None:
        """A tile filled here, or the right-most one of its level (None: neither)."""
        found = self.full.get((level, index))
        if found is None:
            tail = self.tails.get(level)
            if tail is not None and tail[0] == index:
                found = bytes(tail[1])
        return found

    def subtree(self, level: int, index: int) -> bytes:
        """A ``ledger.merkle.NodeSource`` over the tiles held here (a tree built in memory)."""
        return subtree(self.tile, level, index)


def _tails(conn: Connection) -> dict[int, tuple[int, bytearray]]:
    """The right-most tile of each level: one index seek per level (a few levels hold a billion leaves)."""
    tails: dict[int, tuple[int, bytearray]] = {}
    while True:
        level = len(tails)
        row = conn.execute(
            "SELECT idx, hashes FROM merkle_tiles WHERE level = ? ORDER BY idx DESC LIMIT 1", (level,)
        ).fetchone()
        if row is None:
            return tails
        tails[level] = (int(row[0]), bytearray(bytes(row[1])))


def _grow(conn: Connection, tiles: Tiles, head: int) -> None:
    """Add the leaves of the positions after those the tiles hold, up to ``head``, read from the log's hash
    column in chunks (no payload is decoded); ``IntegrityError`` when the log has a gap or ends before."""
    done, sha256 = tiles.leaves, hashlib.sha256
    while done < head:
        rows = conn.execute(
            "SELECT position, hash FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?",
            (done, head, _CHUNK),
        ).fetchall()
        if not rows or rows[-1][0] != done + len(rows):  # positions are gapless: the last one tells
            raise IntegrityError(f"the log misses positions between {done} and {head}; run verify()")
        tiles.extend(0, [sha256(LEAF_PREFIX + bytes(row_hash)).digest() for _, row_hash in rows])  # leaf_hash
        done += len(rows)


class MerkleProjector(Projector):
    """The built-in tile cache of the Merkle tree (``merkle_tiles``), in both dialects; lazy."""

    name = "merkle"
    version = 1
    dialects = frozenset({"sqlite", "postgres"})
    builtin = True
    inline = False
    tables = ("merkle_tiles",)

    def create(self, db: Any) -> None:
        """Create ``merkle_tiles`` (level, index, hashes), keyed by level and index."""
        db.execute(_PG_SCHEMA if dialect_of(db) == "postgres" else _SQLITE_SCHEMA)

    reads_log = True

    def level(self, conn: Connection, after: int, head: int) -> None:
        """Add the leaves of positions ``after + 1`` to ``head``, read from the log's hash column (no payload is
        decoded), in chunks; write back the tiles that changed."""
        tiles = Tiles(_tails(conn))
        if tiles.leaves != after:
            raise IntegrityError(
                f"the Merkle tiles hold {tiles.leaves} leaves, but their projector stands at position {after};"
                " run rebuild()"
            )
        _grow(conn, tiles, head)
        self._write(conn, tiles)

    def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        """Add each event's leaf, in log order (the runner calls ``level`` instead: this is for a caller that
        hands the events over), and write back the tiles that changed."""
        tiles = Tiles(_tails(conn))
        if events and tiles.leaves != events[0].position - 1:
            raise IntegrityError(
                f"the Merkle tiles hold {tiles.leaves} leaves, but the next event is at position"
                f" {events[0].position}; run rebuild()"
            )
        tiles.extend(0, [leaf_hash(bytes.fromhex(event.hash)) for event in events])
        self._write(conn, tiles)

    @staticmethod
    def _write(conn: Connection, tiles: Tiles) -> None:
        rows = [(level, index, hashes) for (level, index), hashes in tiles.full.items()]
        rows += [(level, tiles.tails[level][0], bytes(tiles.tails[level][1])) for level in sorted(tiles.changed)]
        conn.executemany(_UPSERT[dialect_of(conn)], rows)

    # A purge keeps every row's chain hash, so every leaf and every tile stands: nothing to do (``purged``).


def subtree(tile: Callable[[int, int], bytes | None], level: int, index: int) -> bytes:
    """The hash of the complete subtree at ``level`` covering leaves [index * 2**level, (index + 1) * 2**level),
    from the tile that holds its nodes at the tile height below it (``tile(level, index)``)."""
    tile_level, rest = divmod(level, HEIGHT)
    count = 1 << rest
    first = index * count  # the first of its nodes at height HEIGHT * tile_level
    hashes = tile(tile_level, first // WIDTH)
    start = (first % WIDTH) * _HASH
    nodes = [] if hashes is None else [hashes[i : i + _HASH] for i in range(start, start + count * _HASH, _HASH)]
    if len(nodes) != count or any(len(node) != _HASH for node in nodes):
        raise IntegrityError(f"the Merkle tiles do not hold the subtree at level {level}, index {index}; run rebuild()")
    return fold(nodes)


class TileSource:
    """A ``ledger.merkle.NodeSource`` for a tree of ``size`` leaves: the stored tiles, and the leaves of the
    positions past those the table has reached, read from the log and hashed in memory."""

    def __init__(self, conn: Connection, size: int) -> None:
        self._conn = conn
        self._read: dict[tuple[int, int], bytes] = {}
        self._memory = Tiles(_tails(conn))
        _grow(conn, self._memory, size)

    def _tile(self, level: int, index: int) -> bytes | None:
        found = self._memory.tile(level, index) or self._read.get((level, index))
        if found is None:
            row = self._conn.execute(
                "SELECT hashes FROM merkle_tiles WHERE level = ? AND idx = ?", (level, index)
            ).fetchone()
            if row is not None:
                found = self._read[(level, index)] = bytes(row[0])
        return found

    def subtree(self, level: int, index: int) -> bytes:
        """The hash of the complete subtree at ``level`` covering leaves [index * 2**level, (index + 1) * 2**level)."""
        return subtree(self._tile, level, index)


def differing_tile(conn: Connection, head: int) -> tuple[int, int] | None:
    """(level, index) of the first stored tile that does not hold what the log's hashes give (a partial one
    may hold fewer), or None: ``verify``'s deep mode checks the cache with it."""
    tiles = Tiles({})
    _grow(conn, tiles, head)
    for level, index, hashes in conn.execute("SELECT level, idx, hashes FROM merkle_tiles ORDER BY level, idx"):
        expected = tiles.tile(int(level), int(index))
        if expected is None or not expected.startswith(bytes(hashes)):
            return int(level), int(index)
    return None
