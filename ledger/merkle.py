"""The Merkle tree of RFC 9162 section 2.1 (Certificate Transparency v2): tree heads, inclusion and consistency proofs.

A leaf is ``SHA-256(0x00 || entry)`` and a node ``SHA-256(0x01 || left || right)``; the tree over n leaves
splits at k, the largest power of two smaller than n. Roots and proofs are built from a :class:`NodeSource`,
which answers only for complete, aligned subtrees (what a storage backend caches as tiles); each root or proof
asks it for O(log n) of them. The verifiers follow the RFC's algorithms step by step and never raise on a bad
proof (wrong length, sizes out of range, hashes that are not 32 bytes): they return False. They raise
:class:`InvalidInput` only for an argument of the wrong Python type.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from .errors import InvalidInput

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """The hash of a leaf holding ``entry``: SHA-256(0x00 || entry)."""
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node over two child hashes: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


class NodeSource(Protocol):
    """Where roots and proofs read tree hashes from: complete, aligned subtrees only."""

    def subtree(self, level: int, index: int) -> bytes:
        """The hash of the complete subtree at ``level`` over leaves [index * 2**level, (index + 1) * 2**level);
        level 0 is a leaf hash."""
        ...


class MemorySource:
    """A :class:`NodeSource` over leaf hashes held in memory, memoising the subtrees it computes: the plain
    reference the tests hold the tile cache to, and a tree for whoever holds the leaves (an auditor with a
    copy of the hashes). It refuses a subtree that is not complete within its leaves."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._leaves: list[bytes] = []
        self._memo: dict[tuple[int, int], bytes] = {}
        for leaf in leaves:
            self.append(leaf)

    @classmethod
    def from_entries(cls, entries: Iterable[bytes]) -> MemorySource:
        """A source over the leaves holding ``entries`` (each hashed with :func:`leaf_hash`)."""
        return cls(leaf_hash(_check_bytes(entry, "entries")) for entry in entries)

    def __len__(self) -> int:
        return len(self._leaves)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (32 bytes) at the end; the subtrees memoised so far stay valid."""
        if len(_check_bytes(leaf, "leaves")) != HASH_SIZE:
            raise InvalidInput(f"a leaf hash must be {HASH_SIZE} bytes; got {len(leaf)}", field="leaves")
        self._leaves.append(leaf)

    def subtree(self, level: int, index: int) -> bytes:
        """The hash of the complete subtree at ``level`` over leaves [index * 2**level, (index + 1) * 2**level)."""
        level, index = _check_int(level, "level"), _check_int(index, "index")
        if level < 0 or index < 0 or (index + 1) << level > len(self._leaves):
            raise InvalidInput(f"no complete subtree at level {level}, index {index} over {len(self._leaves)} leaves",
                               field="index", limit=len(self._leaves))
        return self._subtree(level, index)

    def _subtree(self, level: int, index: int) -> bytes:
        if level == 0:
            return self._leaves[index]
        found = self._memo.get((level, index))
        if found is None:
            found = node_hash(self._subtree(level - 1, 2 * index), self._subtree(level - 1, 2 * index + 1))
            self._memo[level, index] = found
        return found


def root(size: int, source: NodeSource) -> bytes:
    """MTH(D[0:size]), the root of the tree over the first ``size`` leaves (EMPTY_ROOT for none)."""
    size = _check_int(size, "size")
    if size < 0:
        raise InvalidInput(f"size must be 0 or more; got {size}", field="size")
    return _range_root(0, size, _check_source(source)) if size else EMPTY_ROOT


def inclusion_path(index: int, size: int, source: NodeSource) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1: the audit path, leaf to root, proving the leaf at 0-based ``index``
    is in the tree of ``size`` leaves. Raises InvalidInput unless 0 <= index < size."""
    index, size, source = _check_int(index, "index"), _check_int(size, "size"), _check_source(source)
    if size < 1:
        raise InvalidInput(f"size must be 1 or more for an inclusion proof; got {size}", field="size")
    if not 0 <= index < size:
        raise InvalidInput(f"index must be between 0 and {size - 1}; got {index}", field="index", limit=size)
    siblings: list[bytes] = []  # root to leaf; the RFC's recursion unrolled
    start, width = 0, size
    while width > 1:
        k = _split(width)
        if index < start + k:
            siblings.append(_range_root(start + k, start + width, source))
            width = k
        else:
            siblings.append(source.subtree(k.bit_length() - 1, start // k))
            start, width = start + k, width - k
    siblings.reverse()
    return siblings


def consistency_path(old_size: int, new_size: int, source: NodeSource) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 2.1.4.1: the proof that the tree of ``new_size`` leaves extends the one of
    ``old_size``; empty when the sizes are equal or old_size is 0. Raises InvalidInput unless
    0 <= old_size <= new_size."""
    old_size, new_size = _check_int(old_size, "old_size"), _check_int(new_size, "new_size")
    source = _check_source(source)
    if new_size < 0:
        raise InvalidInput(f"new_size must be 0 or more; got {new_size}", field="new_size")
    if not 0 <= old_size <= new_size:
        raise InvalidInput(f"old_size must be between 0 and new_size {new_size}; got {old_size}", field="old_size",
                           limit=new_size)
    if old_size in (0, new_size):
        return []
    siblings: list[bytes] = []  # root to leaf; SUBPROOF(m, D[n], b) unrolled
    start, width, old, whole = 0, new_size, old_size, True
    while old != width:
        k = _split(width)
        if old <= k:
            siblings.append(_range_root(start + k, start + width, source))
            width = k
        else:
            siblings.append(source.subtree(k.bit_length() - 1, start // k))
            start, width, old, whole = start + k, width - k, old - k, False
    # The loop ends on a complete subtree of the old tree; its root is sent unless it is the old root itself.
    head = [] if whole else [source.subtree(width.bit_length() - 1, start // width)]
    siblings.reverse()
    return head + siblings


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``proof`` shows the leaf hash ``leaf`` (not the entry: ``leaf_hash(entry)``) at 0-based ``index``
    in the tree of ``size`` leaves whose root is ``root``: the algorithm of RFC 9162 2.1.3.2."""
    leaf, root = _check_bytes(leaf, "leaf"), _check_bytes(root, "root")
    index, size, proof = _check_int(index, "index"), _check_int(size, "size"), _check_proof(proof)
    if not 0 <= index < size or not _all_hashes(leaf, root, *proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows the tree of ``new_size`` leaves with root ``new_root`` extends the one of
    ``old_size`` with ``old_root``: the algorithm of RFC 9162 2.1.4.2. The RFC leaves two cases open; here
    equal sizes need an empty proof and equal roots, and old_size 0 (whose root is EMPTY_ROOT) is consistent
    with any tree given an empty proof."""
    old_size, new_size = _check_int(old_size, "old_size"), _check_int(new_size, "new_size")
    old_root, new_root = _check_bytes(old_root, "old_root"), _check_bytes(new_root, "new_root")
    proof = _check_proof(proof)
    if not 0 <= old_size <= new_size or not _all_hashes(old_root, new_root, *proof):
        return False
    if old_size == 0 and old_root != EMPTY_ROOT:
        return False  # the empty tree has one root
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False  # step 1 of the RFC's algorithm
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


def _split(width: int) -> int:
    """k of the RFC: the largest power of two smaller than ``width`` (which is 2 or more)."""
    return 1 << ((width - 1).bit_length() - 1)


def _range_root(start: int, end: int, source: NodeSource) -> bytes:
    """MTH(D[start:end]) for a range the RFC's recursion visits (``start`` a multiple of a power of two at least
    as wide as the range): its complete subtrees, widest first, folded from the right."""
    parts: list[bytes] = []
    while start < end:
        level = (end - start).bit_length() - 1
        parts.append(source.subtree(level, start >> level))
        start += 1 << level
    result = parts.pop()
    while parts:
        result = node_hash(parts.pop(), result)
    return result


def _all_hashes(*hashes: bytes) -> bool:
    return all(len(h) == HASH_SIZE for h in hashes)


def _check_source(source: object) -> NodeSource:
    if not callable(getattr(source, "subtree", None)):
        raise InvalidInput(f"source must be a NodeSource (with subtree(level, index)), not {type(source).__name__}",
                           field="source")
    return source  # type: ignore[return-value]  # checked for its one method just above


def _check_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be an int; got {type(value).__name__}", field=field)
    return value


def _check_bytes(value: object, field: str) -> bytes:
    if not isinstance(value, bytes):
        raise InvalidInput(f"{field} must be bytes; got {type(value).__name__}", field=field)
    return value


def _check_proof(proof: object) -> list[bytes]:
    if not isinstance(proof, Sequence) or isinstance(proof, (str, bytes, bytearray, memoryview)):
        raise InvalidInput(f"proof must be a sequence of bytes; got {type(proof).__name__}", field="proof")
    return [_check_bytes(item, "proof") for item in proof]
