"""Signed checkpoints: C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys.

A note is a text ending in a newline, a blank line, then signature lines ``— <key name> base64(key id || sig)``.
A checkpoint (https://c2sp.org/tlog-checkpoint) is a note whose text is the log's origin, its tree size and its
root hash, one a line. Keys, notes and checkpoints are byte-for-byte those of Go's golang.org/x/mod/sumdb/note,
so a digest signed here can be checked by any tool that speaks the format, and the other way round.

Decisions the specs leave open: every base64 field must be the canonical encoding (no stray padding bits), so a
note has exactly one spelling; a note may carry at most 100 signatures, as in Go; every signature by the key
asked for must verify (Go checks only the first of repeated ones); a tree size fits in an unsigned 64-bit integer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import IntegrityError, InvalidInput

_ED25519 = b"\x01"  # the signature type byte the signed-note spec assigns to Ed25519
_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_MAX_SIGNATURES = 100
_MAX_SIZE = 2**64 - 1
_KEY_ID = re.compile(r"[0-9a-f]{8}")
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # ASCII controls other than newline: not allowed in a note


def _check_name(name: object, field: str) -> str:
    """A key name as the spec allows it: non-empty UTF-8 with no Unicode space, no '+' and no control character."""
    if not isinstance(name, str) or not name or "+" in name or any(c.isspace() for c in name):
        raise InvalidInput("a key name must be non-empty, with no spaces and no '+'", field=field)
    _check_note_text(name, field)
    return name


def _check_note_text(text: object, field: str) -> bytes:
    """The UTF-8 bytes of a text a note may hold: valid UTF-8, no ASCII control character but newline."""
    if not isinstance(text, str):
        raise InvalidInput(f"the {field} must be text, not {type(text).__name__}", field=field)
    if _CONTROL.search(text):
        raise InvalidInput(f"the {field} contains an ASCII control character other than newline", field=field)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise InvalidInput(f"the {field} is not valid UTF-8", field=field) from exc


def _b64decode(text: str, field: str, what: str) -> bytes:
    """Standard padded base64, accepted only in its canonical spelling."""
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except ValueError as exc:  # binascii.Error, or a non-ASCII str
        raise InvalidInput(f"{what} is not base64", field=field) from exc
    if _b64encode(raw) != text:
        raise InvalidInput(f"{what} is not canonical base64", field=field)
    return raw


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _key_id(name: str, public_key: bytes) -> int:
    """The key id: the first four bytes, big-endian, of SHA-256(name || 0x0A || 0x01 || public key)."""
    return int.from_bytes(hashlib.sha256(name.encode() + b"\n" + _ED25519 + public_key).digest()[:4], "big")


def _parse_key(text: object, what: str, prefix: str) -> tuple[str, int, bytes]:
    """(name, key id, 32 key bytes) of ``<prefix><name>+<key id>+<base64(0x01 || key)>``; never quotes the text."""
    if not isinstance(text, str) or not text.startswith(prefix):
        raise InvalidInput(f"a {what} key is text reading {prefix}<name>+<key id>+<key>", field="key")
    parts = text[len(prefix) :].split("+", 2)  # base64 may itself contain '+'
    if len(parts) != 3:
        raise InvalidInput(f"a {what} key is text reading {prefix}<name>+<key id>+<key>", field="key")
    name, key_id, encoded = parts
    _check_name(name, "key")
    if not _KEY_ID.fullmatch(key_id):
        raise InvalidInput(f"the {what} key's id is not 8 lowercase hex digits", field="key")
    raw = _b64decode(encoded, "key", f"the {what} key's material")
    if raw[:1] != _ED25519:
        raise InvalidInput(f"the {what} key is not an Ed25519 key (signature type 0x01)", field="key")
    if len(raw) != 33:
        raise InvalidInput(f"the {what} key is {len(raw) - 1} bytes, not 32", field="key")
    return name, int(key_id, 16), raw[1:]


class _Key:
    """What a signer and a verifier key share: a name and the 32-bit id signature lines carry."""

    __slots__ = ("_key_id", "_name")

    def __init__(self, name: str, key_id: int) -> None:
        self._name = name
        self._key_id = key_id

    def _check_id(self, key_id: int, what: str) -> None:
        # The id is the public key's, so it can be checked only once the key is read.
        if self._key_id != key_id:
            raise InvalidInput(f"the {what} key's id does not match its name and key", field="key")

    @property
    def name(self) -> str:
        """The key name, as it appears in signature lines."""
        return self._name

    @property
    def key_id(self) -> int:
        """The 32-bit key id, as it appears (big-endian) at the start of each signature."""
        return self._key_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, key_id=0x{self._key_id:08x})"


class Verifier(_Key):
    """A public key that checks signatures; read it from a verifier key text with :meth:`from_text`."""

    __slots__ = ("_key",)

    def __init__(self, name: str, public_key: bytes) -> None:
        """A verifier for a 32-byte Ed25519 public key under a key name; raises ``InvalidInput``."""
        _check_name(name, "name")
        if not isinstance(public_key, bytes) or len(public_key) != 32:
            raise InvalidInput("an Ed25519 public key is 32 bytes", field="key")
        try:
            self._key = Ed25519PublicKey.from_public_bytes(public_key)
        except ValueError as exc:
            raise InvalidInput("not an Ed25519 public key", field="key") from exc
        super().__init__(name, _key_id(name, public_key))

    @classmethod
    def from_text(cls, text: str) -> Verifier:
        """Read ``<name>+<key id>+<base64(0x01 || public key)>``; raises ``InvalidInput`` (field "key")."""
        if isinstance(text, str) and text.startswith("PRIVATE+KEY+"):
            raise InvalidInput("this is a signer (private) key: give the verifier key (the .pub file)", field="key")
        name, key_id, public_key = _parse_key(text, "verifier", "")
        verifier = cls(name, public_key)
        verifier._check_id(key_id, "verifier")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer(_Key):
    """A private key that signs notes; read it from a signer key text with :meth:`from_text`. Keep the text secret."""

    __slots__ = ("_key", "_verifier_text")

    def __init__(self, name: str, seed: bytes) -> None:
        """A signer for a 32-byte Ed25519 private seed under a key name; raises ``InvalidInput``."""
        _check_name(name, "name")
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise InvalidInput("an Ed25519 private key seed is 32 bytes", field="key")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        public = self._key.public_key().public_bytes_raw()
        super().__init__(name, _key_id(name, public))
        self._verifier_text = f"{name}+{self._key_id:08x}+{_b64encode(_ED25519 + public)}"

    @classmethod
    def from_text(cls, text: str) -> Signer:
        """Read ``PRIVATE+KEY+<name>+<key id>+<base64(0x01 || seed)>``; raises ``InvalidInput`` (field "key")."""
        name, key_id, seed = _parse_key(text, "signer", "PRIVATE+KEY+")
        signer = cls(name, seed)
        signer._check_id(key_id, "signer")
        return signer

    @property
    def verifier_text(self) -> str:
        """The matching verifier key text, to give to whoever checks the signatures."""
        return self._verifier_text

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic)."""
        return self._key.sign(message)


