"""ledger.merkle against RFC 9162 2.1: hypothesis laws, the RFC's own recursion, pymerkle, and the CT test vectors."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import pymerkle  # type: ignore[import-untyped]  # no stubs; a test-only dependency
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import InvalidInput
from ledger.merkle import (
    EMPTY_ROOT,
    MemorySource,
    consistency_path,
    inclusion_path,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

SETTINGS = settings(max_examples=40, deadline=None)
MAX = 300
ENTRIES = [b"entry %d" % i for i in range(MAX)]
LEAVES = [leaf_hash(entry) for entry in ENTRIES]
# One source for every size up to MAX: the module only ever reads leaves below the size it is given
# (test_only_complete_aligned_subtrees_within_the_size_are_asked_for).
SOURCE = MemorySource(LEAVES)
PYMERKLE = pymerkle.InmemoryTree.init_from_entries(ENTRIES)  # sha256, security on: the 0x00/0x01 prefixes


# -- the RFC's recursion, written out naively as the reference ---------------------------------------------------

def _k(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def naive_root(d: Sequence[bytes]) -> bytes:
    """MTH(D[n]), RFC 9162 2.1.1, over leaf hashes."""
    if not d:
        return EMPTY_ROOT
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return node_hash(naive_root(d[:k]), naive_root(d[k:]))


def naive_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 2.1.3.1."""
    if len(d) == 1:
        return []
    k = _k(len(d))
    return naive_path(m, d[:k]) + [naive_root(d[k:])] if m < k else naive_path(m - k, d[k:]) + [naive_root(d[:k])]


def naive_proof(m: int, d: Sequence[bytes], b: bool = True) -> list[bytes]:
    """SUBPROOF(m, D[n], b), RFC 9162 2.1.4.1."""
    if m == len(d):
        return [] if b else [naive_root(d)]
    k = _k(len(d))
    return naive_proof(m, d[:k], b) + [naive_root(d[k:])] if m <= k else naive_proof(m - k, d[k:], False) + [
        naive_root(d[:k])]


def path_shape(m: int, n: int) -> tuple[bool, ...]:
    """Which side each hash of PATH(m, D[n]) is on (True: left), leaf to root: all a verifier can tell."""
    if n == 1:
        return ()
    k = _k(n)
    return path_shape(m, k) + (False,) if m < k else path_shape(m - k, n - k) + (True,)


def proof_shape(m: int, n: int, b: bool = True) -> tuple[str, ...]:
    """The same for SUBPROOF(m, D[n], b): "old" for a subtree of the old tree sent whole, then the sides."""
    if m == n:
        return () if b else ("old",)
    k = _k(n)
    return proof_shape(m, k, b) + ("right",) if m <= k else proof_shape(m - k, n - k, False) + ("left",)


def flip(data: bytes, bit: int) -> bytes:
    return data[: bit // 8] + bytes([data[bit // 8] ^ (1 << bit % 8)]) + data[bit // 8 + 1:]


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX))
    return size, draw(st.integers(0, size - 1))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(1, MAX))
    return draw(st.integers(1, new)), new


BITS = st.integers(0, 255)


# -- roots and paths are the RFC's --------------------------------------------------------------------------------

def test_root_equals_the_naive_recursive_tree_hash_at_every_size() -> None:
    for size in range(MAX + 1):
        assert root(size, SOURCE) == naive_root(LEAVES[:size])
    assert root(0, SOURCE) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_leaf_and_node_hashes_carry_the_rfc_prefixes() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()


def test_paths_and_proofs_equal_the_rfc_recursion_for_every_small_tree() -> None:
    for n in range(1, 65):
        for m in range(n):
            assert inclusion_path(m, n, SOURCE) == naive_path(m, LEAVES[:n])
        for m in range(1, n + 1):
            assert consistency_path(m, n, SOURCE) == naive_proof(m, LEAVES[:n])


@SETTINGS
@given(size_and_index(), two_sizes())
def test_paths_and_proofs_equal_the_rfc_recursion(case: tuple[int, int], sizes: tuple[int, int]) -> None:
    (size, index), (old, new) = case, sizes
    assert inclusion_path(index, size, SOURCE) == naive_path(index, LEAVES[:size])
    assert consistency_path(old, new, SOURCE) == naive_proof(old, LEAVES[:new])


# -- inclusion laws -------------------------------------------------------------------------------------------------

@SETTINGS
@given(st.integers(1, MAX))
def test_every_inclusion_proof_verifies(size: int) -> None:
    top = root(size, SOURCE)
    for index in range(size):
        assert verify_inclusion(LEAVES[index], index, size, inclusion_path(index, size, SOURCE), top)


