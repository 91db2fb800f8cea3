"""Signed notes and checkpoints (ledger.signing): interoperable with Go's sumdb/note and the C2SP specs."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import IntegrityError, InvalidInput, LedgerError
from ledger.signing import (
    Checkpoint,
    Signer,
    Verifier,
    checkpoint_text,
    generate_keys,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    sign_checkpoint,
    sign_note,
)

# Test vectors from github.com/golang/mod (golang.org/x/mod), sumdb/note/note_test.go (TestNewVerifier,
# TestNewSigner, TestSign, TestOpen); the same note is the example in sumdb/note/note.go's package documentation.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
GO_NOTE = GO_TEXT + "\n" + PETER_SIG

# From github.com/C2SP/C2SP, signed-note.md ("Example"): a verifier key and a note it verifies.
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

SIGNER_TEXT, VERIFIER_TEXT = generate_keys("example.com/ledger")
SIGNER, VERIFIER = Signer.from_text(SIGNER_TEXT), Verifier.from_text(VERIFIER_TEXT)
ROOT = hashlib.sha256(b"root").digest()


# --- interop with Go and the C2SP examples ---


def test_the_key_id_is_the_first_four_bytes_of_sha256_of_name_newline_type_and_public_key() -> None:
    public = base64.b64decode(PETER_VKEY.split("+", 2)[2])
    digest = hashlib.sha256(b"PeterNeumann\n" + public).digest()
    assert public[0] == 0x01 and digest[:4] == bytes.fromhex("c74f20a3")
    assert Verifier.from_text(PETER_VKEY).key_id == Signer.from_text(PETER_SKEY).key_id == 0xC74F20A3


def test_gos_signer_key_derives_gos_verifier_key() -> None:
    signer = Signer.from_text(PETER_SKEY)
    assert (signer.name, signer.verifier_text) == ("PeterNeumann", PETER_VKEY)


def test_signing_gos_message_with_gos_key_gives_gos_signed_note_exactly() -> None:
    assert sign_note(GO_TEXT, Signer.from_text(PETER_SKEY)) == GO_NOTE


def test_gos_signed_note_opens_with_gos_verifier_key() -> None:
    assert open_note(GO_NOTE, Verifier.from_text(PETER_VKEY)) == GO_TEXT


def test_a_doubly_signed_go_note_opens_with_either_key_ignoring_the_other_signature() -> None:
    note = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(note, Verifier.from_text(PETER_VKEY)) == GO_TEXT
    assert open_note(note, Verifier.from_text(ENOCH_VKEY)) == GO_TEXT


def test_repeated_and_unknown_signature_lines_do_not_stop_a_note_opening() -> None:
    # Go's TestOpen: duplicated signatures, plus an unknown key's corrupted line, which is ignored.
    corrupt_enoch = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    note = GO_TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + corrupt_enoch
    assert open_note(note, Verifier.from_text(PETER_VKEY)) == GO_TEXT


def test_gos_corrupted_signature_by_the_known_key_is_an_integrity_error() -> None:
    with pytest.raises(IntegrityError):
        open_note(GO_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], Verifier.from_text(PETER_VKEY))


@pytest.mark.parametrize(
    "note",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_NOTE,
        b"\xff".decode("utf-8", "surrogateescape") + GO_NOTE,  # Go's invalid UTF-8 byte
        GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name")[:-1],
        GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"),
        GO_NOTE + "Unexpected line.\n",
        GO_TEXT + "\n" + PETER_SIG * 101,
    ],
    ids=[
        "no-blank-line",
        "no-sig",
        "no-final-newline",
        "control",
        "not-utf8",
        "bad-name",
        "plus-name",
        "extra",
        "101-sigs",
    ],
)
def test_gos_malformed_notes_are_invalid_input(note: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        open_note(note, Verifier.from_text(PETER_VKEY))
    assert caught.value.field == "note"


def test_the_c2sp_example_note_opens_with_its_verifier_key() -> None:
    assert open_note(C2SP_NOTE, Verifier.from_text(C2SP_VKEY)) == "This is an example message.\n"


def test_gos_tree_note_is_a_checkpoint_with_the_same_text() -> None:
    # github.com/golang/mod, sumdb/tlog/note_test.go (TestFormatTree): the root is RecordHash("hello world").
    golden = "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n"
    checkpoint = Checkpoint("go.sum database tree", 123456789012, hashlib.sha256(b"\x00hello world").digest())
    assert checkpoint_text(checkpoint) == golden and parse_checkpoint(golden) == checkpoint


# --- keys ---


def test_a_generated_key_pair_signs_and_verifies() -> None:
    signer_text, verifier_text = generate_keys("example.com/log42")
    signer, verifier = Signer.from_text(signer_text), Verifier.from_text(verifier_text)
    assert signer.verifier_text == verifier_text and signer_text.startswith("PRIVATE+KEY+example.com/log42+")
    assert (signer.name, signer.key_id) == (verifier.name, verifier.key_id) == ("example.com/log42", signer.key_id)
    assert open_note(sign_note("hello\n", signer), verifier) == "hello\n"


def test_two_generated_key_pairs_differ() -> None:
    assert generate_keys("a") != generate_keys("a")


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\tb", "a\nb", "a\u00a0b", "a\u2028b", "a\x01b", "\ud800", 7])
def test_a_key_name_that_the_spec_forbids_is_invalid_input(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        generate_keys(name)
    assert caught.value.field == "name"


def test_a_name_may_hold_any_other_unicode_character() -> None:
    signer = Signer.from_text(generate_keys("quasimodo.example/salvatore-è")[0])
    assert signer.name == "quasimodo.example/salvatore-è"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # the spec's hex is lowercase
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20ag+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
        "PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong name for the id
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # truncated base64
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW==",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TÉ",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        # Go's: a wrong-length key and an unknown algorithm, each with its key id adjusted to match.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        PETER_SKEY,
        None,
    ],
)
def test_a_malformed_verifier_key_is_invalid_input_naming_the_key(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Verifier.from_text(text)
    assert caught.value.field == "key"


@pytest.mark.parametrize(
    "text",
    [
        "",
        PETER_VKEY,
        "PRIVATE+KEY+PeterNeumann+c74f20a3",
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",  # id of another key
        "PRIVATE+KEY+EnochRoot+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AoEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",  # signature type 0x02
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKD=",
        "private+key+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        b"PRIVATE+KEY",
    ],
)
def test_a_malformed_signer_key_is_invalid_input_that_does_not_quote_it(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Signer.from_text(text)
    assert caught.value.field == "key" and "FDq0O5T" not in str(caught.value) and "AYEKF" not in str(caught.value)


def test_every_proper_substring_and_every_one_character_change_of_a_key_is_refused() -> None:
    # Go's TestNewVerifier and TestNewSigner manglings.
    for key, parse in [(PETER_VKEY, Verifier.from_text), (PETER_SKEY, Signer.from_text)]:
        manglings = [
            key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1) if (i, j) != (0, len(key))
        ]
        manglings += [key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))]
        for mangled in manglings:
            with pytest.raises(InvalidInput):
                parse(mangled)


def test_a_signer_does_not_show_its_private_key() -> None:
    assert repr(SIGNER) == f"Signer(name='example.com/ledger', key_id=0x{SIGNER.key_id:08x})"


# --- signing and opening notes ---


def test_a_note_is_the_text_a_blank_line_and_one_signature_line() -> None:
    note = sign_note("a\n\nb\n", SIGNER)
    text, sig_line = note.rsplit("\n\n", 1)
    assert text == "a\n\nb" and sig_line.startswith("— example.com/ledger ") and sig_line.endswith("\n")
    raw = base64.b64decode(sig_line.split(" ")[2])
    assert len(raw) == 68 and int.from_bytes(raw[:4], "big") == SIGNER.key_id


@pytest.mark.parametrize("text", ["", "no newline", "tab\there\n", "cr\r\n", "\ud800\n", None])
def test_a_text_that_is_not_a_valid_note_text_cannot_be_signed(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        sign_note(text, SIGNER)
    assert caught.value.field == "text"


def test_a_key_with_another_name_finds_no_signature() -> None:
    public = base64.b64decode(VERIFIER_TEXT.split("+", 2)[2])[1:]
    with pytest.raises(IntegrityError, match="no signature"):
        open_note(sign_note("x\n", SIGNER), Verifier("example.com/other", public))


def test_a_key_with_the_same_name_and_another_key_id_finds_no_signature() -> None:
    other = Verifier.from_text(generate_keys("example.com/ledger")[1])
    with pytest.raises(IntegrityError, match="no signature"):
        open_note(sign_note("x\n", SIGNER), other)


def test_a_signature_by_another_key_under_our_name_and_key_id_does_not_verify() -> None:
    forger = Signer.from_text(generate_keys("example.com/ledger")[0])
    text, line = sign_note("x\n", forger).rsplit("\n\n", 1)
    raw = base64.b64decode(line.split(" ")[2])
    forged = f"{text}\n\n— example.com/ledger {base64.b64encode(SIGNER.key_id.to_bytes(4, 'big') + raw[4:]).decode()}\n"
    with pytest.raises(IntegrityError, match="does not verify"):
        open_note(forged, VERIFIER)


def test_a_note_without_the_blank_line_is_invalid_input() -> None:
    note = sign_note("x\n", SIGNER)
    with pytest.raises(InvalidInput):
        open_note(note.replace("\n\n", "\n"), VERIFIER)


def test_a_non_canonical_base64_signature_is_invalid_input() -> None:
    # The last character before '=' carries two spare bits; Go would accept them set, we refuse a second spelling.
    index = GO_NOTE.index("=\n") - 1
    assert GO_NOTE[index] == "M"
    with pytest.raises(InvalidInput, match="canonical"):
        open_note(GO_NOTE[:index] + "N" + GO_NOTE[index + 1 :], Verifier.from_text(PETER_VKEY))


def test_every_truncation_of_a_note_is_invalid_input() -> None:
    for end in range(len(GO_NOTE)):
        with pytest.raises(InvalidInput):
            open_note(GO_NOTE[:end], Verifier.from_text(PETER_VKEY))


# Any character a note may hold: valid UTF-8 (no lone surrogates) and no ASCII control character.
note_chars = st.characters(codec="utf-8", min_codepoint=0x20)
note_texts = st.lists(st.text(note_chars, max_size=40), min_size=1, max_size=6).map(
    lambda lines: "".join(line + "\n" for line in lines)
)


@given(text=note_texts)
def test_any_valid_text_comes_back_from_its_signed_note(text: str) -> None:
    assert open_note(sign_note(text, SIGNER), VERIFIER) == text


@given(text=note_texts, data=st.data())
def test_any_changed_byte_of_a_signed_note_fails_with_a_typed_error(text: str, data: st.DataObject) -> None:
    note = sign_note(text, SIGNER).encode()
    index = data.draw(st.integers(0, len(note) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != note[index]))
    changed = (note[:index] + bytes([byte]) + note[index + 1 :]).decode("utf-8", "surrogateescape")
    with pytest.raises((InvalidInput, IntegrityError)):
        open_note(changed, VERIFIER)


@given(text=note_texts, data=st.data())
def test_a_changed_printable_character_of_the_text_is_an_integrity_error(text: str, data: st.DataObject) -> None:
    positions = [i for i, c in enumerate(text) if c != "\n"]
    if not positions:
        return
    index = data.draw(st.sampled_from(positions))
    char = data.draw(st.characters(min_codepoint=0x20, max_codepoint=0x7E).filter(lambda c: c != text[index]))
    note = sign_note(text, SIGNER)
    with pytest.raises(IntegrityError):
        open_note(note[:index] + char + note[index + 1 :], VERIFIER)


# --- checkpoints ---

C2SP_CHECKPOINT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def test_a_checkpoint_text_is_origin_size_and_base64_root_then_extensions_one_a_line() -> None:
    # The body of the example in C2SP tlog-checkpoint.md.
    checkpoint = Checkpoint("example.com/behind-the-sofa", 20852163, base64.b64decode(C2SP_CHECKPOINT.split("\n")[2]))
    assert checkpoint_text(checkpoint) == C2SP_CHECKPOINT
    with_extensions = Checkpoint("o", 0, bytes(32), ("ext one", "— two"))
    assert checkpoint_text(with_extensions) == "o\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next one\n— two\n"


def test_a_signed_checkpoint_opens_to_the_same_checkpoint() -> None:
    checkpoint = Checkpoint("example.com/ledger", 42, ROOT)
    note = sign_checkpoint(checkpoint, SIGNER)
    assert note.startswith(checkpoint_text(checkpoint) + "\n— example.com/ledger ")
    assert open_checkpoint(note, VERIFIER) == checkpoint


def test_a_signed_note_that_is_not_a_checkpoint_does_not_open_as_one() -> None:
    with pytest.raises(InvalidInput) as caught:
        open_checkpoint(sign_note("just text\n", SIGNER), VERIFIER)
    assert caught.value.field == "checkpoint"


ROOT64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "newline"),
        (f"o\n1\n{ROOT64}", "newline"),
        ("o\n", "needs an origin"),
        ("o\n1\n", "needs an origin"),
        (f"\n1\n{ROOT64}\n", "origin line is empty"),
        (f"o\n01\n{ROOT64}\n", "canonical decimal"),
        (f"o\n-1\n{ROOT64}\n", "canonical decimal"),
        (f"o\n+1\n{ROOT64}\n", "canonical decimal"),
        (f"o\n 1\n{ROOT64}\n", "canonical decimal"),
        (f"o\n1.0\n{ROOT64}\n", "canonical decimal"),
        (f"o\n\n{ROOT64}\n", "canonical decimal"),
        (f"o\n\u0661\n{ROOT64}\n", "canonical decimal"),
        (f"o\n18446744073709551616\n{ROOT64}\n", "canonical decimal"),
        ("o\n1\nnot base64!\n", "not base64"),
        ("o\n1\n\n", "0 bytes"),
        (f"o\n1\n{base64.b64encode(bytes(31)).decode()}\n", "31 bytes"),
        (f"o\n1\n{base64.b64encode(bytes(33)).decode()}\n", "33 bytes"),
        (f"o\n1\n{ROOT64.rstrip('=')}\n", "not base64"),
        ("o\n1\n" + "A" * 42 + "B=\n", "canonical"),  # bytes(32) with a spare bit set
        (f"o\n1\n{ROOT64}\n\n", "extension lines must be non-empty"),
        (f"o\n1\n{ROOT64}\next\n\nmore\n", "extension lines must be non-empty"),
        (f"o\x00\n1\n{ROOT64}\n", "control character"),
        (None, "must be text"),
    ],
)
def test_a_malformed_checkpoint_is_invalid_input_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem) as caught:
        parse_checkpoint(text)
    assert caught.value.field == "checkpoint"


def test_the_largest_tree_size_is_two_to_the_64_minus_one() -> None:
    assert parse_checkpoint(f"o\n18446744073709551615\n{ROOT64}\n").size == 2**64 - 1


@pytest.mark.parametrize(
    "checkpoint",
    [
        Checkpoint("", 1, ROOT),
        Checkpoint("two\nlines", 1, ROOT),
        Checkpoint("o", -1, ROOT),
        Checkpoint("o", 2**64, ROOT),
        Checkpoint("o", True, ROOT),
        Checkpoint("o", 1, ROOT[:31]),
        Checkpoint("o", 1, ROOT.hex()),  # type: ignore[arg-type]  # a root that is not bytes must be refused
        Checkpoint("o", 1, ROOT, ("",)),
        Checkpoint("o", 1, ROOT, ("a\nb",)),
        Checkpoint("o", 1, ROOT, ["ext"]),  # type: ignore[arg-type]  # extensions must be a tuple
    ],
)
def test_a_checkpoint_that_cannot_be_written_is_invalid_input(checkpoint: Checkpoint) -> None:
    with pytest.raises(InvalidInput) as caught:
        checkpoint_text(checkpoint)
    assert caught.value.field == "checkpoint"


line_text = st.text(note_chars, min_size=1, max_size=30)
checkpoints = st.builds(
    Checkpoint,
    origin=line_text,
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(line_text, max_size=3).map(tuple),
)


@given(checkpoint=checkpoints)
def test_any_checkpoint_round_trips_through_sign_and_open(checkpoint: Checkpoint) -> None:
    text = checkpoint_text(checkpoint)
    assert parse_checkpoint(text) == checkpoint
    assert open_checkpoint(sign_checkpoint(checkpoint, SIGNER), VERIFIER) == checkpoint


def test_errors_are_the_ledgers_own() -> None:
    for call in (lambda: open_note(GO_NOTE, VERIFIER), lambda: Verifier.from_text("x+y+z")):
        with pytest.raises(LedgerError):
            call()
