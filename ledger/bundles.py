"""Proof bundles: one session's events, each with an inclusion proof, and a signed checkpoint, checked offline.

An auditor who receives a bundle needs nothing else: not the ledger, not the
other sessions. ``verify_bundle`` checks that the checkpoint is signed by the
key they trust, recomputes each event's chain hash from its stored contents
(the row before it enters only as its hash, ``prev``), and checks that
hash's leaf against the checkpoint's root with the event's inclusion proof
(RFC 9162). It also checks that the events are one session's, versions 1, 2,
3, ... in log order, so none was left out between the first and the last.
A purged session's events carry their redaction markers, which keep the
digest the chain covers: they verify as well, without their text.
"""

from __future__ import annotations

import base64

import msgspec

from . import chain, merkle
from .chain import link
from .errors import IntegrityError, InvalidInput
from .exchange import ExportRow
from .signing import Checkpoint, Verifier, open_checkpoint

FORMAT = "session-ledger/proof-bundle"


class BundleEvent(ExportRow, frozen=True, kw_only=True):
    """One event as a JSONL export carries it (the stored row, ``data`` its payload text as stored, ``prev``
    the chain hash of the row before it), and its audit path in the checkpoint's tree (``proof``, base64)."""

    proof: list[str]


class Bundle(msgspec.Struct, frozen=True, kw_only=True):
    """A session's events with their proofs and the signed checkpoint (a C2SP signed note) they prove to."""

    format: str
    version: int
    session_id: str
    checkpoint: str
    events: list[BundleEvent]


class BundleReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``verify_bundle`` found: ``ok``, the session, how many events were proven, the checkpoint's
    origin and tree size, and the first event (by position) that failed, with why."""

    ok: bool
    session_id: str | None = None
    events: int = 0
    origin: str | None = None
    size: int | None = None
    first_bad_position: int | None = None
    reason: str | None = None


def encode_bundle(bundle: Bundle) -> str:
    """A bundle as JSON text."""
    return msgspec.json.encode(bundle).decode()


def decode_bundle(text: str | bytes) -> Bundle:
    """A bundle from JSON text; ``InvalidInput`` naming what is wrong for anything else."""
    if not isinstance(text, (str, bytes)):
        raise InvalidInput(f"a proof bundle is JSON text, not {type(text).__name__}", field="bundle")
    try:
        bundle = msgspec.json.decode(text, type=Bundle)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidInput(f"not a proof bundle: {exc}", field="bundle") from exc
    if bundle.format != FORMAT or bundle.version != 1:
        raise InvalidInput(f"not a proof bundle of this format: {bundle.format!r} version {bundle.version}",
                           field="bundle")
    return bundle


def verify_bundle(text: str | bytes, key: str) -> BundleReport:
    """Check a proof bundle offline against the verifier key text ``key`` (``ledger.signing``)."""
    verifier = Verifier.from_text(key)
    bundle = decode_bundle(text)
    try:
        checkpoint = open_checkpoint(bundle.checkpoint, verifier)
    except IntegrityError as exc:
        return BundleReport(ok=False, session_id=bundle.session_id, reason=f"the checkpoint does not verify: {exc}")
    report = BundleReport(ok=True, session_id=bundle.session_id, events=len(bundle.events),
                          origin=checkpoint.origin, size=checkpoint.size)
    if not bundle.events:
        return msgspec.structs.replace(report, ok=False, reason="the bundle holds no events")
    # A purged session's events before its purge carry redaction markers naming it: the purge must be in the
    # bundle (proven like the rest), so a marker cannot stand in for the text of a session never purged.
    purge = next((e.position for e in bundle.events if e.type == "purged" and e.session_id == bundle.session_id), None)
    last_position = 0
    for expected_version, event in enumerate(bundle.events, 1):
        problem = _problem(event, bundle.session_id, expected_version, last_position, checkpoint, purge)
        if problem is not None:
            return msgspec.structs.replace(report, ok=False, first_bad_position=event.position, reason=problem)
        last_position = event.position
    return report


def _digest(event: BundleEvent, purge: int | None) -> bytes | str:
    """The payload digest the event's chain hash covers, or why its data cannot be what the ledger stored:
    ``chain.marked_digest``'s rule for a redaction marker, whose purge the bundle must hold; and before a
    purge every event of the session is redacted (as the log's check requires)."""
    data = event.data.encode()
    marked = chain.marked_digest(data, event.position, purge)
    if isinstance(marked, str):
        return f"the event at position {event.position}: {marked}"
    if marked is None:
        if purge is not None and event.position < purge:
            return f"the event at position {event.position} keeps its text before its session's purge at {purge}"
        return chain.payload_digest(data)
    if purge is None:
        return f"the event at position {event.position} is redacted, but the bundle holds no purge of its session"
    return marked[0]


def _problem(
    event: BundleEvent, session_id: str, version: int, after: int, checkpoint: Checkpoint, purge: int | None
) -> str | None:
    """Why one event of a bundle does not verify, or None."""
    if event.session_id != session_id:
        return f"the event at position {event.position} belongs to session {event.session_id!r}, not {session_id!r}"
    if event.version != version:
        return f"version {version} of session {session_id!r} is missing (the next event is version {event.version})"
    if not after < event.position <= checkpoint.size:
        return f"position {event.position} is out of order or past the checkpoint's size {checkpoint.size}"
    try:
        previous, stored = bytes.fromhex(event.prev), bytes.fromhex(event.hash)
        proof = [base64.b64decode(step, validate=True) for step in event.proof]
    except ValueError:
        return f"the event at position {event.position} has a hash or proof step that is not hex or base64"
    digest = _digest(event, purge)
    if isinstance(digest, str):
        return digest
    row_hash = link(previous, event.position, event.event_id, event.session_id, event.version, event.type,
                    event.schema, event.recorded_at, digest)
    if row_hash != stored:
        return f"the event at position {event.position} does not hash to its chain hash: its contents were changed"
    leaf = merkle.leaf_hash(row_hash)
    if not merkle.verify_inclusion(leaf, event.position - 1, checkpoint.size, proof, checkpoint.root):
        return f"the event at position {event.position} is not in the checkpoint's tree (its inclusion proof fails)"
    return None
