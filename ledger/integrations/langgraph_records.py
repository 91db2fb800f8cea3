"""The LangGraph checkpointer's records: which session holds a thread, and how checkpoints and writes are kept.

A thread id of at most 125 characters from ``[A-Za-z0-9._:-]`` is held by the
session ``lg:<thread id>``; any other thread id (a longer one, one with spaces,
``/`` or other characters) by ``lg.<first 40 hex digits of its SHA-256>``. The
two forms never meet (``:`` against ``.``), and the thread id is also kept in
the session's metadata (``thread_id``).

Records of a thread's session (``Ledger.set_record``), by kind:

* ``langgraph.checkpoint``, key ``<ns>/<checkpoint id>``: the checkpoint without
  its channel values, its metadata, its namespace, id and parent, as JSON (or,
  for a checkpoint JSON cannot hold, serialized in the blob); grouped by the
  run that made it (``run:<run id>``), for ``delete_for_runs``. Keys sort as
  checkpoint ids do, so the latest is the last key of its namespace.
* ``langgraph.writes``, key ``<ns>/<checkpoint id>/<task id>``: one task's pending
  writes, ``[index, channel, serializer type, size]`` each, their bytes one after
  the other in the blob.
* ``langgraph.value`` and ``langgraph.chunk``: channel values
  (``langgraph_values``).

The messages a task writes to the messages channel are also added to the
session's conversation (``mirrored``): the role, the text, the tool name and
call id, the model and the token usage LangChain reports, so searches, the
usage figures and ``Ledger.messages`` see a graph's conversation too.

Key parts are percent-encoded (``langgraph_values.part``), so ``/`` only ever
separates them.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import PendingWrite, writes_sort_key

from .. import Ledger, LedgerError, Record
from .langgraph_values import CHUNK, VALUE, part

INTEGRATION = "langgraph"
"""The value of the ``integration`` metadata key on the sessions this checkpointer creates."""
CHECKPOINT = "langgraph.checkpoint"
WRITES = "langgraph.writes"
KINDS = (CHECKPOINT, WRITES, VALUE, CHUNK)
_SAFE = re.compile(r"[A-Za-z0-9._:-]{1,125}")
_PAGE = 64
log = logging.getLogger("ledger.integrations.langgraph")
_TOP = "\U0010ffff"  # above every character: a key range "starts with p" ends before p + _TOP

# One stored write: (channel, serializer type, bytes), by its index.
Stored = dict[int, tuple[str, str, bytes]]


def session_for(thread_id: str) -> str:
    """The ledger session that holds a LangGraph thread."""
    if _SAFE.fullmatch(thread_id):
        return f"lg:{thread_id}"
    return "lg." + hashlib.sha256(thread_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def checkpoint_key(ns: str, checkpoint_id: str) -> str:
    """The key of a checkpoint record."""
    return f"{part(ns)}/{part(checkpoint_id)}"


def writes_prefix(ns: str, checkpoint_id: str) -> str:
    """The start of the keys of a checkpoint's writes records (the task id follows)."""
    return f"{checkpoint_key(ns, checkpoint_id)}/"


def run_group(run_id: object) -> str:
    """The group of the checkpoints a run made."""
    return f"run:{part(str(run_id))}"


def config_of(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    """The config naming a checkpoint."""
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}


def _stored(record: Record | None) -> Stored:
    if record is None:
        return {}
    out: Stored = {}
    blob, at = record.blob or b"", 0
    for idx, channel, type_, size in record.value["writes"]:
        out[int(idx)] = (channel, type_, blob[at:at + size])
        at += size
    return out


def merge_writes(
    old: Record | None, given: Sequence[tuple[int, str, tuple[str, bytes]]]
) -> tuple[list[Any], bytes, set[int]] | None:
    """A task's writes record after adding ``given`` (index, channel, serialized value) to ``old``: a
    write already stored at a regular index (>= 0) stays, a special one (< 0: error, interrupt, ...) is
    replaced. Returns (the writes list, the blob, the indexes stored now), or None when nothing changes."""
    merged = _stored(old)
    fresh: set[int] = set()
    for idx, channel, (type_, data) in given:
        if idx >= 0 and idx in merged:
            continue
        merged[idx] = (channel, type_, data)
        fresh.add(idx)
    if not fresh:
        return None
    entries = sorted(merged.items())
    listed = [[idx, ch, type_, len(data)] for idx, (ch, type_, data) in entries]
    return listed, b"".join(d for _, (_, _, d) in entries), fresh


