"""The ``ledger`` command: thin wrappers over ``Ledger`` methods, one per command.

A ``LedgerError`` becomes one clean line on stderr (exit 2), never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from .errors import LedgerError
from .ledger import Ledger


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain text table, columns padded to their widest cell."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@contextmanager
def _opened(path: str) -> Iterator[Ledger]:
    try:
        with Ledger(path) as ledger:
            yield ledger
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc


class _UsageError(click.ClickException):
    exit_code = 2


@click.group()
@click.option(
    "--db",
    "db",
    default=lambda: os.environ.get("LEDGER_PATH", "ledger.db"),
    show_default="$LEDGER_PATH or ./ledger.db",
    help="The ledger file.",
)
@click.pass_context
def main(ctx: click.Context, db: str) -> None:
    """session-ledger: an event-sourced ledger of AI-agent sessions."""
    ctx.obj = {"db": db}


@main.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create an empty ledger file (or check an existing one)."""
    with _opened(ctx.obj["db"]) as ledger:
        click.echo(f"ledger {ledger.path} ready at position {ledger.last_position}")


@main.command()
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Walk the hash chain; exit 1 with the first bad position when it does not hold."""
    with _opened(ctx.obj["db"]) as ledger:
        report = ledger.verify()
    if report.ok:
        click.echo(f"ok: {report.checked} events verified; head {report.head.position} {report.head.hash}")
    else:
        click.echo(f"FAILED at position {report.first_bad_position}: {report.reason}", err=True)
        ctx.exit(1)


@main.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Record a multi-agent scenario into the ledger and show what it holds."""
    from .demo import run_demo

    try:
        run_demo(ctx.obj["db"], click.echo)
    except LedgerError as exc:
        raise _UsageError(str(exc)) from exc