def generate_keys(name: str) -> tuple[str, str]:
    """A new Ed25519 key pair as (signer key text, verifier key text), in Go's note formats."""
    _check_name(name, "name")
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    signer = Signer(name, seed)
    return f"PRIVATE+KEY+{name}+{signer.key_id:08x}+{_b64encode(_ED25519 + seed)}", signer.verifier_text


def sign_note(text: str, signer: Signer) -> str:
    """The signed note: ``text`` (non-empty, ending in a newline), a blank line, and ``signer``'s signature line."""
    if not isinstance(signer, Signer):
        raise InvalidInput(f"not a Signer: {type(signer).__name__}", field="signer")
    body = _check_note_text(text, "text")
    if not text.endswith("\n"):
        raise InvalidInput("a note's text must be non-empty and end in a newline", field="text")
    signature = _b64encode(signer.key_id.to_bytes(4, "big") + signer.sign(body))
    return f"{text}\n{_SIGNATURE_PREFIX}{signer.name} {signature}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The text of ``note`` once a signature by ``verifier``'s key checks; signatures by other keys are ignored.

    Raises ``InvalidInput`` (field "note") for a malformed note, ``IntegrityError`` when there is no signature by
    this key (same name and key id) or one of them does not verify.
    """
    if not isinstance(verifier, Verifier):
        raise InvalidInput(f"not a Verifier: {type(verifier).__name__}", field="verifier")
    _check_note_text(note, "note")
    split = note.rfind("\n\n")  # the last blank line separates the text from the signatures
    if split < 0:
        raise InvalidInput("a note needs a blank line before its signatures", field="note")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise InvalidInput("a note must end in a signature line and a newline", field="note")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise InvalidInput(f"a note may carry at most {_MAX_SIGNATURES} signatures", field="note")
    ours: list[bytes] = []
    for line in lines:
        if not line.startswith(_SIGNATURE_PREFIX):
            raise InvalidInput("a signature line must start with an em dash and a space", field="note")
        name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
        _check_name(name, "note")
        raw = _b64decode(encoded, "note", "a signature")
        if len(raw) < 5:
            raise InvalidInput("a signature is a 4-byte key id and at least one byte more", field="note")
        if name == verifier.name and int.from_bytes(raw[:4], "big") == verifier.key_id:
            ours.append(raw[4:])
    key = f"{verifier.name}+{verifier.key_id:08x}"
    if not ours:
        raise IntegrityError(f"the note has no signature by key {key}")
    body = text.encode("utf-8")
    if not all(verifier.verify(body, signature) for signature in ours):
        raise IntegrityError(f"a signature by key {key} does not verify: the note was changed or forged")
    return text


class Checkpoint(msgspec.Struct, frozen=True):
    """A transparency log's tree head: origin, tree size and 32-byte root hash, plus opaque extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()


