"""Output for people and machines: tables that fit the terminal, transcripts, JSON, newline-delimited JSON, CSV
and progress bars (the command line's and the demo's).

Every listing streams: rows are written as they come, so a listing of millions of
events starts at once and holds one screenful in memory (a table sizes its columns
on its first rows). Times have one format per kind of output: tables show
``2026-11-30 14:03:07`` (UTC, to the second); JSON, newline-delimited JSON and CSV
carry ISO 8601 in UTC with ``Z``. ``save_text`` writes a small output file (a
digest, a metadata file) atomically. Presentation only: nothing here reads or
writes a ledger.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import click
import msgspec

from .errors import FileAccessError, InvalidInput
from .scratch import written
from .validation import path_arg

#: Output formats: a table for people (None), or JSON, newline-delimited JSON or CSV for programs.
FORMATS = ("json", "nl", "csv")
PIPED_WIDTH = 100  # the width of a table when stdout is not a terminal
_SAMPLE = 200  # rows a table looks at to size its columns before it prints
_GAP = "  "

#: Short column headers for tables (JSON and CSV keep the field names).
HEADERS = {
    "session_id": "session",
    "user_id": "user",
    "created_at": "created",
    "updated_at": "updated",
    "recorded_at": "recorded",
    "message_count": "msgs",
    "invocation_count": "calls",
    "invocations": "calls",
    "messages": "msgs",
    "tokens_in": "tok in",
    "tokens_out": "tok out",
    "estimated_cost": "cost $",
    "cost": "cost $",
    "position": "pos",
    "version": "ver",
    "total_duration_ms": "total ms",
    "p95_duration_ms": "p95 ms",
    "duration_ms": "ms",
    "tool_name": "tool",
}


#: Columns a table never cuts (ids, times, states, kinds): free text gives way instead.
KEEP = frozenset({
    "session_id", "session", "status", "type", "role", "recorded_at", "created_at", "updated_at", "recorded",
    "created", "updated", "day", "field", "parent_id", "event_id", "user_id", "user", "model", "tool", "tool_name",
})


#: Widths a column is given even when the rows it was sized on are narrower (a follower sizes on one row).
TYPICAL = {"type": len("invocation_linked"), "position": 7, "version": 5}


def width() -> int:
    """The width tables fit: ``$COLUMNS``, else the terminal's, else 100 when stdout is piped."""
    given = os.environ.get("COLUMNS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    if sys.stdout.isatty():
        return shutil.get_terminal_size((PIPED_WIDTH, 24)).columns
    return PIPED_WIDTH


def plain(value: Any) -> Any:
    """A value as JSON-ready builtins: structs, containers and times (ISO 8601 in UTC with ``Z``)."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (str, int, float, type(None))):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return plain(msgspec.to_builtins(value, builtin_types=(datetime,)))


def iso(moment: datetime) -> str:
    """A time for programs: ISO 8601 in UTC, ending in ``Z``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat() + "Z"


def shown(moment: datetime) -> str:
    """A time for people: ``2026-11-30 14:03:07``, in UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def cell(value: Any, none: str = "") -> str:
    """One table cell: times to the second, floats short, containers as JSON, newlines flattened."""
    if value is None:
        return none
    if isinstance(value, datetime):
        return shown(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple) and all(isinstance(v, (str, int, float)) for v in value):
        return ",".join(map(str, value))
    if isinstance(value, (dict, list, tuple)) or not isinstance(value, (str, int)):
        value = json.dumps(plain(value), ensure_ascii=False)
    return str(value).replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")


def csv_cell(value: Any) -> str:
    """One CSV cell: text as it is (newlines kept, quoted by the CSV writer), times ISO 8601, containers JSON."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (str, int, float)):
        return str(value)
    return json.dumps(plain(value), ensure_ascii=False)


def cut(text: str, room: int) -> str:
    """``text`` in at most ``room`` characters, ending in "…" when cut."""
    return text if len(text) <= room else text[: max(room - 1, 0)] + "…"


def _numeric(values: Iterable[Any]) -> bool:
    seen = [v for v in values if v is not None]
    return bool(seen) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen)


