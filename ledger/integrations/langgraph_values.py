"""Channel values of the LangGraph checkpointer, stored once per version and, for a growing list, once per item.

LangGraph's own savers store a channel's whole value at every new version, so
a messages list that gains one message per step costs O(steps^2) bytes. Here
each (namespace, channel, version) is one ``langgraph.value`` record, written
once (a version names one value: a second write of the same version keeps the
first, as ``PostgresSaver`` does), and a value that is a msgpack list or map
(bare, or inside a ``DeltaChannel`` snapshot) is stored as a *lineage*:

* the serializer's bytes are split into a small head (the container's header,
  whose count changes) and a body (the items, each self-delimiting);
* when the body of the value before it (the parent checkpoint's version of the
  channel, or the last one this saver wrote for it) is a byte prefix of the new
  body, only the new bytes are stored, as the next *segment* of that value's
  lineage (a ``group`` of records); otherwise a new lineage starts with the
  whole body. What is read back is the exact bytes written, so any change
  (an edited, removed or reordered item) is simply a new lineage, never a
  wrong value;
* every 16 segments, the last 16 are also stored as one *chunk* (every 256, the
  last 16 chunks as one chunk of level 2; every 4096, of level 3), so reading a
  value back costs four indexed reads of at most ~16 rows each plus one of the
  highest level, however long the lineage: a lineage of n segments is read in
  O(log n) rows, and is stored in at most four times its bytes.

A segment is appended to a lineage only at its tip (the last segment written
to it), checked inside the write transaction, so a lineage never forks: a
branch taken from an older checkpoint starts a lineage of its own.

Other values (a string, a number, an object, anything another serializer
writes, an encrypted one) are stored whole, and an absent value as "empty".
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ledger import Ledger, Record

VALUE = "langgraph.value"
CHUNK = "langgraph.chunk"
CHUNK_SPAN = 16  # segments per chunk of level 1; chunks of level l-1 per chunk of level l
LEVELS = (3, 2, 1)  # chunk levels, read highest first
_PART_LIMIT = 80
_CACHE_BYTES = 256 * 1_048_576  # bodies kept in memory for the next put, in all
_EXT_LENGTH = {0xC7: 1, 0xC8: 2, 0xC9: 4}  # msgpack ext 8/16/32: bytes of the length field
_DELTA_SNAPSHOT = 7  # langgraph's EXT_DELTA_SNAPSHOT


def part(text: str) -> str:
    """One part of a record key: the text with ``/``, ``%`` and ``#`` (and anything outside URL-safe
    characters, ``:`` and ``|``) percent-encoded; over 80 characters, ``#`` and a SHA-256 prefix instead."""
    quoted = quote(text, safe=":|")
    if len(quoted) <= _PART_LIMIT:
        return quoted
    return "#" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def version_text(version: object) -> str:
    """A channel version as key text: a string as it is, a number as JSON."""
    return version if isinstance(version, str) else json.dumps(version)


def value_key(ns: str, channel: str, version: object) -> str:
    """The key of a channel's value at a version in a namespace."""
    return f"{part(ns)}/{part(channel)}/{part(version_text(version))}"


def split_container(data: bytes) -> tuple[bytes, bytes] | None:
    """(head, body) of serialized msgpack bytes holding a list or a map, bare or as a ``DeltaChannel``
    snapshot (ext type 7); None for anything else."""
    if not data:
        return None
    at = 0
    kind = data[0]
    size = _EXT_LENGTH.get(kind)
    if size is not None:
        if len(data) < 3 + size or data[1 + size] != _DELTA_SNAPSHOT:
            return None
        if 2 + size + int.from_bytes(data[1:1 + size], "big") != len(data):
            return None
        at = 2 + size
        kind = data[at]
    if 0x80 <= kind <= 0x9F:
        head = 1
    elif kind in (0xDC, 0xDE):
        head = 3
    elif kind in (0xDD, 0xDF):
        head = 5
    else:
        return None
    if at + head > len(data):
        return None
    return data[:at + head], data[at + head:]


@dataclass
class _Tip:
    """A lineage as this process last wrote or read it: enough to append the next segment without reading."""

    key: str  # the value record of the version whose body this is
    group: str
    seq: int
    position: int
    body: bytes
    covered: dict[int, int] = field(default_factory=dict)  # level -> end of its last chunk