def _check_line(line: object, what: str) -> str:
    if not isinstance(line, str) or not line or "\n" in line:
        raise InvalidInput(f"the {what} must be one non-empty line of text", field="checkpoint")
    _check_note_text(line, "checkpoint")
    return line


def checkpoint_text(checkpoint: Checkpoint) -> str:
    """The note text of a checkpoint per C2SP tlog-checkpoint; raises ``InvalidInput`` (field "checkpoint")."""
    if not isinstance(checkpoint, Checkpoint):
        raise InvalidInput(f"not a Checkpoint: {type(checkpoint).__name__}", field="checkpoint")
    lines = [_check_line(checkpoint.origin, "origin")]
    size = checkpoint.size
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= _MAX_SIZE:
        raise InvalidInput(f"the tree size must be an integer from 0 to 2**64-1, not {size!r}", field="checkpoint")
    if not isinstance(checkpoint.root, bytes) or len(checkpoint.root) != 32:
        raise InvalidInput("the root hash must be 32 bytes", field="checkpoint")
    lines += [str(size), _b64encode(checkpoint.root)]
    if not isinstance(checkpoint.extensions, tuple):
        raise InvalidInput("the extension lines must be a tuple of strings", field="checkpoint")
    lines += [_check_line(line, "extension line") for line in checkpoint.extensions]
    return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Read a checkpoint's note text, strictly; raises ``InvalidInput`` (field "checkpoint") naming what is wrong."""
    _check_note_text(text, "checkpoint")
    if not text.endswith("\n"):
        raise InvalidInput("a checkpoint's text must end in a newline", field="checkpoint")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise InvalidInput("a checkpoint needs an origin, a tree size and a root hash line", field="checkpoint")
    origin, size, root, *extensions = lines
    if not origin:
        raise InvalidInput("the checkpoint's origin line is empty", field="checkpoint")
    if not _SIZE.fullmatch(size) or int(size) > _MAX_SIZE:
        raise InvalidInput(f"the tree size {size!r} is not a canonical decimal below 2**64", field="checkpoint")
    root_hash = _b64decode(root, "checkpoint", "the root hash")
    if len(root_hash) != 32:
        raise InvalidInput(f"the root hash is {len(root_hash)} bytes, not 32", field="checkpoint")
    if "" in extensions:
        raise InvalidInput("a checkpoint's extension lines must be non-empty", field="checkpoint")
    return Checkpoint(origin, int(size), root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The checkpoint as a note signed by ``signer`` (whose name, by the spec's advice, should be the origin)."""
    return sign_note(checkpoint_text(checkpoint), signer)


def open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint in ``note`` once ``verifier``'s signature checks (see :func:`open_note`), parsed strictly."""
    return parse_checkpoint(open_note(note, verifier))
