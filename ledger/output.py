"""Output for people and machines: plain tables, JSON, CSV and progress bars (the command line's and the demo's).

Presentation only: nothing here reads or writes a ledger.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
import msgspec


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain text table, columns padded to their widest cell."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plain(value: Any) -> Any:
    """A value as JSON-ready builtins (structs and datetimes included)."""
    return msgspec.to_builtins(value) if not isinstance(value, (str, int, float, type(None))) else value


def emit(rows: list[dict[str, Any]], fmt: str | None, *, columns: Sequence[str] | None = None, shorten: int = 60) -> None:
    """Print rows as a table (``fmt`` None), JSON or CSV."""
    columns = list(columns or (rows[0].keys() if rows else []))
    if fmt == "json":
        click.echo(json.dumps([{k: plain(r.get(k)) for k in columns} for r in rows], indent=2, ensure_ascii=False, default=str))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow([cell(r.get(k), None) for k in columns])
        click.echo(out.getvalue(), nl=False)
    elif rows:
        click.echo(table([[cell(r.get(k), shorten) for k in columns] for r in rows], columns))
    else:
        click.echo("(nothing)")


def cell(value: Any, shorten: int | None) -> str:
    """One table or CSV cell: times to the second, floats short, containers as JSON, newlines flattened."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        text = value.isoformat(timespec="seconds")
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, tuple) and all(isinstance(v, (str, int, float)) for v in value):
        text = ",".join(map(str, value))
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(plain(value), ensure_ascii=False, default=str)
    else:
        text = str(value)
    text = text.replace("\n", " ")
    return text if shorten is None or len(text) <= shorten else text[: shorten - 1] + "…"


def emit_one(record: dict[str, Any], fmt: str | None) -> None:
    """Print one record: ``key  value`` lines, or JSON / CSV."""
    if fmt == "json":
        click.echo(json.dumps(plain(record), indent=2, ensure_ascii=False, default=str))
    elif fmt == "csv":
        emit([record], "csv")
    else:
        click.echo(table([[k, cell(v, None)] for k, v in record.items()], ["field", "value"]))


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