def fit(natural: Sequence[int], floors: Sequence[int], room: int) -> list[int]:
    """Column widths within ``room`` (gaps included): the widest columns give way first, none below its
    floor; the last column takes what is left over, up to its natural width."""
    gaps = len(_GAP) * (len(natural) - 1)
    if sum(natural) + gaps <= room:
        return list(natural)
    low, high = 0, max(natural)
    while low < high:  # the largest cap under which the columns fit
        cap = (low + high + 1) // 2
        if sum(max(min(n, cap), f) for n, f in zip(natural, floors)) + gaps <= room:
            low = cap
        else:
            high = cap - 1
    widths = [max(min(n, low), f) for n, f in zip(natural, floors)]
    spare = room - gaps - sum(widths)
    for i in sorted(range(len(widths)), key=lambda i: natural[i] - widths[i], reverse=True):
        grow = min(spare, natural[i] - widths[i])
        if grow > 0:
            widths[i] += grow
            spare -= grow
    return widths


def table_lines(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, none: Mapping[str, str] | None = None,
                room: int | None = None, sample: int | None = None) -> Iterator[str]:
    """A table's lines, streamed: columns sized on the first ``sample`` rows (200 by default) and fitted to
    ``room`` (the terminal's width); later rows are cut to those widths."""
    stream = iter(rows)
    first = list(itertools.islice(stream, _SAMPLE if sample is None else sample))
    none = none or {}
    headers = [HEADERS.get(c, c) for c in columns]
    right = [_numeric(r.get(c) for r in first) for c in columns]
    cells = [[cell(r.get(c), none.get(c, "")) for c in columns] for r in first]
    typical = TYPICAL if sample is not None else {}  # a follower sizes on its first row: allow for the usual
    natural = [max([len(h), typical.get(c, 0), *(len(row[i]) for row in cells)]) for i, (c, h) in
               enumerate(zip(columns, headers))]
    # Ids, times, kinds and numbers are firm: never cut, even in rows after the sample (a longer one pushes
    # the line out rather than lose its end); free text gives way.
    firm = [r or c in KEEP or h in KEEP for c, h, r in zip(columns, headers, right)]
    floors = [n if f else min(n, max(len(h), 6)) for n, h, f in zip(natural, headers, firm)]
    widths = fit(natural, floors, width() if room is None else room)

    def line(cells: Sequence[str]) -> str:
        parts = [
            (c if f else cut(c, w)).rjust(w) if r else (c if f else cut(c, w)).ljust(w)
            for c, w, r, f in zip(cells, widths, right, firm)
        ]
        return _GAP.join(parts).rstrip()

    yield line(headers)
    yield _GAP.join("-" * w for w in widths)
    for row in cells:
        yield line(row)
    for r in stream:
        yield line([cell(r.get(c), none.get(c, "")) for c in columns])


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """A table of rows (cells in header order) fitted to the terminal's width, as one string."""
    return "\n".join(table_lines((dict(zip(headers, r)) for r in rows), headers))


def wrapped(text: str, indent: int) -> str:
    """``text`` wrapped to the terminal's width, every line after the first indented by ``indent`` spaces
    (leading blank lines kept)."""
    body = text.lstrip("\n")
    return "\n" * (len(text) - len(body)) + textwrap.fill(
        body, max(width(), indent + 20), subsequent_indent=" " * indent, break_on_hyphens=False
    )


def emit(rows: Iterable[Mapping[str, Any]], fmt: str | None, *, columns: Sequence[str],
         none: Mapping[str, str] | None = None, out: TextIO | None = None, sample: int | None = None) -> int:
    """Print rows as they come: a table (``fmt`` None), a JSON array, newline-delimited JSON or CSV (with its
    header even when there are no rows), flushing each, so a follower sees a row as soon as it is read.
    ``none`` gives a table's text for a missing value, by column; ``sample`` how many rows size a table's
    columns. Returns how many rows were printed."""
    stream = out or sys.stdout
    count = 0
    if fmt == "json":
        stream.write("[")
        for count, r in enumerate(rows, 1):
            text = json.dumps({k: plain(r.get(k)) for k in columns}, indent=2, ensure_ascii=False)
            stream.write(("\n  " if count == 1 else ",\n  ") + text.replace("\n", "\n  "))
            stream.flush()
        stream.write("\n]\n" if count else "]\n")
    elif fmt == "nl":
        for count, r in enumerate(rows, 1):
            stream.write(json.dumps({k: plain(r.get(k)) for k in columns}, ensure_ascii=False) + "\n")
            stream.flush()
    elif fmt == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        for count, r in enumerate(rows, 1):
            writer.writerow([csv_cell(r.get(k)) for k in columns])
            stream.flush()
    else:
        counted = _Counted(rows)
        for text in table_lines(counted, columns, none=none, sample=sample):
            if not counted.count:
                break  # no rows: no header either
            stream.write(text + "\n")
            stream.flush()
        count = counted.count
        if not count:
            stream.write("(nothing)\n")
    stream.flush()
    return count