@SETTINGS
@given(size_and_index(), BITS)
def test_an_inclusion_proof_fails_with_any_bit_flipped(case: tuple[int, int], bit: int) -> None:
    size, index = case
    leaf, top, proof = LEAVES[index], root(size, SOURCE), inclusion_path(index, size, SOURCE)
    assert not verify_inclusion(flip(leaf, bit), index, size, proof, top)
    assert not verify_inclusion(leaf, index, size, proof, flip(top, bit))
    for i in range(len(proof)):
        assert not verify_inclusion(leaf, index, size, [*proof[:i], flip(proof[i], bit), *proof[i + 1:]], top)


@SETTINGS
@given(size_and_index(), st.lists(st.tuples(st.integers(-2, 2 * MAX), st.integers(-2, 2 * MAX)), max_size=20))
def test_an_inclusion_proof_holds_at_another_index_or_size_only_where_the_path_has_the_same_shape(
        case: tuple[int, int], others: list[tuple[int, int]]) -> None:
    # The root commits to the leaves, not to the size: PATH(0, D[7]) and PATH(0, D[8]) have the same shape, so
    # the same hashes check out for both claims. Any other index or size fails (CT's corruptions included).
    size, index = case
    leaf, top, proof = LEAVES[index], root(size, SOURCE), inclusion_path(index, size, SOURCE)
    probes = [(index - 1, size), (index + 1, size), (index ^ 2, size), (index, size * 2), (index, size // 2), *others]
    for other_index, other_size in probes:
        same = 0 <= other_index < other_size and path_shape(other_index, other_size) == path_shape(index, size)
        assert verify_inclusion(leaf, other_index, other_size, proof, top) == same


@SETTINGS
@given(size_and_index())
def test_an_inclusion_proof_fails_cut_extended_or_padded(case: tuple[int, int]) -> None:
    size, index = case
    leaf, top, proof = LEAVES[index], root(size, SOURCE), inclusion_path(index, size, SOURCE)
    some = hashlib.sha256(b"some hash").digest()
    for wrong in ([*proof, b""], [*proof, top], [b"", *proof], [top, *proof], [*proof, some], proof[:-1],
                  proof[:1] + [some] + proof[1:], [p + b"\x00" for p in proof], [p[:31] for p in proof]):
        if wrong != proof:
            assert not verify_inclusion(leaf, index, size, wrong, top)
    assert not verify_inclusion(leaf, index, size, proof, EMPTY_ROOT)
    assert not verify_inclusion(b"WrongLeaf", index, size, proof, top)


# -- consistency laws -----------------------------------------------------------------------------------------------

@SETTINGS
@given(two_sizes())
def test_every_consistency_proof_verifies(sizes: tuple[int, int]) -> None:
    old, new = sizes
    proof = consistency_path(old, new, SOURCE)
    assert verify_consistency(old, new, root(old, SOURCE), root(new, SOURCE), proof)
    assert (proof == []) == (old == new)


@SETTINGS
@given(two_sizes(), BITS)
def test_a_consistency_proof_fails_with_any_bit_flipped(sizes: tuple[int, int], bit: int) -> None:
    old, new = sizes
    old_root, new_root, proof = root(old, SOURCE), root(new, SOURCE), consistency_path(old, new, SOURCE)
    assert not verify_consistency(old, new, flip(old_root, bit), new_root, proof)
    assert not verify_consistency(old, new, old_root, flip(new_root, bit), proof)
    for i in range(len(proof)):
        assert not verify_consistency(old, new, old_root, new_root, [*proof[:i], flip(proof[i], bit), *proof[i + 1:]])


@SETTINGS
@given(two_sizes().filter(lambda s: s[0] < s[1]),
       st.lists(st.tuples(st.integers(-2, 2 * MAX), st.integers(-2, 2 * MAX)), max_size=20))
def test_a_consistency_proof_holds_for_other_sizes_only_where_the_proof_has_the_same_shape(
        sizes: tuple[int, int], others: list[tuple[int, int]]) -> None:
    # As for inclusion: PROOF(4, D[8]) and PROOF(4, D[6]) are both one hash on the right of the old root.
    old, new = sizes
    old_root, new_root, proof = root(old, SOURCE), root(new, SOURCE), consistency_path(old, new, SOURCE)
    probes = [(old - 1, new), (old + 1, new), (old ^ 2, new), (old, new * 2), (old, new // 2), (new, old), *others]
    for other_old, other_new in probes:
        same = 0 < other_old < other_new and proof_shape(other_old, other_new) == proof_shape(old, new)
        assert verify_consistency(other_old, other_new, old_root, new_root, proof) == same


@SETTINGS
@given(two_sizes().filter(lambda s: s[0] < s[1]))
def test_a_consistency_proof_fails_cut_extended_padded_or_with_roots_swapped(sizes: tuple[int, int]) -> None:
    old, new = sizes
    old_root, new_root, proof = root(old, SOURCE), root(new, SOURCE), consistency_path(old, new, SOURCE)
    for wrong in ([], proof[:-1], [*proof, b""], [*proof, old_root], [*proof, new_root], [b"", *proof],
                  [old_root, *proof], [new_root, *proof], [proof[0], *proof], [p[:31] for p in proof]):
        assert not verify_consistency(old, new, old_root, new_root, wrong)
    assert not verify_consistency(old, new, new_root, old_root, proof)
    assert not verify_consistency(old, new, b"WrongRoot", new_root, proof)


def test_equal_sizes_are_consistent_with_an_empty_proof_and_equal_roots_only() -> None:
    some = hashlib.sha256(b"some hash").digest()
    for size in (0, 1, 5, 8):
        top = root(size, SOURCE)
        assert verify_consistency(size, size, top, top, [])
        assert not verify_consistency(size, size, top, some, [])
        assert not verify_consistency(size, size, top, top, [top])


def test_size_zero_is_consistent_with_any_tree_given_an_empty_proof_and_the_empty_root() -> None:
    some = hashlib.sha256(b"some hash").digest()
    for new in (1, 2, 7, MAX):
        assert verify_consistency(0, new, EMPTY_ROOT, root(new, SOURCE), [])
        assert verify_consistency(0, new, EMPTY_ROOT, some, [])
        assert not verify_consistency(0, new, EMPTY_ROOT, root(new, SOURCE), [EMPTY_ROOT])
        assert not verify_consistency(0, new, some, root(new, SOURCE), [])  # the empty tree has one root only


# -- pymerkle, an independent implementation -----------------------------------------------------------------------
# pymerkle counts leaves from 1; its inclusion path starts with the leaf hash itself; its consistency path
# never leaves out the old root and, where the RFC sends MTH(D[k:n]) for the subtree right of a complete
# old subtree, it sends that subtree's leftmost leaf and the left-descent siblings instead (its "subset"
# marks the hashes that fold to the old root).

def test_root_equals_pymerkles_root_for_the_same_entries() -> None:
    for size in range(MAX + 1):
        assert root(size, SOURCE) == PYMERKLE.get_root(size)


@SETTINGS
@given(size_and_index())
def test_inclusion_paths_are_pymerkles_without_its_leading_leaf_hash(case: tuple[int, int]) -> None:
    size, index = case
    theirs = PYMERKLE.prove_inclusion(index + 1, size)
    ours = inclusion_path(index, size, SOURCE)
    assert theirs.path == [LEAVES[index], *ours]
    assert verify_inclusion(LEAVES[index], index, size, theirs.path[1:], PYMERKLE.get_root(size))
    mine = pymerkle.InclusionProof("sha256", True, size, index + 1, theirs.rule, [LEAVES[index], *ours])
    pymerkle.verify_inclusion(LEAVES[index], root(size, SOURCE), mine, index=index + 1, size=size)


def rfc_from_pymerkle(proof: pymerkle.ConsistencyProof) -> list[bytes]:
    """PROOF(m, D[n]) out of pymerkle's path: fold its hashes before the first old-tree one into MTH(D[k:n]),
    and drop the old root where m is a power of two (the RFC's verifier supplies it)."""
    first_old = proof.subset.index(1)
    folded = proof.path[0]
    for bit, digest in zip(proof.rule[: first_old - 1], proof.path[1:first_old]):
        folded = node_hash(folded, digest) if bit == 0 else node_hash(digest, folded)
    m = proof.prior_size
    head = [] if m & (m - 1) == 0 else [proof.path[first_old]]
    return [*head, folded, *proof.path[first_old + 1:]]


@SETTINGS
@given(two_sizes().filter(lambda s: s[0] < s[1]))
def test_consistency_proofs_are_pymerkles_with_its_right_subtree_folded(sizes: tuple[int, int]) -> None:
    old, new = sizes
    theirs = PYMERKLE.prove_consistency(old, new)
    ours = consistency_path(old, new, SOURCE)
    assert rfc_from_pymerkle(theirs) == ours
    assert verify_consistency(old, new, PYMERKLE.get_root(old), PYMERKLE.get_root(new), ours)
    pymerkle.verify_consistency(root(old, SOURCE), root(new, SOURCE), theirs, prior_size=old, later_size=new)


# -- fixed vectors --------------------------------------------------------------------------------------------------
# From transparency-dev/merkle, proof/verify_test.go (the Go reference for RFC 6962/9162 logs; the same tree as
# Certificate Transparency's merkle_tree_test): leaves, roots of sizes 1..8, inclusion proofs (leaf counted from
# 1 there) and consistency proofs.

def _h(text: str) -> bytes:
    return bytes.fromhex(text)


CT_ENTRIES = [_h(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                              "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [_h(x) for x in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
CT_INCLUSION = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
CT_SOURCE = MemorySource.from_entries(CT_ENTRIES)


def test_roots_match_the_transparency_dev_vectors() -> None:
    assert [root(size, CT_SOURCE) for size in range(1, 9)] == CT_ROOTS


@pytest.mark.parametrize(("leaf", "size", "proof"), CT_INCLUSION)
def test_inclusion_proofs_match_the_transparency_dev_vectors(leaf: int, size: int, proof: list[str]) -> None:
    expected = [_h(x) for x in proof]
    assert inclusion_path(leaf - 1, size, CT_SOURCE) == expected
    assert verify_inclusion(leaf_hash(CT_ENTRIES[leaf - 1]), leaf - 1, size, expected, CT_ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_consistency_proofs_match_the_transparency_dev_vectors(old: int, new: int, proof: list[str]) -> None:
    expected = [_h(x) for x in proof]
    assert consistency_path(old, new, CT_SOURCE) == expected
    assert verify_consistency(old, new, CT_ROOTS[old - 1], CT_ROOTS[new - 1], expected)


def test_the_transparency_dev_edge_cases_fail_as_there() -> None:
    # Their TestVerifyConsistency cases that must fail, with 32-byte stand-ins for their "don't care" roots.
    one, two, empty = hashlib.sha256(b"1").digest(), hashlib.sha256(b"2").digest(), EMPTY_ROOT
    for old, new, old_root, new_root, proof in [
        (0, 0, one, two, []), (1, 1, one, two, []), (1, 0, one, two, []), (2, 1, one, two, []), (1, 2, one, two, []),
        (0, 0, empty, two, []), (1, 1, empty, two, []),
        (0, 0, empty, empty, [empty]), (0, 1, empty, empty, [empty]), (1, 1, empty, empty, [empty]),
    ]:
        assert not verify_consistency(old, new, old_root, new_root, proof)
    assert verify_consistency(1, 1, two, two, [])
    some = _h("abacaba000000000000000000000000000000000000000000060061e00123456")
    for index, size in [(0, 0), (0, 1), (1, 0), (2, 1)]:  # TestVerifyInclusion's probes with an empty proof
        assert not verify_inclusion(some, index, size, [], b"")
        assert not verify_inclusion(b"", index, size, [], EMPTY_ROOT)
        assert not verify_inclusion(some, index, size, [], EMPTY_ROOT)


# -- what a storage backend is asked for ----------------------------------------------------------------------------

class Recording:
    """A NodeSource that fails on any subtree not complete within ``size`` leaves, and counts the reads."""

    def __init__(self, inner: MemorySource, size: int) -> None:
        self.inner, self.size, self.calls = inner, size, 0

    def subtree(self, level: int, index: int) -> bytes:
        assert level >= 0 and index >= 0 and (index + 1) << level <= self.size, (level, index, self.size)
        self.calls += 1
        return self.inner.subtree(level, index)


def test_only_complete_aligned_subtrees_within_the_size_are_asked_for() -> None:
    for n in range(1, 70):
        assert root(n, Recording(SOURCE, n)) == root(n, SOURCE)
        for m in range(n):
            assert inclusion_path(m, n, Recording(SOURCE, n)) == inclusion_path(m, n, SOURCE)
        for m in range(n + 1):
            assert consistency_path(m, n, Recording(SOURCE, n)) == consistency_path(m, n, SOURCE)


@pytest.fixture(scope="module")
def big() -> MemorySource:
    return MemorySource(hashlib.sha256(b"%d" % i).digest() for i in range(100_000))


@pytest.mark.parametrize("n", [1_000, 100_000])
def test_a_root_or_proof_reads_O_log_n_subtrees(big: MemorySource, n: int) -> None:
    bound = 4 * math.log2(n) + 4
    picks = sorted({0, 1, 2, n // 3, n // 2, n - 2, n - 1, *(2**p for p in range(n.bit_length() - 1)),
                    *range(1, n, max(1, n // 97))})

    def reads(call: Callable[[Recording], object]) -> int:
        source = Recording(big, n)
        call(source)
        return source.calls

    assert reads(lambda s: root(n, s)) <= n.bit_length()
    assert max(reads(lambda s: inclusion_path(i, n, s)) for i in picks) <= bound
    assert max(reads(lambda s: consistency_path(m, n, s)) for m in picks) <= bound
    assert verify_inclusion(big.subtree(0, n // 3), n // 3, n, inclusion_path(n // 3, n, big), root(n, big))


def test_memory_source_refuses_incomplete_subtrees_and_leaves_that_are_not_hashes() -> None:
    source = MemorySource(LEAVES[:5])
    assert source.subtree(2, 0) == naive_root(LEAVES[:4]) and len(source) == 5
    for level, index in [(0, 5), (1, 2), (3, 0), (-1, 0), (0, -1)]:
        with pytest.raises(InvalidInput) as err:
            source.subtree(level, index)
        assert err.value.field == "index"
    with pytest.raises(InvalidInput) as err:
        MemorySource([b"short"])
    assert err.value.field == "leaves"
    with pytest.raises(InvalidInput) as err:
        MemorySource.from_entries(["text"])  # type: ignore[list-item]
    assert err.value.field == "entries"


# -- argument errors ------------------------------------------------------------------------------------------------

H = LEAVES[0]
ARGUMENT_ERRORS: list[tuple[Callable[..., Any], tuple[Any, ...], str]] = [
    (root, (-1, SOURCE), "size"),
    (root, (True, SOURCE), "size"),
    (root, (1.0, SOURCE), "size"),
    (inclusion_path, (3, 3, SOURCE), "index"),
    (inclusion_path, (-1, 3, SOURCE), "index"),
    (inclusion_path, (0, 0, SOURCE), "size"),
    (inclusion_path, ("0", 3, SOURCE), "index"),
    (inclusion_path, (0, False, SOURCE), "size"),
    (consistency_path, (4, 3, SOURCE), "old_size"),
    (consistency_path, (-1, 3, SOURCE), "old_size"),
    (consistency_path, (0, -1, SOURCE), "new_size"),
    (consistency_path, (None, 3, SOURCE), "old_size"),
    (consistency_path, (1, 3.0, SOURCE), "new_size"),
    (verify_inclusion, ("leaf", 0, 1, [], H), "leaf"),
    (verify_inclusion, (bytearray(H), 0, 1, [], H), "leaf"),
    (verify_inclusion, (H, True, 1, [], H), "index"),
    (verify_inclusion, (H, 0, 1.5, [], H), "size"),
    (verify_inclusion, (H, 0, 1, H, H), "proof"),
    (verify_inclusion, (H, 0, 1, None, H), "proof"),
    (verify_inclusion, (H, 0, 2, [H.hex()], H), "proof"),
    (verify_inclusion, (H, 0, 1, [], None), "root"),
    (verify_consistency, (1.0, 2, H, H, [H]), "old_size"),
    (verify_consistency, (1, "2", H, H, [H]), "new_size"),
    (verify_consistency, (1, 2, H.hex(), H, [H]), "old_root"),
    (verify_consistency, (1, 2, H, memoryview(H), [H]), "new_root"),
    (verify_consistency, (1, 2, H, H, "proof"), "proof"),
    (verify_consistency, (1, 2, H, H, [H, 1]), "proof"),
]


@pytest.mark.parametrize(("function", "args", "field"), ARGUMENT_ERRORS)
def test_argument_errors_are_invalid_input_naming_the_field(function: Callable[..., Any], args: tuple[Any, ...],
                                                            field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        function(*args)
    assert err.value.field == field and field in str(err.value)


def test_verifiers_answer_false_not_raise_for_values_out_of_range() -> None:
    assert not verify_inclusion(H, -1, 1, [], H)
    assert not verify_inclusion(H, 0, -1, [], H)
    assert not verify_inclusion(H, 0, 1, [], H[:31])
    assert not verify_consistency(-1, 1, H, H, [])
    assert not verify_consistency(2, 1, H, H, [])
    assert not verify_consistency(1, 2, H, H, [H + H])
    assert verify_inclusion(H, 0, 1, (), H)  # any sequence of bytes will do
    assert merkle.verify_inclusion(H, 0, 2**80, [H] * 3, H) is False
