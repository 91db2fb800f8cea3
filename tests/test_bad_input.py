"""Issue 7, item 3: a hypothesis campaign of bad input over every public ``Ledger`` method and the CLI.

The property (DESIGN.md "Errors" and law 4), whatever the input:

* the only exceptions that leave the public API are ``LedgerError`` subclasses;
* an ``InvalidInput`` carries ``field``, its message names that field, and the field is the
  argument that was spoiled (every other argument of the call is valid);
* an error that names a session (not found, exists, closed) says which session;
* a rejected call writes nothing: ``last_position`` and every table are unchanged;
* a call that is accepted leaves a log that verifies and reads back (nothing unreadable invented).

For the CLI (``ledger.cli.main`` through click's ``CliRunner`` on generated argv lists): exit
code 0, 1 or 2, never a traceback or a raw exception, a failure is one line on stderr starting
with ``error:``, and a failed command leaves the file's tables as they were.

The ``Ledger`` campaigns run on both backends (the ``backend`` fixture); the CLI campaign runs on
SQLite files (tests/test_cli_postgres.py runs the CLI against PostgreSQL).

Each example starts from a copy of one small template ledger (sessions ``s`` active with
messages, an invocation, data, metadata, tags and a snapshot; ``done`` completed; ``gone``
purged; ``child`` forked from ``s``; ``other``) and spoils one argument of one call with wrong
types, missing sessions, oversize keys and values, deep and cyclic structures, NaN and
infinities, surrogates, NUL bytes, SQL metacharacters, huge and negative numbers.
This file complements tests/test_laws.py and tests/test_validation.py, which check narrower cases.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import chdir, closing, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ledger import (
    ANY,
    ConcurrencyError,
    Digest,
    InvalidInput,
    Ledger,
    LedgerError,
    Projector,
    SessionClosed,
    SessionExists,
    SessionNotFound,
)
from ledger.chain import GENESIS, link, stored_digest
from ledger.cli import main
from ledger.validation import check_id
from tests.conftest import Clock, dump


def pg_examples(examples: int) -> int:
    """How many of a campaign's examples also run on PostgreSQL, where each builds its template ledger anew."""
    return examples * PG_SHARE // 100


PG_SHARE = 20  # percent: each PostgreSQL example builds its ledger anew (~0.15 s), a SQLite one copies a file


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same inputs on every run: a failure here is a failure everywhere
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )


T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
LATER = datetime(2026, 1, 2, tzinfo=timezone.utc)
HEX = "ab" * 32


def _ids(prefix: str) -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{prefix}-{next(counter):04d}"


# -- the template ledger and a fresh copy per example ------------------------------------------


def build_template(path: Path, start: datetime) -> None:
    with Ledger(path, clock=Clock(start), snapshot_every=3, new_id=_ids("tpl")) as led:
        led.create_session("s", user_id="u", purpose="p", tags=["a", "b"], metadata={"k": 1, "is_starred": True})
        led.add_message("s", "user", "hello world", model="m", tokens={"input": 3, "output": 2})
        led.add_message("s", "assistant", "the failing tests are fixed")
        led.link_invocation("s", "i1", "git", duration_ms=3.0, cost=0.1, tokens={"input": 1})
        led.set_data("s", "d", {"x": [1, 2]})
        led.checkpoint("s")
        led.create_session("done", user_id="u2")
        led.add_message("done", "user", "bye")
        led.complete_session("done")
        led.create_session("gone")
        led.add_message("gone", "user", "secret")
        led.purge_session("gone", reason="gdpr")
        led.fork("s", version=3, new_session_id="child")
        led.create_session("other", tags=["c"])
        led.search_messages("hello")  # level the lazy search index: a read after this writes nothing


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("badinput")
    build_template(root / "template.db", T0)
    build_template(root / "cli-template.db", datetime(2020, 1, 1, tzinfo=timezone.utc))  # long idle, for gc
    return root


_serial = itertools.count()


@dataclass
class Where:
    """Where each example's ledger goes: a copy of the template file (SQLite), or, on PostgreSQL, a fresh
    schema (from ``new_path``, the ``new_ledger_path`` fixture) where the template is built again."""

    backend: str
    new_path: Callable[[], str]


@pytest.fixture
def where(backend: str, new_ledger_path: Callable[[], str]) -> Where:
    return Where(backend, new_ledger_path)


@contextmanager
def fresh(base: Path, where: Where) -> Iterator[Ledger]:
    """A copy of the template, opened, in a new working directory with a few files to trip over."""
    work = base / f"w{next(_serial)}"
    work.mkdir()
    (work / "adir").mkdir()
    (work / "existing.db").write_text("not empty")
    (work / "junk.json").write_bytes(b"\xff\xfe\x00 not an export {]")
    if where.backend == "postgres":
        path = where.new_path()
        build_template(path, T0)  # deterministic: the same ledger as the template file
    else:
        path = str(work / "the.ledger")
        shutil.copyfile(base / "template.db", path)
    led = Ledger(path, clock=Clock(LATER), snapshot_every=3, new_id=_ids("new"), busy_timeout=1.0)
    cwd = os.getcwd()
    os.chdir(work)  # relative paths the campaign generates land here, never in the repository
    try:
        yield led
    finally:
        os.chdir(cwd)
        led.close()
        shutil.rmtree(work, ignore_errors=True)


# -- the property -----------------------------------------------------------------------------

_EDGE = r"(?<![A-Za-z0-9_])"


def names(message: str, field_name: str) -> bool:
    """Whether the message names the field: the whole name, or its head (before '.', '[' or ' ') or a prefix of it."""
    if re.search(_EDGE + re.escape(field_name), message):
        return True
    root = re.split(r"[.\[ ]", field_name)[0]
    shortest = max(3, len(root) - 3)
    return any(re.search(_EDGE + re.escape(root[:n]), message) for n in range(len(root), shortest - 1, -1))


def check_error(err: LedgerError, fields: tuple[str, ...]) -> None:
    message = str(err)
    if isinstance(err, InvalidInput):
        assert err.field, f"{type(err).__name__} without a field: {message}"
        assert names(message, err.field), f"the message does not name the field {err.field!r}: {message}"
        assert err.field.startswith(fields), f"field {err.field!r}, but the spoiled argument was {fields}: {message}"
    elif err.field is not None:
        assert names(message, err.field), f"{type(err).__name__} does not name its field {err.field!r}: {message}"
    if isinstance(err, (SessionNotFound, SessionExists, SessionClosed, ConcurrencyError)):
        assert err.session_id is not None and repr(err.session_id) in message, f"no session named: {message}"