def _event_id(session_id: str, identity: str) -> str:
    return "lgm." + hashlib.sha256(f"{session_id}\x00{identity}".encode("utf-8", "surrogatepass")).hexdigest()[:40]


def mirror_writes(ledger: Ledger, session_id: str, ns: str, parent: str, serde: Any, channel: str) -> None:
    """Inside the put of a checkpoint: add the messages its parent's tasks wrote to ``channel`` to the session's
    conversation, in the order LangGraph applied them (``writes_sort_key``). Each is an ``add_message`` whose
    event id names the message id (or, for a message without one, the write), so a message written again (a
    subgraph's output, a step replayed, a second child of one checkpoint) is added once. A message the ledger
    refuses (over a limit, say) is left to the checkpoints, with a warning."""
    entries = []
    for record in ledger.records(session_id, WRITES, prefix=writes_prefix(ns, parent)):
        task, path = record.value["task"], record.value["path"]
        for idx, (written, type_, data) in _stored(record).items():
            if written == channel:
                entries.append((writes_sort_key(path, task, idx), f"{record.key}\x00{idx}", (type_, data)))
    entries.sort(key=lambda entry: entry[0])
    for _, where, typed in entries:
        for n, (message, fields) in enumerate(mirrored(serde.loads_typed(typed))):
            identity = f"id\x00{message.id}" if isinstance(message.id, str) and message.id else f"write\x00{where}\x00{n}"
            try:
                ledger.add_message(session_id, event_id=_event_id(session_id, identity), **fields)
            except LedgerError as exc:
                log.warning("message %r of session %r is not in its conversation: %s", message.id, session_id, exc)