class _Counted:
    """The rows, counted as they pass."""

    def __init__(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self._rows = iter(rows)
        self.count = 0

    def __iter__(self) -> _Counted:
        return self

    def __next__(self) -> Mapping[str, Any]:
        row = next(self._rows)
        self.count += 1
        return row


def emit_one(record: Mapping[str, Any], fmt: str | None) -> None:
    """Print one record: ``field  value`` lines fitted to the terminal, or JSON, one JSON line, or CSV."""
    if fmt == "json":
        click.echo(json.dumps(plain(record), indent=2, ensure_ascii=False))
    elif fmt in ("nl", "csv"):
        emit([record], fmt, columns=list(record))
    else:
        rows = [{"field": k, "value": v} for k, v in record.items()]
        for text in table_lines(rows, ["field", "value"]):
            click.echo(text)


def transcript(messages: Iterable[Mapping[str, Any]], out: TextIO | None = None) -> int:
    """Print a conversation for reading: a heading per message (version, role, tool, model, time) and its
    text wrapped to the terminal, paragraphs kept. Returns how many messages were printed."""
    stream = out or sys.stdout
    room = max(width() - 4, 20)
    count = 0
    for count, m in enumerate(messages, 1):
        about = [f"#{m['version']}", str(m["role"]) + (f" {m['tool_name']}" if m.get("tool_name") else "")]
        about += [f"model {m['model']}"] if m.get("model") else []
        about += [shown(m["recorded_at"])] if isinstance(m.get("recorded_at"), datetime) else []
        stream.write(("\n" if count > 1 else "") + " · ".join(about) + "\n")
        for paragraph in str(m["content"]).splitlines() or [""]:
            lines = textwrap.wrap(paragraph, room, replace_whitespace=False, drop_whitespace=True,
                                  break_on_hyphens=False) or [""]
            stream.write("".join(f"    {text}".rstrip() + "\n" for text in lines))
    if not count:
        stream.write("(no messages)\n")
    stream.flush()
    return count


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress callback drawing a bar on a terminal, or None when stderr is piped."""
    if not sys.stderr.isatty():
        yield None
        return
    state: dict[str, Any] = {"bar": None, "done": 0}

    def update(done: int, total: int) -> None:
        if state["bar"] is None:
            state["bar"] = click.progressbar(length=max(total, 1), label=label, file=sys.stderr).__enter__()
        state["bar"].update(done - state["done"])
        state["done"] = done

    try:
        yield update
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)


def read_text(path: str, field: str, limit: int) -> str:
    """A text file read whole, at most ``limit`` bytes (so ``/dev/zero`` ends), or ``FileAccessError`` /
    ``InvalidInput`` naming ``field``: a digest, a key, a checkpoint, a proof bundle."""
    try:
        with open(path_arg(path, field), "rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise FileAccessError(f"cannot read {field} file {path!r}: {exc.strerror or exc}", field=field) from exc
    if len(data) > limit:
        raise InvalidInput(f"{field} file {path!r} is longer than {limit} bytes", field=field, limit=limit)
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{field} file {path!r} is not UTF-8 text", field=field) from exc



def save_text(out: str, text: str, what: str) -> None:
    """Write ``text`` (and a newline) to the file ``out`` under a temporary name renamed at the end;
    ``FileAccessError`` naming ``what`` when it cannot be written."""
    try:
        with written(Path(path_arg(out, "out")), "out") as scratch, open(scratch, "w", encoding="utf-8") as stream:
            stream.write(text + "\n")
    except OSError as exc:
        raise FileAccessError(f"out: cannot write {what} to {out!r}: {exc.strerror or exc}", field="out") from exc