def changed_tables(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(t for t in before.keys() | after.keys() if before.get(t) != after.get(t))


def attempt(led: Ledger, call: Callable[[], Any], fields: tuple[str, ...]) -> LedgerError | None:
    """Make the call; a LedgerError must name the spoiled field and leave every table as it was.

    Any other exception propagates untouched, so hypothesis reports each escaping raw exception
    at its own origin (file:line in the library) as a distinct bug.
    """
    before, position = dump(led), led.last_position
    try:
        result = call()
        if isinstance(result, Iterator):
            list(result)  # history() is lazy
    except LedgerError as err:
        check_error(err, fields)
        assert led.last_position == position, f"partial write: last_position {position} -> {led.last_position}: {err}"
        assert dump(led) == before, f"partial write: {changed_tables(before, dump(led))} changed; rejected with: {err}"
        return err
    accepted_reads_back(led)
    return None


def accepted_reads_back(led: Ledger) -> None:
    """After an accepted call: the chain verifies and every stored event decodes."""
    assert led.verify().ok, "an accepted call left a log that does not verify"
    list(led.history())


# -- strategies -------------------------------------------------------------------------------


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


class NoOffset(tzinfo):
    """A tzinfo that is set but gives no offset."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def __repr__(self) -> str:
        return "NoOffset()"


def deep_list(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = [value]
    return value


def deep_dict(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = {"k": value}
    return value


def cyclic_list() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


def cyclic_dict() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = {"again": value}
    return value


NAN, INF = math.nan, math.inf
BIG_INTS = [2**63, 2**64, -(2**63) - 1, 10**400, -(10**400)]
SQL = [
    "'; DROP TABLE events;--", "%", "_", "%_%", "'", '"', "`", "\\", "' OR '1'='1", '" OR ""="',
    "); DELETE FROM sessions; --", "NEAR(", "*", "AND OR NOT", "events", "sessions", "s%", "s_",
]
ODD_TEXT = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\n", "a\nb", "\t", "\u202e", "🤖",
    "é" * 129, "x" * 129, "x" * 257, "x" * 4097,
]

wrong_types: SearchStrategy[Any] = st.sampled_from([
    None, True, False, 0, -1, 1.5, -0.0, NAN, INF, -INF, b"bytes", bytearray(b"b"), [], ["x"], {}, {"k": 1},
    (), frozenset({"a"}), Opaque(), 1j, Decimal("1.5"), Fraction(1, 3), date(2026, 1, 1), Ellipsis, *BIG_INTS,
])
# Lone surrogates are built from integers: hypothesis replays string choices holding them unreliably.
surrogate_laden = st.builds(
    lambda a, s, b: a + chr(s) + b, st.text(max_size=4), st.integers(0xD800, 0xDFFF), st.text(max_size=4)
)
with_nul = st.builds(lambda a, b: a + "\x00" + b, st.text(max_size=4), st.text(max_size=4))
odd_text: SearchStrategy[Any] = st.one_of(st.sampled_from(SQL + ODD_TEXT), surrogate_laden, with_nul, st.text(max_size=12))
junk = st.one_of(wrong_types, odd_text)
session_ids = st.one_of(junk, st.sampled_from(["nope", "missing-1", "S", "done", "gone", "child", "other", "s" * 128]))
ints = st.one_of(
    wrong_types,
    st.integers(-5, 40),
    st.sampled_from([*BIG_INTS, 2**63 - 1, 2**62, "1", "0", 1.0]),
    st.floats(),
)
event_ids = st.one_of(junk, st.sampled_from(["tpl-0001", "tpl-0002", "tpl-0006", "fresh-id"]))

PLUS14, MINUS14 = timezone(timedelta(hours=14)), timezone(timedelta(hours=-14))
times = st.one_of(
    wrong_types,
    st.sampled_from([
        datetime.max.replace(tzinfo=MINUS14),
        datetime.min.replace(tzinfo=PLUS14),
        datetime.max.replace(tzinfo=timezone.utc),
        datetime.min.replace(tzinfo=timezone.utc),
        datetime(2026, 1, 1, 12, tzinfo=NoOffset()),
        datetime(2026, 1, 1, 12),
        date(2026, 1, 1),
        "2026-01-01T12:00:00Z",
        1767268800,
        T0 - timedelta(days=1),
        T0 + timedelta(microseconds=2500),
    ]),
    st.datetimes(timezones=st.sampled_from([timezone.utc, PLUS14, MINUS14])),
    st.datetimes(),
)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), odd_text)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3), max_leaves=6
)
json_junk = st.one_of(
    st.sampled_from([
        NAN, INF, -INF, *BIG_INTS, b"x", bytearray(b"x"), {1, 2}, frozenset(), Opaque(), 1j, Decimal("1"),
        Fraction(1, 2), date(2026, 1, 1), {1: "int key"}, {None: 1}, {("t",): 1}, {"\ud800": 1}, ["a\ud800"],
        "x" * 5000, [NAN], {"x": INF},
    ]),
    st.builds(deep_list, st.integers(28, 120)),
    st.builds(deep_dict, st.integers(28, 120)),
    st.builds(cyclic_list),
    st.builds(cyclic_dict),
    json_values,
)
keys = st.one_of(junk, st.sampled_from(["k" * 257, "é" * 129, "k" * 256]))
metadata_maps = st.one_of(
    junk,
    st.dictionaries(st.one_of(odd_text, st.sampled_from([7, None, 1.5, b"k", "k" * 257])), json_junk, min_size=1, max_size=3),
    st.just({f"k{i}": i for i in range(101)}),
    st.builds(cyclic_dict),
    st.just([("k", 1)]),
)
tag_lists = st.one_of(
    junk,
    st.lists(st.one_of(odd_text, wrong_types), min_size=1, max_size=4),
    st.sampled_from([[""], ["a\nb"], ["t" * 129], ["\ud800"], [None], ["ok", 5], [f"t{i}" for i in range(101)], [b"a"]]),
)
tokens = st.one_of(
    junk,
    st.dictionaries(st.sampled_from(["input", "output", "prompt", "", "\ud800", 1, None, b"input"]), ints, min_size=1, max_size=2),
    st.sampled_from([{"input": 2**63 - 1}, {"output": 2**63 - 1}, [("input", 1)]]),
)
amounts = st.one_of(
    wrong_types,
    st.floats(),
    st.integers(-3, 3),
    st.sampled_from([1.7976931348623157e308, -1e-300, "1", "nan", 10**400]),
)
spans = st.one_of(
    wrong_types,
    st.floats(),
    st.integers(-2, 10**12),
    st.sampled_from([
        1e11, 1e10, 1e6, 999_999_999_999.0, timedelta.max, timedelta.min, timedelta(days=10**6),
        timedelta(0), timedelta(-1), "1",
    ]),
)
texts = junk  # optional text arguments: user_id, purpose, reason, model, ...
big_text = st.one_of(junk, st.just("x" * 5000))


def spoil(**strategies: SearchStrategy[Any]) -> dict[str, SearchStrategy[dict[str, Any]]]:
    """One case per argument: that argument replaced by a drawn value."""
    return {name: st.fixed_dictionaries({name: s}) for name, s in strategies.items()}


def targets(*, position: bool = True) -> dict[str, SearchStrategy[dict[str, Any]]]:
    """version / position / at, alone or two at once."""
    cases = spoil(version=ints, at=times)
    both = [st.builds(lambda v, a: {"version": v, "at": a}, ints, times)]
    if position:
        cases.update(spoil(position=ints))
        both.append(st.builds(lambda p, a: {"position": p, "at": a}, ints, times))
        both.append(st.builds(lambda v, p: {"version": v, "position": p}, ints, ints))
    cases["two targets"] = st.one_of(*both)
    return cases


COMMAND = spoil(session_id=session_ids, expected_version=ints, event_id=event_ids)


@dataclass
class Spec:
    """One public method: valid arguments, and the cases that spoil one of them."""

    method: str
    valid: dict[str, Any]
    cases: dict[str, SearchStrategy[dict[str, Any]]]
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    name: str = ""
    setup: Callable[[Ledger], None] | None = None

    def __post_init__(self) -> None:
        self.name = self.name or self.method

    def __repr__(self) -> str:
        return f"Spec({self.name!r})"

    def strategy(self) -> SearchStrategy[tuple[str, dict[str, Any]]]:
        return st.one_of(*[st.tuples(st.just(label), s) for label, s in self.cases.items()])

    def expected(self, label: str) -> tuple[str, ...]:
        if label in self.fields:
            return self.fields[label]
        if label == "two targets":
            return ("version", "position", "at")
        return (label,)


COMMAND_SPECS = [
    Spec(
        "create_session",
        {"session_id": "new"},
        {
            **spoil(session_id=st.one_of(junk, st.sampled_from(["s", "gone", "child"])), user_id=texts, purpose=big_text,
                    tags=tag_lists, metadata=metadata_maps, expected_version=ints, event_id=event_ids),
        },
    ),
    Spec(
        "add_message",
        {"session_id": "s", "role": "user", "content": "hi"},
        {
            **COMMAND,
            **spoil(role=st.one_of(junk, st.sampled_from(["robot", "USER", "user "])),
                    content=st.one_of(wrong_types, odd_text, st.just("x" * 1_048_577)),
                    tool_name=texts, invocation_id=texts, model=texts, tokens=tokens),
        },
    ),
    Spec(
        "link_invocation",
        {"session_id": "s", "invocation_id": "i9", "tool_name": "git"},
        {
            **COMMAND,
            **spoil(invocation_id=junk, tool_name=junk, duration_ms=amounts, tokens=tokens, cost=amounts,
                    status=junk, artifact=big_text),
        },
    ),
    Spec(
        "set_metadata",
        {"session_id": "s", "key": "k2", "value": 1},
        {**COMMAND, **spoil(key=keys, value=json_junk, modified_by=texts)},
        {"key": ("metadata key",), "value": ("metadata[",)},
    ),
    Spec(
        "update_metadata",
        {"session_id": "s", "values": {"k2": 1}},
        {**COMMAND, **spoil(values=metadata_maps, modified_by=texts)},
        {"values": ("metadata",)},
    ),
    Spec(
        "remove_metadata",
        {"session_id": "s", "key": "k"},
        {**COMMAND, **spoil(key=keys, modified_by=texts)},
        {"key": ("metadata key",)},
    ),
    Spec(
        "set_data",
        {"session_id": "s", "key": "d2", "value": 1},
        {**COMMAND, **spoil(key=keys, value=st.one_of(json_junk, st.just("x" * 1_048_577)))},
        {"key": ("data key",), "value": ("data[",)},
    ),
    Spec("delete_data", {"session_id": "s", "key": "d"}, {**COMMAND, **spoil(key=keys)}, {"key": ("data key",)}),
    Spec("clear_data", {"session_id": "s"}, COMMAND),
    Spec("add_tags", {"session_id": "s", "tags": ["z"]}, {**COMMAND, **spoil(tags=tag_lists)}),
    Spec("remove_tags", {"session_id": "s", "tags": ["a"]}, {**COMMAND, **spoil(tags=tag_lists)}),
    Spec(
        "complete_session",
        {"session_id": "s"},
        {**COMMAND, **spoil(status=st.one_of(junk, st.sampled_from(["done", "COMPLETED", "active", "purged"])),
                            reason=big_text)},
    ),
    Spec(
        "restore",
        {"session_id": "s", "version": 2},  # "child" has one version: version 2 is then the bad argument
        {
            **COMMAND,
            **spoil(version=ints),
            "at": times.map(lambda a: {"version": None, "at": a}),
            "two targets": st.builds(lambda v, a: {"version": v, "at": a}, ints, times),
        },
        {"two targets": ("version", "at"), "at": ("at", "version"), "session_id": ("session_id", "version")},
    ),
    Spec(
        "fork",
        {"session_id": "s", "new_session_id": "f1"},
        {
            **spoil(session_id=session_ids, new_session_id=st.one_of(junk, st.sampled_from(["s", "gone"])),
                    event_id=event_ids),
            **targets(position=False),
        },
        {"two targets": ("version", "at")},
    ),
    Spec("checkpoint", {"session_id": "s"}, spoil(session_id=session_ids)),
]

LIFECYCLE_SPECS = [
    Spec(
        "purge_session",
        {"session_id": "other", "reason": "r"},
        spoil(session_id=session_ids, reason=st.one_of(big_text, st.just(None)), by=texts),
    ),
    Spec(
        "drop_snapshots",
        {},
        spoil(keep=ints, bucket=st.one_of(wrong_types, st.sampled_from(
            [timedelta(0), timedelta(-1), timedelta.max, timedelta.min, timedelta(microseconds=1), 86400]))),
    ),
    Spec("cleanup", {"max_idle": 5}, spoil(max_idle=spans)),
    # 0.01 days: the template's "done" session ended long enough ago to be purged, so ``by`` is used.
    Spec("purge_completed", {"older_than": 0.01}, spoil(older_than=spans, by=texts)),
]

READ_SPECS = [
    Spec("get_session", {"session_id": "s"}, {**spoil(session_id=session_ids), **targets()}),
    Spec("get_metadata", {"session_id": "s"}, {**spoil(session_id=session_ids, key=keys), **targets()},
         {"key": ("metadata key",)}),
    Spec("get_data", {"session_id": "s", "key": "d"}, {**spoil(session_id=session_ids, key=keys), **targets()},
         {"key": ("data key",)}),
    Spec("messages", {"session_id": "child"}, {**spoil(session_id=session_ids, limit=ints, offset=ints), **targets()}),
    Spec("statistics", {"session_id": "s"}, {**spoil(session_id=session_ids), **targets()}),
    Spec("history", {}, spoil(session_id=session_ids, after=ints)),
]

ORDERS = st.one_of(junk, st.sampled_from(["created_at; DROP TABLE events", "rowid", "CREATED_AT", "s.session_id"]))


def _cursor(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


cursors = st.one_of(
    junk,
    st.sampled_from([
        _cursor(b'["created_at",true,[1],"s"]'),
        _cursor(b'["created_at",true,1e999,"s"]'),
        _cursor(b'["created_at",true,"\\ud800","s"]'),
        _cursor(b'["created_at",true,"2026","\\ud800"]'),
        _cursor(b'["created_at",true,123456789012345678901234567890,"s"]'),
        _cursor(b'["created_at",true,-123456789012345678901234567890,"s"]'),
        _cursor(b'["created_at",true,"x"]'),
        _cursor(b'{"a":1}'),
        _cursor(b"\xff\xfe"),
        _cursor(b'["session_id",true,"s","s"]'),
        "!!!!",
        "=",
    ]),
)
filters = st.one_of(
    junk,
    st.dictionaries(st.one_of(odd_text, st.sampled_from([7, None, b"k"])), st.one_of(json_junk, st.just(ANY)), min_size=1, max_size=3),
    st.just({"k": cyclic_list()}),
)
statuses = st.one_of(junk, st.lists(st.one_of(junk, st.sampled_from(["active", "purged", "ACTIVE"])), max_size=3))
tag_filters = st.one_of(junk, st.lists(odd_text, max_size=3), st.just([None]), st.just(["a", 1]))
LIST_OPTIONS = spoil(order_by=ORDERS, descending=wrong_types, limit=ints, cursor=cursors)

QUERY_SPECS = [
    Spec(
        "list_sessions",
        {},
        {
            **spoil(user_id=junk, status=statuses, tags=tag_filters, any_tags=tag_filters, metadata=filters,
                    created_after=times, created_before=times, updated_after=times, text=junk, parent_id=junk),
            **LIST_OPTIONS,
        },
    ),
    Spec("find_sessions_by_metadata", {"filters": {"k": 1}}, {**spoil(filters=filters), **LIST_OPTIONS},
         {"filters": ("metadata",)}),
    Spec("sessions_by_tag", {"tag": "a"}, {**spoil(tag=junk), **LIST_OPTIONS}),
    Spec("starred_sessions", {}, LIST_OPTIONS),
    Spec(
        "search_messages",
        {"query": "hello"},
        spoil(query=st.one_of(junk, st.sampled_from(["NEAR(", '"', "*", "AND", "hello*", "^hello", "-x", "a:b"])),
              session_id=session_ids, role=st.one_of(junk, st.just("robot")), limit=ints),
    ),
    Spec("usage", {}, spoil(by=st.one_of(junk, st.sampled_from(["TOOL", "tool; DROP TABLE events", "grp"])),
                            since=times, until=times)),
]


def _add_message(led: Ledger) -> None:
    led.add_message("s", "user", "a new message the lazy search index has not seen")


# A read that needs the lazy search index levels it first; a rejected one must not have written anything.
LAZY_SPECS = [
    Spec("search_messages", {"query": "hello"}, spoil(query=junk, limit=ints, role=junk), name="search_messages/index behind",
         setup=_add_message),
    Spec("list_sessions", {"text": "hello"}, spoil(text=junk, limit=ints, order_by=ORDERS, cursor=cursors),
         name="list_sessions/index behind", setup=_add_message),
]

ALL_SPECS = COMMAND_SPECS + LIFECYCLE_SPECS + READ_SPECS + QUERY_SPECS + LAZY_SPECS


def run_spec(base: Path, where: Where, spec: Spec, case: tuple[str, dict[str, Any]]) -> None:
    label, override = case
    kwargs = {k: _resolve(v) for k, v in {**spec.valid, **override}.items()}
    with fresh(base, where) as led:
        if spec.setup is not None:
            spec.setup(led)
        attempt(led, lambda: getattr(led, spec.method)(**kwargs), spec.expected(label))


def _test_name(spec: Spec) -> str:
    return "test_" + re.sub(r"\W+", "_", spec.name) + "_refuses_bad_input"


def campaign(spec: Spec, examples: int) -> Callable[..., None]:
    """One hypothesis test per method, given the method's own strategy. (Not one test drawing
    with ``st.data()``: hypothesis's final replay of such draws raised FlakyStrategyDefinition.)
    On each backend; PostgreSQL runs the first ``pg_examples(examples)`` of the same examples."""

    def test(base: Path, where: Where) -> None:
        @_settings(examples if where.backend == "sqlite" else pg_examples(examples))
        @given(case=spec.strategy())
        def run(case: tuple[str, dict[str, Any]]) -> None:
            run_spec(base, where, spec, case)

        run.__name__ = run.__qualname__ = _test_name(spec)  # the same derandomized examples on both backends
        run()

    test.__name__ = test.__qualname__ = _test_name(spec)
    test.__doc__ = f"Ledger.{spec.method}: bad input raises a LedgerError naming the field and writes nothing."
    return test


for _spec in ALL_SPECS:
    globals()[_test_name(_spec)] = campaign(_spec, 50)


# -- the same, inside a batch ---------------------------------------------------------------


BATCH_SPECS = [s for s in COMMAND_SPECS if s.method != "checkpoint"]


def test_a_rejected_command_inside_a_batch_writes_nothing(base: Path, where: Where) -> None:
    @_settings(60 if where.backend == "sqlite" else pg_examples(60))
    @given(case=st.sampled_from(BATCH_SPECS).flatmap(lambda spec: st.tuples(st.just(spec), spec.strategy())))
    def run(case: Any) -> None:
        batch_case(base, where, case)

    run.__name__ = run.__qualname__ = "test_a_rejected_command_inside_a_batch_writes_nothing"
    run()


def batch_case(base: Path, where: Where, case: Any) -> None:
    spec, (label, override) = case
    kwargs = {**spec.valid, **override}
    with fresh(base, where) as led:
        before = dump(led)
        with led.batch():
            led.add_message("other", "user", "first command of the batch")
            rejected = attempt(led, lambda: getattr(led, spec.method)(**kwargs), spec.expected(label))
        assert led.verify().ok
        if rejected is not None:
            after = dump(led)
            # Only the batch's first command landed: one message in "other".
            assert len(after["events"]) == len(before["events"]) + 1, changed_tables(before, after)
            assert list(led.history())[-1].session_id == "other"


WHOLE_FILE = {
    "rebuild": lambda led, p: led.rebuild(None),
    "register": lambda led, p: led.register(_projector("mine")()),
    "replay": lambda led, p: led.replay(into=p),
    "backup": lambda led, p: led.backup(p),
    "import_events": lambda led, p: led.import_events(io.StringIO("")),
    "batch": lambda led, p: led.batch().__enter__(),
}


@pytest.mark.parametrize("what", sorted(WHOLE_FILE))
def test_whole_file_work_inside_a_batch_is_refused_naming_the_batch(base: Path, where: Where, what: str) -> None:
    with fresh(base, where) as led:
        start = led.last_position
        with led.batch():
            led.add_message("s", "user", "inside")
            before = dump(led)  # what is committed: the batch is not yet
            with pytest.raises(InvalidInput) as err:
                WHOLE_FILE[what](led, "copy.db")
            check_error(err.value, ("batch",))
            assert dump(led) == before
        # Nor did the refused call add anything to the batch: it committed exactly its one message.
        assert [(e.type, e.payload.content) for e in led.history(after=start)] == [("message_added", "inside")]


# -- verify, register, rebuild ------------------------------------------------------------------


def _projector(name: Any, version: Any = 1, inline: Any = True, builtin: Any = False) -> type[Projector]:
    def create(self: Projector, db: Any) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS bad_input_projection (n INTEGER)")

    def apply(self: Projector, conn: Any, events: Any) -> None:
        pass

    return type("Custom", (Projector,), {
        "name": name, "version": version, "inline": inline, "builtin": builtin,
        "dialects": frozenset({"sqlite", "postgres"}),  # its one statement is the same on both
        "tables": ("bad_input_projection",), "create": create, "apply": apply,
        "__repr__": lambda self: f"Custom(name={name!r}, version={version!r}, inline={inline!r}, builtin={builtin!r})",
    })


projectors = st.one_of(
    junk,
    st.just(Projector),  # the class, not an instance
    st.builds(lambda n: _projector(n)(), st.one_of(junk, st.sampled_from(["sessions", "search", "a b", "é", "x" * 300]))),
    st.builds(lambda v: _projector("mine", version=v)(), ints),
    st.builds(lambda i, b: _projector("mine", inline=i, builtin=b)(), st.sampled_from([True, False, None, 0]),
              st.sampled_from([True, False, None, 1])),
)
digests = st.one_of(
    junk,
    st.builds(Digest, ints, st.one_of(junk, st.sampled_from([HEX, HEX.upper(), "0" * 63, "g" * 64, HEX + "0"]))),
    st.builds(lambda p: Digest(p, HEX), st.integers(0, 10**6)),
    st.just({"position": 1, "hash": HEX}),
    st.just(json.dumps({"position": 1, "hash": HEX})),
)
progress = junk.filter(lambda v: v is not None)  # None is the valid value; nothing here is callable

LEDGER_SPECS = [
    Spec("verify", {}, spoil(digest=digests)),
    Spec("register", {"projector": _projector("mine")()}, spoil(projector=projectors)),
    Spec("rebuild", {}, spoil(name=st.one_of(junk, st.sampled_from(["nope", "SESSIONS", "sessions;"])), progress=progress),
         {"name": ("projection", "name")}),
]


for _spec in LEDGER_SPECS:
    globals()[_test_name(_spec)] = campaign(_spec, 40)


# -- files: replay, export, import, backup ---------------------------------------------------------

PATH_NAMES = [
    "adir", "existing.db", "missing/x.out", "", ":memory:", "file:x.db?mode=memory", "a\x00b", "\ud800.out",
    "x" * 300, "junk.json", "fresh.out", Path("adir"), Path("missing/x.out"), b"fresh-bytes.out",
]
paths = st.one_of(wrong_types, st.sampled_from(PATH_NAMES), odd_text)


class ClosedStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.close()

    def __repr__(self) -> str:
        return "ClosedStream()"


class Bytes(io.BytesIO):
    def __repr__(self) -> str:
        return f"Bytes({self.getvalue()!r})"


def _stream(kind: str) -> Any:
    if kind == "closed":
        return ClosedStream()
    if kind == "bytes":
        return Bytes()
    if kind == "empty-export":
        return io.StringIO(
            '{"format": "session-ledger/events", "version": 1, "head": {"position": 0, "hash": "' + "00" * 32 + '"},'
            ' "sessions": null}\n{"format": "session-ledger/events", "end": true, "rows": 0}\n'
        )
    return Bytes(b'{"format": "session-ledger/events", "version": 1, "head": {"position": 0}, "sessions": null}\n'
                 b'{"format": "session-ledger/events", "end": true, "rows": 0}\n')


class Stream:
    """A marker for a stream made fresh inside the example (closed, or bytes instead of text)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"Stream({self.kind!r})"


def _resolve(value: Any) -> Any:
    return _stream(value.kind) if isinstance(value, Stream) else value


outs = st.one_of(paths, st.sampled_from(["closed", "bytes"]).map(Stream))
sources = st.one_of(paths, st.sampled_from(["closed", "bytes", "bytes-export"]).map(Stream), st.sampled_from(["/proc/version", "/dev/null"]))

FILE_SPECS = [
    Spec(
        "replay",
        {"into": "fresh.out"},
        {
            **spoil(into=paths, until_position=ints, until=times, progress=progress),
            "two cuts": st.builds(lambda p, t: {"until_position": p, "until": t}, ints, times),
        },
        {"two cuts": ("until", "until_position")},
    ),
    Spec(
        "export",
        {"out": "fresh.out"},
        {
            **spoil(out=outs, format=st.one_of(junk, st.sampled_from(["JSONL", "csv", "sessions_dir"])),
                    sessions=st.one_of(junk, st.lists(session_ids, max_size=3), st.just(["s", "gone"])),
                    until_position=ints, until=times, progress=progress),
            "two cuts": st.builds(lambda p, t: {"until_position": p, "until": t}, ints, times),
            "sessions-dir out": outs.map(lambda o: {"format": "sessions-dir", "out": o}),
            "sessions-dir until": times.map(lambda t: {"format": "sessions-dir", "out": "fresh.dir", "until": t}),
        },
        {"two cuts": ("until", "until_position"), "sessions-dir out": ("out",), "sessions-dir until": ("until",)},
    ),
    Spec("import_events", {"source": Stream("empty-export")}, spoil(source=sources, progress=progress)),
    Spec("backup", {"out": "fresh.out"}, spoil(out=paths, progress=progress)),
]


for _spec in FILE_SPECS:
    globals()[_test_name(_spec)] = campaign(_spec, 50)


# -- import: damaged and crafted export files ------------------------------------------------------


@pytest.fixture(scope="module")
def export_lines(base: Path) -> list[str]:
    """A full export of a small ledger whose events come after the template's (session "imp", 4 events)."""
    with Ledger(base / "source.db", clock=Clock(datetime(2026, 1, 3, tzinfo=timezone.utc)), new_id=_ids("src")) as led:
        led.create_session("imp", user_id="u", tags=["t"])
        led.add_message("imp", "user", "imported words", tokens={"input": 1})
        led.set_data("imp", "d", [1, 2])
        led.complete_session("imp")
        out = io.StringIO()
        led.export(out)
    return out.getvalue().splitlines()


ROW_FIELDS = ["position", "event_id", "session_id", "version", "type", "schema", "recorded_at", "data", "hash", "prev"]
json_any = st.one_of(
    st.none(), st.booleans(), st.sampled_from([0, -1, 1, 2, 99, 2**63 - 1, 2**63, 2**64, 10**30, 1.5, "1", [], {}]),
    odd_text,
)
FIELD_VALUES: dict[str, SearchStrategy[Any]] = {
    "position": json_any,
    "version": json_any,
    "schema": json_any,
    "event_id": st.one_of(json_any, st.sampled_from(["tpl-0001", "tpl-0002", "bad id!", "a\x1fb", "x" * 300])),
    "session_id": st.one_of(json_any, st.sampled_from(["s", "gone", "done", "bad id!", "a\x1fb", "x" * 300, ""])),
    "type": st.one_of(json_any, st.sampled_from(["bogus", "created", "message_added", "purged", "redacted", "forked"])),
    "recorded_at": st.one_of(json_any, st.sampled_from([
        "", "garbage", "zzzz", "2026-99-99T00:00:00Z", "9999-12-31T23:59:59.999999Z", "2020-01-01T00:00:00.000000Z",
        "2026-01-03T00:00:00.000000Z\x00",
    ])),
    "data": st.one_of(json_any, st.sampled_from([
        "", "null", "[]", "{}", "not json", '{"role": 5, "content": "x"}', '{"content": null}', '{"user_id": 5}',
        '{"tags": "abc"}', '{"values": []}', '{"key": null}', '{"x": 1e999}', '{"$redacted": "zz", "purged_at": "x"}',
        '{"$redacted":"' + "a" * 64 + '","purged_at":1}', '{"role":"user","content":"\\ud800"}', '{"status":"done"}',
        '{"parent_id":"s","parent_version":1,"state":{}}', '{"tokens_in": 99999999999999999999}',
    ])),
    "hash": st.one_of(json_any, st.sampled_from([HEX, "zz"])),
    "prev": st.one_of(json_any, st.sampled_from([HEX, "zz"])),
}


def _rehash(header: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Recompute every row's prev and hash (and the header's head), so only the content is wrong."""
    prev = GENESIS
    for row in rows:
        try:
            row["prev"] = prev.hex()
            row["hash"] = link(prev, row["position"], row["event_id"], row["session_id"], row["version"], row["type"],
                               row["schema"], row["recorded_at"], stored_digest(row["data"].encode())).hex()
        except Exception:  # a value of the wrong type cannot be hashed: leave the row as it is
            return
        prev = bytes.fromhex(row["hash"])
    if isinstance(header.get("head"), dict) and rows:
        header["head"] = {"position": rows[-1]["position"], "hash": rows[-1]["hash"]}


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()  # the export's own value
EXPORT_ROWS = 4  # the rows of ``export_lines``

# What to do to a valid export: (kind, ...) recipes, applied to the fixture's lines by ``craft``.
recipes = st.one_of(
    st.tuples(st.just("field"), st.integers(0, EXPORT_ROWS - 1), st.sampled_from(ROW_FIELDS).flatmap(
        lambda name: st.tuples(st.just(name), FIELD_VALUES[name])), st.booleans()),
    st.tuples(st.just("header"), st.one_of(
        st.sampled_from([None, [], "x", 1, {"format": "other"}]),
        st.fixed_dictionaries({"format": st.just("session-ledger/events"), "version": json_any,
                               "head": st.one_of(json_any, st.just(KEEP)), "sessions": json_any}),
    )),
    st.tuples(st.just("trailer"), st.sampled_from([
        None, {"format": "session-ledger/events"}, {"format": "session-ledger/events", "rows": "4"},
        {"format": "session-ledger/events", "rows": 3}, "RAW:{\"format\"x", "RAW:",
    ]), st.sampled_from([None, '{"format": "session-ledger/events", "end": true, "rows": 4}', "junk"])),
    st.tuples(st.just("line"), st.integers(0, EXPORT_ROWS),
              st.one_of(odd_text, st.sampled_from(["{}", "[]", "null", '{"position": 1}', "1", '"x"']))),
    st.tuples(st.just("valid")),
)


def craft(lines: list[str], recipe: tuple[Any, ...]) -> str:
    header = json.loads(lines[0])
    rows: list[Any] = [json.loads(line) for line in lines[1:-1]]
    trailer: Any = json.loads(lines[-1])
    extra: list[str] = []
    kind = recipe[0]
    if kind == "field":
        _, index, (name, value), rehash = recipe
        rows[index][name] = value
        if rehash and name not in ("hash", "prev"):
            _rehash(header, rows)
    elif kind == "header":
        header = recipe[1] if not isinstance(recipe[1], dict) else {
            k: (header["head"] if v is KEEP else v) for k, v in recipe[1].items()
        }
    elif kind == "trailer":
        trailer = recipe[1]
        if recipe[2] is not None:
            extra.append(recipe[2])
    elif kind == "line":
        rows.insert(recipe[1], "RAW:" + str(recipe[2]).replace("\n", " "))

    def line(value: Any) -> str:
        if isinstance(value, str) and value.startswith("RAW:"):
            return value[4:]
        return json.dumps(value)

    parts = [line(header), *(line(r) for r in rows)]
    if trailer is not None:
        parts.append(line(trailer))
    return "\n".join(parts + extra) + "\n"


def test_import_refuses_damaged_and_crafted_exports_and_writes_nothing(
    base: Path, where: Where, export_lines: list[str]
) -> None:
    @_settings(200 if where.backend == "sqlite" else pg_examples(200))
    @given(recipe=recipes, as_file=st.booleans())
    def run(recipe: tuple[Any, ...], as_file: bool) -> None:
        import_case(base, where, export_lines, recipe, as_file)

    run.__name__ = run.__qualname__ = "test_import_refuses_damaged_and_crafted_exports_and_writes_nothing"
    run()


def import_case(base: Path, where: Where, export_lines: list[str], recipe: tuple[Any, ...], as_file: bool) -> None:
    text = craft(export_lines, recipe)
    with fresh(base, where) as led:
        if as_file:
            Path("crafted.jsonl").write_text(text, encoding="utf-8", errors="surrogatepass")
            source: Any = "crafted.jsonl"
        else:
            source = io.StringIO(text)
        rejected = attempt(led, lambda: led.import_events(source), ("source",))
        if rejected is None:
            # Whatever was imported is a session this ledger can name and read.
            for event in led.history():
                check_id(event.session_id, "imported session_id")
                check_id(event.event_id, "imported event_id")
                led.get_session(event.session_id)


# -- the CLI -------------------------------------------------------------------------------------

CLI_IDS = ["s", "done", "gone", "child", "nope", "", "bad id!", "'; DROP TABLE events;--", "%", "_", "\x00", "\ud800", "x" * 129]
CLI_TEXT = ["", "x", "hello", "'; DROP TABLE events;--", "%", "_", '"', "NEAR(", "a\x00b", "\ud800", "x" * 5000, "🤖", "--json", "-"]
CLI_INT = ["0", "1", "-1", "2", "99999999999999999999999", "1e3", "abc", "", "nan", "²", "٣", " 1", "9223372036854775808"]
CLI_FLOAT = ["0", "1", "-1", "1e11", "1e10", "1e400", "nan", "inf", "-inf", "abc", "", "0.000001", "²"]
CLI_TIME = [
    "2026-01-01T12:00:00Z", "2026-01-01", "garbage", "", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
    "2026-13-45", "²", "\x00", "\ud800", "12", "99999999999999999999999", "2020-01-01T00:00:00.000001Z",
]
CLI_CUT = CLI_TIME + ["0", "3", "-1", "99999999999999999999999", "٣", "²"]
CLI_PATH = ["out.jsonl", "adir", "missing/x.jsonl", "existing.db", "junk.json", "digest_bad.json", "digest_ok.json", "",
            "a\x00b", "\ud800.x", "fresh.db", "x" * 300]
CLI_META = ["k", "k=1", "=1", "k=NaN", "k=1e400", "k=99999999999999999999", "k=[1,", "\ud800=1", "k=\ud800", "is_starred=true", "k="]
CLI_CURSOR = ["!!!!", "", "WyJjcmVhdGVkX2F0Iix0cnVlLFsxXSwicyJd", "=", "\ud800"]

S = st.sampled_from
OUTPUT = [("--json", None), ("--csv", None)]
TARGETS = [("--version", S(CLI_INT)), ("--at", S(CLI_TIME)), ("--position", S(CLI_INT))]
CLI: dict[str, tuple[list[tuple[SearchStrategy[str], bool]], list[tuple[str, SearchStrategy[str] | None]]]] = {
    "init": ([], []),
    "sessions": ([], OUTPUT + [
        ("--user", S(CLI_TEXT)), ("--status", S(CLI_TEXT + ["active", "purged"])), ("--tag", S(CLI_TEXT)),
        ("--any-tag", S(CLI_TEXT)), ("--meta", S(CLI_META)), ("--created-after", S(CLI_TIME)),
        ("--created-before", S(CLI_TIME)), ("--updated-after", S(CLI_TIME)), ("--text", S(CLI_TEXT)),
        ("--parent", S(CLI_IDS)), ("--order-by", S(CLI_TEXT + ["version"])), ("--asc", None), ("--limit", S(CLI_INT)),
        ("--cursor", S(CLI_CURSOR)),
    ]),
    "show": ([(S(CLI_IDS), True)], OUTPUT + TARGETS),
    "messages": ([(S(CLI_IDS), True)], OUTPUT + TARGETS + [("--limit", S(CLI_INT)), ("--offset", S(CLI_INT))]),
    "history": ([(S(CLI_IDS), False)], OUTPUT + [("--after", S(CLI_INT)), ("--follow", None)]),
    "search": ([(S(CLI_TEXT), True)], OUTPUT + [("--session", S(CLI_IDS)), ("--role", S(CLI_TEXT + ["user"])),
                                                ("--limit", S(CLI_INT))]),
    "stats": ([(S(CLI_IDS), False)], OUTPUT + TARGETS),
    "usage": ([], OUTPUT + [("--by", S(CLI_TEXT + ["tool", "day"])), ("--since", S(CLI_TIME)), ("--until", S(CLI_TIME))]),
    "verify": ([], [("--digest", S(CLI_PATH))]),
    "digest": ([], [("--out", S(CLI_PATH))]),
    "export": ([(S(CLI_PATH), True)], [("--session", S(CLI_IDS)), ("--until", S(CLI_CUT)),
                                       ("--format", S(["jsonl", "sessions-dir", "csv", ""]))]),
    "import": ([(S(CLI_PATH), True)], []),
    "backup": ([(S(CLI_PATH), True)], []),
    "rebuild": ([], [("--projection", S(CLI_TEXT + ["sessions", "search"]))]),
    "replay": ([(S(CLI_PATH), True)], [("--until", S(CLI_CUT))]),
    "purge": ([(S(CLI_IDS), True)], [("--reason", S(CLI_TEXT)), ("--by", S(CLI_TEXT))]),
    "gc": ([], [("--idle", S(CLI_FLOAT)), ("--purge-older-than", S(CLI_FLOAT)), ("--keep-snapshots", S(CLI_INT))]),
}
CLI_DB = ["adir", "junk.json", "existing.db", "a\x00b", "", "missing/x.db", "\ud800.db", "fresh.db"]
CLEARED_ENV = ["LEDGER_SNAPSHOT_EVERY", "LEDGER_RETENTION_DAYS", "LEDGER_DURABILITY"]
CLI_ENV = [
    {}, {"LEDGER_SNAPSHOT_EVERY": "abc"}, {"LEDGER_SNAPSHOT_EVERY": "-1"}, {"LEDGER_RETENTION_DAYS": "0"},
    {"LEDGER_RETENTION_DAYS": "1e400"}, {"LEDGER_DURABILITY": "fast"}, {"LEDGER_RETENTION_DAYS": "1"},
]


@st.composite
def cli_argv(draw: st.DrawFn) -> tuple[list[str], dict[str, str]]:
    name = draw(st.sampled_from(sorted(CLI)), label="command")
    positional, options = CLI[name]
    prefix = draw(st.sampled_from([[]] * 8 + [["--db"], ["--bogus"], ["--json"]]))
    if prefix == ["--db"]:
        prefix = ["--db", draw(S(CLI_DB))]
    argv = [*prefix, name]
    for pool, required in positional:
        if required or draw(st.booleans()):
            argv.append(draw(pool))
    chosen = draw(st.lists(st.sampled_from(options), max_size=4)) if options else []
    for flag, pool in chosen:
        argv.append(flag)
        if pool is not None:
            argv.append(draw(pool))
    if name == "replay" and "--until" not in argv and draw(st.booleans()):
        argv += ["--until", draw(S(CLI_CUT))]
    if "--follow" in argv:  # bounded, so the campaign never hangs; the interval is what is under test
        argv += ["--timeout", "0.05", "--interval", draw(S(["0", "-1", "nan", "inf", "0.01"]))]
    if draw(st.integers(0, 9)) == 0:
        argv += [draw(S(["--bogus", "--db", "--limit", "extra-argument"]))]
    env = draw(st.sampled_from(CLI_ENV), label="env")
    return argv, env


def raw_dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(path)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables if not t.startswith("sqlite_")}


def check_cli(base: Path, argv: list[str], env: dict[str, str]) -> None:
    """Run ``ledger ARGV`` on a copy of the CLI template: exit 0/1/2, no traceback, one ``error:`` line, nothing written."""
    runner = CliRunner()
    with tempfile.TemporaryDirectory(dir=base) as cwd, chdir(cwd):
        db = Path(cwd) / "the.ledger"
        shutil.copyfile(base / "cli-template.db", db)
        os.mkdir("adir")
        Path("existing.db").write_text("not empty")
        Path("junk.json").write_bytes(b"\xff\xfe not json")
        Path("digest_bad.json").write_text('{"position": -1, "hash": "zz"}')
        Path("digest_ok.json").write_text(json.dumps({"position": 1, "hash": HEX}))
        before = raw_dump(db)
        unset: dict[str, str | None] = {name: None for name in CLEARED_ENV}
        result = runner.invoke(main, argv, env={**unset, "LEDGER_PATH": str(db), **env})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a raw exception escaped the CLI: reported at its own origin
        assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr)
        assert "Traceback" not in result.output + result.stderr
        if result.exit_code != 0:
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("error:"), f"stderr is not one error line: {result.stderr!r}"
            after = raw_dump(db)
            assert after == before, f"a failed command changed {changed_tables(before, after)}: {result.stderr!r}"


@_settings(300)
@given(case=cli_argv())
def test_the_cli_answers_bad_arguments_with_one_error_line_and_writes_nothing(base: Path, case: Any) -> None:
    check_cli(base, *case)


# -- the minimal failing inputs the campaign found: one test each, so every defect stays in view ------


class Crafted:
    """A marker for an export made by ``craft(export_lines, recipe)`` inside the test."""

    def __init__(self, recipe: tuple[Any, ...]) -> None:
        self.recipe = recipe

    def __repr__(self) -> str:
        return f"Crafted({self.recipe!r})"


@dataclass
class Case:
    id: str
    method: str
    kwargs: dict[str, Any]
    fields: tuple[str, ...]
    setup: Callable[[Ledger], None] | None = None


MINIMAL = [
    Case("cleanup-overflow", "cleanup", {"max_idle": 1e11}, ("max_idle",)),
    Case("cleanup-timedelta-max", "cleanup", {"max_idle": timedelta.max}, ("max_idle",)),
    Case("purge_completed-huge-days", "purge_completed", {"older_than": 1e9}, ("older_than",)),
    Case("purge_completed-before-year-1", "purge_completed", {"older_than": 1e6}, ("older_than",)),
    Case("purge_completed-by-not-text", "purge_completed", {"older_than": 0.01, "by": True}, ("by",)),
    Case("purge_completed-by-surrogate", "purge_completed", {"older_than": 0.01, "by": "\ud800"}, ("by",)),
    Case("purge_completed-by-object", "purge_completed", {"older_than": 0.01, "by": Opaque()}, ("by",)),
    Case("list_sessions-user_id-surrogate", "list_sessions", {"user_id": "\ud800"}, ("user_id",)),
    Case("list_sessions-parent_id-surrogate", "list_sessions", {"parent_id": "\ud800"}, ("parent_id",)),
    Case("list_sessions-tags-surrogate", "list_sessions", {"tags": ["\ud800"]}, ("tags",)),
    Case("list_sessions-any_tags-surrogate", "list_sessions", {"any_tags": ["\ud800"]}, ("any_tags",)),
    Case("list_sessions-metadata-key-surrogate", "list_sessions", {"metadata": {"\ud800": 1}}, ("metadata",)),
    Case("list_sessions-cursor-huge-int", "list_sessions",
         {"cursor": _cursor(b'["created_at",true,123456789012345678901234567890,"s"]')}, ("cursor",)),
    Case("sessions_by_tag-surrogate", "sessions_by_tag", {"tag": "\ud800"}, ("tag",)),
    Case("find_sessions_by_metadata-key-surrogate", "find_sessions_by_metadata", {"filters": {"\ud800": ANY}}, ("metadata",)),
    Case("usage-by-unhashable", "usage", {"by": []}, ("by",)),
    Case("search_messages-bad-query-levels-the-index", "search_messages", {"query": None}, ("query",), _add_message),
    Case("search_messages-bad-limit-levels-the-index", "search_messages", {"query": "hello", "limit": 0}, ("limit",),
         _add_message),
    Case("list_sessions-bad-text-levels-the-index", "list_sessions", {"text": ""}, ("text",), _add_message),
    Case("list_sessions-bad-limit-levels-the-index", "list_sessions", {"text": "hello", "limit": 0}, ("limit",),
         _add_message),
    Case("register-version-past-int64", "register", {"projector": _projector("mine", version=2**63)()}, ("projector",)),
    Case("replay-into-existing", "replay", {"into": "adir"}, ("into",)),
    Case("backup-out-existing", "backup", {"out": "adir"}, ("out",)),
    Case("backup-out-surrogate", "backup", {"out": "\ud800"}, ("out",)),
    Case("export-out-none", "export", {"out": None}, ("out",)),
    Case("export-out-binary-stream", "export", {"out": Stream("bytes")}, ("out",)),
    Case("export-out-closed-stream", "export", {"out": Stream("closed")}, ("out",)),
    Case("export-out-nul", "export", {"out": "a\x00b"}, ("out",)),
    Case("export-out-surrogate", "export", {"out": "\ud800"}, ("out",)),
    Case("export-out-a-directory", "export", {"out": "adir"}, ("out",)),
    Case("export-sessions-dir-out-nul", "export", {"format": "sessions-dir", "out": "a\x00b"}, ("out",)),
    Case("export-sessions-dir-out-none", "export", {"format": "sessions-dir", "out": None}, ("out",)),
    Case("export-until-no-utc", "export", {"out": "fresh.out", "until": datetime(1, 1, 1, tzinfo=PLUS14)}, ("until",)),
    Case("export-until-no-offset", "export", {"out": "fresh.out", "until": datetime(2026, 1, 1, tzinfo=NoOffset())},
         ("until",)),
    Case("import-source-none", "import_events", {"source": None}, ("source",)),
    Case("import-source-nul", "import_events", {"source": "a\x00b"}, ("source",)),
    Case("import-source-surrogate", "import_events", {"source": "\ud800"}, ("source",)),
    Case("import-source-missing", "import_events", {"source": "missing/x.out"}, ("source",)),
    Case("import-source-not-an-export", "import_events", {"source": "existing.db"}, ("source",)),
    Case("import-source-binary-stream", "import_events", {"source": Stream("bytes-export")}, ("source",)),
    Case("import-trailer-not-json", "import_events", {"source": Crafted(("trailer", 'RAW:{"format"x', None))}, ("source",)),
    Case("import-header-head-not-an-object", "import_events",
         {"source": Crafted(("header", {"format": "session-ledger/events", "version": 1, "head": True, "sessions": None}))},
         ("source",)),
    Case("import-line-with-surrogate", "import_events", {"source": Crafted(("line", 0, "\ud800"))}, ("source",)),
    Case("import-recorded_at-not-a-time", "import_events",
         {"source": Crafted(("field", 3, ("recorded_at", "zzzz"), True))}, ("source",)),
    Case("import-schema-past-int64", "import_events",
         {"source": Crafted(("field", 1, ("schema", 2**63), True))}, ("source",)),
    Case("import-payload-does-not-decode", "import_events",
         {"source": Crafted(("field", 1, ("data", '{"role": 5, "content": "x"}'), True))}, ("source",)),
    Case("import-event_id-too-long", "import_events",
         {"source": Crafted(("field", 1, ("event_id", "x" * 300), True))}, ("source",)),
]


@pytest.mark.parametrize("case", MINIMAL, ids=lambda c: c.id)
def test_minimal_failing_input(base: Path, where: Where, export_lines: list[str], case: Case) -> None:
    with fresh(base, where) as led:
        if case.setup is not None:
            case.setup(led)
        kwargs = {
            k: io.StringIO(craft(export_lines, v.recipe)) if isinstance(v, Crafted) else _resolve(v)
            for k, v in case.kwargs.items()
        }
        rejected = attempt(led, lambda: getattr(led, case.method)(**kwargs), case.fields)
        if rejected is None and case.method == "import_events":
            for event in led.history():  # what an import accepts must be addressable like anything else
                check_id(event.session_id, "imported session_id")
                check_id(event.event_id, "imported event_id")


CLI_MINIMAL = [
    ["--bogus", "init"],
    ["export", "out.jsonl", "--until", "²"],
    ["replay", "copy.db", "--until", "²"],
    ["gc", "--idle", "1e11"],
    ["gc", "--purge-older-than", "1e10"],
    ["gc", "--idle", "1", "--keep-snapshots", "-1"],
    ["digest", "--out", "a\x00b"],
    ["backup", "a\x00b"],
    ["backup", "\ud800.db"],
    ["export", "a\x00b"],
    ["import", "a\x00b"],
    ["sessions", "--user", "\ud800"],
    ["history", "--follow", "--timeout", "0.05", "--interval", "-1"],
    ["history", "--follow", "--timeout", "0.05", "--interval", "nan"],
    ["history", "--follow", "--timeout", "0.05", "--interval", "inf"],
]


@pytest.mark.parametrize("argv", CLI_MINIMAL, ids=lambda a: " ".join(a).encode("unicode_escape").decode())
def test_minimal_failing_cli_invocation(base: Path, argv: list[str]) -> None:
    check_cli(base, argv, {})