def decode_checkpoint(record: Record, serde: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A checkpoint record's checkpoint (without its channel values) and metadata."""
    value = record.value
    if value.get("type") is None:
        return dict(value["checkpoint"]), dict(value["metadata"])
    both = serde.loads_typed((value["type"], record.blob or b""))  # one JSON could not hold
    return dict(both["checkpoint"]), dict(both["metadata"])


def checkpoint_metadata(record: Record, serde: Any) -> dict[str, Any]:
    """A checkpoint record's metadata."""
    value = record.value
    return dict(value["metadata"]) if value.get("type") is None else decode_checkpoint(record, serde)[1]


def delta_ancestors(
    record: Record, by_key: Mapping[str, Record], serde: Any, has_value: Callable[[str, str, str, object, None], object]
) -> set[str]:
    """Keys of the ancestors a checkpoint's ``DeltaChannel`` values are rebuilt from: back to the nearest one
    holding a stored value for each channel its ``counters_since_delta_snapshot`` names."""
    wanted = set(checkpoint_metadata(record, serde).get("counters_since_delta_snapshot") or {})
    ns, kept, parent = record.value["ns"], set(), record.value.get("parent")
    while wanted and parent:
        ancestor = by_key.get(checkpoint_key(ns, parent))
        if ancestor is None:
            break
        kept.add(ancestor.key)
        versions = decode_checkpoint(ancestor, serde)[0].get("channel_versions", {})
        wanted -= {ch for ch in wanted if ch in versions
                   and has_value(record.session_id, ns, ch, versions[ch], None) is not None}
        parent = ancestor.value.get("parent")
    return kept


def pending_writes(records: Sequence[Record], serde: Any) -> list[PendingWrite]:
    """The writes of a checkpoint's writes records, decoded, in ``writes_sort_key`` order."""
    found = []
    for record in records:
        task, path = record.value["task"], record.value["path"]
        for idx, (channel, type_, data) in _stored(record).items():
            found.append((writes_sort_key(path, task, idx), (task, channel, serde.loads_typed((type_, data)))))
    found.sort(key=lambda item: item[0])
    return [write for _, write in found]


def ancestor_pages(ledger: Ledger, session_id: str, ns: str, target: Record, cut: int) -> Iterator[list[Record]]:
    """The checkpoint records of ``target``'s ancestors, nearest first (following ``parent``), a page at a time:
    each page is read as the checkpoints of the namespace just older than the next parent wanted (a parent
    is nearly always the checkpoint just before), so a walk of n ancestors costs about n / 64 reads."""
    seen = {target.value["id"]}
    parent = target.value.get("parent")
    while parent and parent not in seen:
        rows = ledger.records(session_id, CHECKPOINT, prefix=f"{part(ns)}/", before=checkpoint_key(ns, parent) + "\x01",
                              descending=True, limit=_PAGE, position=cut)
        page = {r.value["id"]: r for r in rows}
        chain: list[Record] = []
        while parent and parent not in seen and parent in page:
            seen.add(parent)
            chain.append(page[parent])
            parent = page[parent].value.get("parent")
        if not chain:
            return
        yield chain


def page_writes(ledger: Ledger, session_id: str, ns: str, ids: Sequence[str], cut: int, serde: Any) -> dict[str, list[PendingWrite]]:
    """The pending writes of these checkpoints of a namespace, by checkpoint id, read in one range of keys."""
    if not ids:
        return {}
    wanted = set(ids)
    keys = sorted(checkpoint_key(ns, i) for i in ids)
    records = ledger.records(session_id, WRITES, prefix=f"{part(ns)}/", after=keys[0], before=keys[-1] + "/" + _TOP,
                             position=cut)
    by_checkpoint: dict[str, list[Record]] = {}
    for record in records:
        if record.value["checkpoint"] in wanted:
            by_checkpoint.setdefault(record.value["checkpoint"], []).append(record)
    return {cid: pending_writes(found, serde) for cid, found in by_checkpoint.items()}


_ROLES = {"human": "user", "ai": "assistant", "system": "system", "developer": "developer", "tool": "tool",
          "function": "tool"}


def _text(content: object) -> str:
    """The text of a LangChain message's content: a string, or the text parts of a list of blocks."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else ():
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "\n".join(parts)


def _tokens(message: BaseMessage) -> dict[str, int] | None:
    """LangChain's ``usage_metadata`` as the ledger's token counts (cache and reasoning are parts of the totals
    in both)."""
    usage = getattr(message, "usage_metadata", None)
    if not isinstance(usage, dict):
        return None
    inputs, outputs = usage.get("input_token_details") or {}, usage.get("output_token_details") or {}
    counts = {"input": usage.get("input_tokens"), "output": usage.get("output_tokens"),
              "cache_read": inputs.get("cache_read"), "cache_creation": inputs.get("cache_creation"),
              "reasoning": outputs.get("reasoning")}
    return {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)} or None


def mirrored(value: object) -> list[tuple[BaseMessage, dict[str, Any]]]:
    """Each message a write to the messages channel holds (a message or a list of them) with its
    ``Ledger.add_message`` arguments; what is not a message (a removal, a string still to be coerced) is left out."""
    found = []
    for message in value if isinstance(value, list) else [value]:
        if not isinstance(message, BaseMessage) or isinstance(message, RemoveMessage):
            continue
        kind = message.type.removesuffix("MessageChunk").lower() if message.type.endswith("Chunk") else message.type
        role = _ROLES.get(kind) or (getattr(message, "role", None) if kind == "chat" else None)
        if role not in _ROLES.values():
            continue
        metadata = message.response_metadata if isinstance(message.response_metadata, dict) else {}
        model = metadata.get("model_name") or metadata.get("model")
        found.append((message, {
            "role": role,
            "content": _text(message.content),
            "tool_name": message.name if role == "tool" and isinstance(message.name, str) else None,
            "invocation_id": getattr(message, "tool_call_id", None) if role == "tool" else None,
            "model": model if isinstance(model, str) else None,
            "tokens": _tokens(message),
        }))
    return found