class Values:
    """Writes and reads channel values as ``langgraph.value`` and ``langgraph.chunk`` records of a ledger."""

    def __init__(self, ledger: Ledger, serde: Any) -> None:
        self.ledger = ledger
        self.serde = serde
        self._tips: OrderedDict[tuple[str, str, str], _Tip] = OrderedDict()
        self._tip_bytes = 0
        self._lock = threading.Lock()

    # -- the cache of lineage tips ---------------------------------------------------

    def _remember(self, where: tuple[str, str, str], tip: _Tip) -> None:
        with self._lock:
            old = self._tips.pop(where, None)
            if old is not None:
                self._tip_bytes -= len(old.body)
            if len(tip.body) > _CACHE_BYTES // 4:
                return
            self._tips[where] = tip
            self._tip_bytes += len(tip.body)
            while self._tip_bytes > _CACHE_BYTES and self._tips:
                _, dropped = self._tips.popitem(last=False)
                self._tip_bytes -= len(dropped.body)

    def _cached(self, where: tuple[str, str, str]) -> _Tip | None:
        with self._lock:
            return self._tips.get(where)

    def forget(self, session_id: str) -> None:
        """Drop what is cached of a session (its records were removed or copied over)."""
        with self._lock:
            for where in [w for w in self._tips if w[0] == session_id]:
                self._tip_bytes -= len(self._tips.pop(where).body)

    # -- writing ------------------------------------------------------------------------

    def serialize(self, versions: Mapping[str, object], values: Mapping[str, Any]) -> dict[str, tuple[str, bytes] | None]:
        """Each channel of ``versions`` serialized (None: no value), before the put takes the ledger's lock."""
        return {channel: self.serde.dumps_typed(values[channel]) if channel in values else None for channel in versions}

    def write(
        self, session_id: str, ns: str, versions: Mapping[str, object], serialized: Mapping[str, tuple[str, bytes] | None],
        before: Mapping[str, object],
    ) -> list[tuple[tuple[str, str, str], _Tip]]:
        """Inside the put's batch: store each channel's value (``serialize``) at its new version (``versions``),
        given the versions the parent checkpoint had (``before``). A version already stored is kept as it is.
        Returns the lineage tips written, for ``remember`` once the batch has committed."""
        tips: list[tuple[tuple[str, str, str], _Tip]] = []
        keys = {channel: value_key(ns, channel, version) for channel, version in versions.items()}
        stored = {r.key for r in self.ledger.records(session_id, VALUE, keys=list(keys.values()))}
        for channel, key in keys.items():
            if key in stored:
                continue
            typed = serialized.get(channel)
            if typed is None:
                self.ledger.set_record(session_id, VALUE, key, {"empty": True})
                continue
            type_, data = typed
            split = split_container(data) if type_ == "msgpack" else None
            if split is None:
                self.ledger.set_record(session_id, VALUE, key, {"type": type_}, blob=data)
                continue
            where = (session_id, ns, channel)
            base = self._base(session_id, ns, channel, before.get(channel), split[1])
            tips.append((where, self._append(session_id, where, key, split, base)))
        return tips

    def remember(self, tips: Sequence[tuple[tuple[str, str, str], _Tip]]) -> None:
        """Keep the tips a committed put wrote, so the next put of the thread appends without reading."""
        for where, tip in tips:
            self._remember(where, tip)

    def _base(self, session_id: str, ns: str, channel: str, previous: object, body: bytes) -> _Tip | None:
        """The lineage tip the new body extends, if any: the cached one, else the parent's version's."""
        candidates: list[_Tip] = []
        cached = self._cached((session_id, ns, channel))
        if cached is not None:
            candidates.append(cached)
        if previous is not None:
            key = value_key(ns, channel, previous)
            if cached is None or cached.key != key:
                record = self.ledger.record(session_id, VALUE, key)
                if record is not None and record.group is not None:
                    candidates.append(self._tip(session_id, record))
        for tip in candidates:
            if not body.startswith(tip.body):
                continue
            # The tip must still be its lineage's last segment (and be there at all: a cached one may come
            # from a put another process has since extended, or from a batch that was rolled back).
            last = self.ledger.records(session_id, VALUE, group=tip.group, after_position=tip.position - 1,
                                       by_position=True, limit=2)
            if [r.position for r in last] == [tip.position] and last[0].key == tip.key:
                return tip
        return None

    def _append(
        self, session_id: str, where: tuple[str, str, str], key: str, split: tuple[bytes, bytes], base: _Tip | None
    ) -> _Tip:
        head, body = split
        led = self.ledger
        if base is None:
            group = f"{part(where[1])}/{part(where[2])}/{uuid.uuid4().hex[:12]}"
            seq, start, covered = 0, 0, {}
        else:
            group, seq, start, covered = base.group, base.seq + 1, len(base.body), dict(base.covered)
        value = {"type": "msgpack", "head": head.hex(), "seq": seq, "end": len(body)}
        led.set_record(session_id, VALUE, key, value, blob=body[start:], group=group)
        position = led.last_position  # inside the put's batch: the record just appended
        limit = led.limits.max_record_bytes // 2
        for level in sorted(LEVELS):
            if (seq + 1) % CHUNK_SPAN**level:
                break
            begin = max((end for lv, end in covered.items() if lv >= level), default=0)
            if begin < len(body) and len(body) - begin <= limit:
                led.set_record(session_id, CHUNK, f"{group}#{level}/{seq:010d}", {"level": level, "end": len(body)},
                               blob=body[begin:], group=f"{group}#{level}")
                covered[level] = len(body)
        return _Tip(key, group, seq, position, body, covered)

    # -- reading --------------------------------------------------------------------------

    def read(self, session_id: str, ns: str, versions: Mapping[str, object], cut: int | None) -> dict[str, Any]:
        """The channels' values at these versions, as stored by ``cut`` (None: now); empty ones left out."""
        keys = {value_key(ns, channel, version): channel for channel, version in versions.items()}
        if not keys:
            return {}
        out: dict[str, Any] = {}
        for record in self.ledger.records(session_id, VALUE, keys=list(keys), position=cut):
            channel = keys[record.key]
            value = record.value if isinstance(record.value, dict) else {}
            if value.get("empty"):
                continue
            if record.group is None:
                out[channel] = self.serde.loads_typed((value["type"], record.blob or b""))
                continue
            where = (session_id, ns, channel)
            cached = self._cached(where)
            if cached is not None and cached.key == record.key:
                body = cached.body
            else:
                tip = self._tip(session_id, record)
                body = tip.body
                if cached is None or cached.position < tip.position:
                    self._remember(where, tip)
            out[channel] = self.serde.loads_typed((value["type"], bytes.fromhex(value["head"]) + body))
        return out

    def has_value(self, session_id: str, ns: str, channel: str, version: object, cut: int | None) -> Record | None:
        """The value record of a channel at a version, if it holds a value (None when absent or empty)."""
        record = self.ledger.record(session_id, VALUE, value_key(ns, channel, version), position=cut)
        if record is None or (isinstance(record.value, dict) and record.value.get("empty")):
            return None
        return record

    def _tip(self, session_id: str, record: Record) -> _Tip:
        """Rebuild a lineage value's body from its chunks and segments up to the record (by its position)."""
        led, group, position = self.ledger, record.group, record.position
        assert group is not None
        parts: list[bytes] = []
        covered: dict[int, int] = {}
        after, seq = 0, int(record.value["seq"])
        for level in LEVELS:
            if seq + 1 < CHUNK_SPAN**level:
                continue  # the lineage is too short to have a chunk of this level yet
            rows = led.records(session_id, CHUNK, group=f"{group}#{level}", after_position=after, position=position,
                               by_position=True)
            for row in rows:
                parts.append(row.blob or b"")
                covered[level] = int(row.value["end"])
            if rows:
                after = rows[-1].position
        segments = led.records(session_id, VALUE, group=group, after_position=after, position=position,
                               by_position=True)
        body = b"".join(parts) + b"".join(row.blob or b"" for row in segments)
        end = int(record.value["end"])
        if len(body) != end:
            body = self._segments_only(session_id, record)
            covered = {}
        return _Tip(record.key, group, seq, position, body, covered)

    def _segments_only(self, session_id: str, record: Record) -> bytes:
        # The chunks do not add up (written by a version of this code that chunked otherwise): the segments alone.
        rows = self.ledger.records(session_id, VALUE, group=record.group, position=record.position, by_position=True)
        body = b"".join(row.blob or b"" for row in rows)
        if len(body) != int(record.value["end"]):
            raise ValueError(f"the value {record.key!r} of session {record.session_id!r} does not add up from its"
                             " lineage: run ledger verify")
        return body

    def drop(self, session_ids: Sequence[str]) -> None:
        """Forget the cached tips of these sessions."""
        for sid in session_ids:
            self.forget(sid)
