"""The command line's options, and how their text becomes the library's arguments.

Shared by the ``ledger`` subcommands (``ledger.cli``): where the ledger is
(``--db``), the output format (``--json``, ``--nl``, ``--csv``; two are a
usage error), a past target (``--at-version``, ``--at``, ``--position``), the
``SessionFilter`` fields, and the parsing of times, cuts and ``--meta``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, get_args, get_origin

import click

from . import ANY, InvalidInput, SessionFilter
from .times import parse_instant as parse_time

STDOUT = "-"  # as an output path: standard output


def finite(value: float | None, param: click.Parameter) -> float | None:
    """A click callback refusing NaN and infinity."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"must be a finite number, not {value}", param=param)
    return value


def when(text: str | None, field: str) -> datetime | None:
    """An optional ``--at``/``--since``/``--until`` time."""
    return None if text is None else parse_time(text, field)


def parse_cut(text: str | None, field: str = "until") -> tuple[int | None, datetime | None]:
    """``--until``: a log position (a number) or a time."""
    if text is None:
        return None, None
    if text.strip().isascii() and text.strip().isdigit():
        return int(text), None
    return None, parse_time(text, field)


def parse_meta(items: Sequence[str]) -> dict[str, Any] | None:
    """``--meta KEY=VALUE`` (VALUE as JSON when it parses, else text) and ``--meta KEY`` (present)."""
    if not items:
        return None
    out: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not key:
            raise InvalidInput(f"--meta wants KEY=VALUE or KEY; got {item!r}", field="metadata")
        if not eq:
            out[key] = ANY
            continue
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
        except RecursionError:
            raise InvalidInput(f"--meta {key}: the JSON value is nested too deeply", field="metadata") from None
    return out


def db_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--db`` after the subcommand too (``ledger sessions --db x.db``)."""
    return click.option("--db", "db", default=None, metavar="PATH", help="The ledger file (also accepted before the command).")(command)


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` / ``--nl`` / ``--csv`` instead of the table (one of them: two are a usage error)."""

    @functools.wraps(command)
    def chosen(*args: Any, as_json: bool, as_nl: bool, as_csv: bool, **kwargs: Any) -> Any:
        given = [flag for flag, on in (("--json", as_json), ("--nl", as_nl), ("--csv", as_csv)) if on]
        if len(given) > 1:
            raise click.UsageError(f"{' and '.join(given)} cannot go together: choose one output format")
        fmt = {"--json": "json", "--nl": "nl", "--csv": "csv"}[given[0]] if given else None
        return command(*args, fmt=fmt, **kwargs)

    chosen = click.option("--csv", "as_csv", is_flag=True, help="Print CSV (a header, then one row a line).")(chosen)
    chosen = click.option("--nl", "as_nl", is_flag=True, help="Print newline-delimited JSON (one object a line).")(chosen)
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(chosen)


def takes(kind: Any, wanted: type) -> bool:
    """Whether a field's type is ``wanted`` or a union holding it."""
    return any(get_origin(arg) is wanted or arg is wanted for arg in (get_args(kind) or (kind,)))


def filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ``SessionFilter`` fields as options: lists repeat, times are ISO 8601, ``--asc`` turns the order."""
    for name, kind, default, text, flag, _schema in reversed(SessionFilter.fields()):
        if name == "descending":
            option = click.option(flag, name, is_flag=True, help="Oldest (smallest) first.")
        elif name == "metadata":
            option = click.option(flag, name, multiple=True, metavar="KEY[=VALUE]",
                                  help="Metadata equal to VALUE (JSON or text), or just present (repeatable).")
        elif takes(kind, Iterable):
            option = click.option(flag, name, multiple=True, help=f"{text} (repeatable)")
        elif takes(kind, datetime):
            option = click.option(flag, name, metavar="TIME", help=f"{text} (ISO 8601; UTC if no zone)")
        elif kind is int:
            option = click.option(flag, name, type=int, default=default, show_default=True, help=text)
        else:
            option = click.option(flag, name, default=default, show_default=default is not None, help=text)
        command = option(command)
    return command


def filter_from_options(values: dict[str, Any]) -> SessionFilter:
    """The ``SessionFilter`` the ``filter_options`` values describe."""
    given: dict[str, Any] = {}
    for name, kind, *_ in SessionFilter.fields():
        value = values[name]
        if name == "descending":
            value = not value
        elif name == "metadata":
            value = parse_meta(value)
        elif takes(kind, Iterable):
            value = list(value) or None
        elif takes(kind, datetime) and value is not None:
            value = parse_time(value, name)
        given[name] = value
    return SessionFilter(**given)


def target_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--at-version`` / ``--at`` / ``--position``: a session as it stood then."""
    command = click.option("--position", type=int, help="As it stood right after this log position.")(command)
    command = click.option("--at", "at", help="As it stood at this time (ISO 8601; UTC if no zone).")(command)
    # ``--at-version``: ``--version`` is the program's version on ``ledger`` itself (the old spelling still works).
    return click.option("--at-version", "--version", "version", type=int,
                        help="As it stood right after this version of the session.")(command)
