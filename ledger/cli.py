"""The ``ledger`` command: one subcommand per library method, for auditors and operators.

``--db PATH`` goes before or after the subcommand (default ``$LEDGER_PATH``,
else ``./ledger.db``). Listings print a table for people, ``--json`` or
``--csv`` for machines. A ``LedgerError`` is one line on stderr and exit 2
(1 for a damaged or unwritable file), never a traceback; ``verify`` exits 1
when the chain does not hold. Long work shows a progress bar on a terminal
and stays quiet when piped.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, get_args, get_origin

import click
import msgspec

from . import ANY, Digest, IntegrityError, InvalidInput, Ledger, LedgerError, SessionFilter, StorageError
from .output import cell, emit, emit_one, plain, progress_bar
from .settings import Settings
from .times import parse_instant as parse_time
from .validation import duration_arg, path_arg

EXIT_INPUT = 2  # usage and input errors
EXIT_FAILED = 1  # the chain does not hold, or the file could not be read or written


# -- arguments ----------------------------------------------------------------------------


def _finite(value: float | None, param: click.Parameter) -> float | None:
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


SCRUB_PENDING = (
    "scrub pending: a purge's text may still be in the -wal file while another connection holds an older"
    " snapshot; it is emptied at the next write, close, open, gc or verify after that reader lets go"
)
_DIGEST_BYTES = 4096  # a saved digest is about 100 bytes of JSON


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


class _Group(click.Group):
    """Turns a ``LedgerError`` or a usage error into one line on stderr and an exit code, never a traceback."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # ``ledger`` alone: the help, as help, not as an error
            click.echo(exc.ctx.get_help() if exc.ctx is not None else self.get_help(click.Context(self)))
            raise click.exceptions.Exit(0) from exc
        except click.UsageError as exc:  # the group's own options, before any subcommand runs
            click.echo(f"error: {exc.format_message()} (see '{info_name or 'ledger'} --help')", err=True)
            raise click.exceptions.Exit(EXIT_INPUT) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_FAILED if isinstance(exc, (IntegrityError, StorageError)) else EXIT_INPUT)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            ctx.exit(EXIT_INPUT)


def db_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--db`` after the subcommand too (``ledger sessions --db x.db``)."""
    return click.option("--db", "db", default=None, metavar="PATH", help="The ledger file (also accepted before the command).")(command)


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` / ``--csv`` instead of the table."""
    command = click.option("--csv", "fmt", flag_value="csv", help="Print CSV.")(command)
    return click.option("--json", "fmt", flag_value="json", help="Print JSON.")(command)


def settings(ctx: click.Context, db: str | None) -> Settings:
    """The settings for this run: the subcommand's ``--db``, else the group's, else the environment."""
    return Settings.load(path=db or ctx.obj.get("db"))


@contextmanager
def opened(ctx: click.Context, db: str | None) -> Iterator[Ledger]:
    """The ledger named by the settings, open for the command."""
    s = settings(ctx, db)
    with Ledger(s.path, durability=s.durability, snapshot_every=s.snapshot_every) as ledger:
        yield ledger


# -- the commands ---------------------------------------------------------------------------


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db", default=None, metavar="PATH", help="The ledger file [default: $LEDGER_PATH or ./ledger.db].")
@click.version_option(package_name="session-ledger", prog_name="ledger")
@click.pass_context
def main(ctx: click.Context, db: str | None) -> None:
    """session-ledger: an event-sourced, hash-chained ledger of AI-agent sessions."""
    ctx.obj = {"db": db}


@main.command()
@db_option
@click.pass_context
def init(ctx: click.Context, db: str | None) -> None:
    """Create an empty ledger file, or check an existing one."""
    with opened(ctx, db) as ledger:
        click.echo(f"ledger {ledger.path} ready: {ledger.last_position} events, durability {ledger.durability}")


@main.command()
@db_option
@click.pass_context
def demo(ctx: click.Context, db: str | None) -> None:
    """Record a multi-agent scenario and show queries, time travel and verify."""
    from .demo import run_demo

    run_demo(settings(ctx, db).path, click.echo)


def _takes(kind: Any, wanted: type) -> bool:
    return any(get_origin(arg) is wanted or arg is wanted for arg in (get_args(kind) or (kind,)))


def filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ``SessionFilter`` fields as options: lists repeat, times are ISO 8601, ``--asc`` turns the order."""
    for name, kind, default, text, flag, _schema in reversed(SessionFilter.fields()):
        if name == "descending":
            option = click.option(flag, name, is_flag=True, help="Oldest (smallest) first.")
        elif name == "metadata":
            option = click.option(flag, name, multiple=True, metavar="KEY[=VALUE]",
                                  help="Metadata equal to VALUE (JSON or text), or just present (repeatable).")
        elif _takes(kind, Iterable):
            option = click.option(flag, name, multiple=True, help=f"{text} (repeatable)")
        elif _takes(kind, datetime):
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
        elif _takes(kind, Iterable):
            value = list(value) or None
        elif _takes(kind, datetime) and value is not None:
            value = parse_time(value, name)
        given[name] = value
    return SessionFilter(**given)


@main.command("sessions")
@db_option
@output_options
@filter_options
@click.pass_context
def sessions_command(ctx: click.Context, /, db: str | None, fmt: str | None, **options: Any) -> None:
    """List sessions matching every filter given (Ledger.list_sessions)."""
    criteria = filter_from_options(options)
    with opened(ctx, db) as ledger:
        page = ledger.list_sessions(**msgspec.structs.asdict(criteria))
    rows = [msgspec.to_builtins(s) | {"created_at": s.created_at, "updated_at": s.updated_at} for s in page.items]
    columns = ["session_id", "status", "user_id", "created_at", "updated_at", "version", "message_count",
               "invocation_count", "tokens_in", "tokens_out", "estimated_cost", "tags"]
    emit(rows, fmt, columns=None if fmt == "json" else columns)
    if page.cursor:
        click.echo(f"more: --cursor {page.cursor}", err=True)


def _target_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--position", type=int, help="As it stood right after this log position.")(command)
    command = click.option("--at", "at", help="As it stood at this time (ISO 8601; UTC if no zone).")(command)
    # ``--at-version``: ``--version`` is the program's version on ``ledger`` itself (the old spelling still works).
    return click.option("--at-version", "--version", "version", type=int,
                        help="As it stood right after this version of the session.")(command)


@main.command()
@db_option
@output_options
@_target_options
@click.argument("session")
@click.pass_context
def show(ctx: click.Context, db: str | None, fmt: str | None, session: str, version: int | None, at: str | None,
         position: int | None) -> None:
    """Show a session's state, now or as of --at-version, --at or --position (Ledger.get_session)."""
    with opened(ctx, db) as ledger:
        state = ledger.get_session(session, version=version, position=position, at=when(at, "at"))
    record = msgspec.to_builtins(state)
    for internal in ("lineage", "run_start"):
        record.pop(internal)
    emit_one(record, fmt)


@main.command()
@db_option
@output_options
@_target_options
@click.option("--limit", type=int, help="At most this many messages.")
@click.option("--offset", type=int, default=0, help="Skip this many first.")
@click.argument("session")
@click.pass_context
def messages(ctx: click.Context, db: str | None, fmt: str | None, session: str, version: int | None, at: str | None,
             position: int | None, limit: int | None, offset: int) -> None:
    """Print a session's conversation, now or as of a target (Ledger.messages)."""
    with opened(ctx, db) as ledger:
        found = ledger.messages(session, version=version, position=position, at=when(at, "at"),
                                limit=limit, offset=offset)
    rows = [msgspec.to_builtins(m) | {"recorded_at": m.recorded_at} for m in found]
    emit(rows, fmt, columns=None if fmt == "json" else ["version", "recorded_at", "role", "tool_name", "content"], shorten=100)


def _event_row(e: Any) -> dict[str, Any]:
    return {
        "position": e.position, "recorded_at": e.recorded_at, "session_id": e.session_id, "version": e.version,
        "type": e.type, "event_id": e.event_id, "hash": e.hash, "payload": msgspec.to_builtins(e.payload),
    }


@main.command()
@db_option
@output_options
@click.argument("session", required=False)
@click.option("--after", type=int, default=0, help="Only events after this position.")
@click.option("--follow", is_flag=True, help="Keep printing new events as other processes append them.")
@click.option("--interval", type=click.FloatRange(0.01, 3600), default=0.2, show_default=True, callback=lambda c, p, v: _finite(v, p),
              help="Seconds between looks when following.")
@click.option("--timeout", type=click.FloatRange(0, 1e7), default=None, help="Stop following after this many seconds.")
@click.pass_context
def history(ctx: click.Context, db: str | None, fmt: str | None, session: str | None, after: int, follow: bool,
            interval: float, timeout: float | None) -> None:
    """Print the audit timeline, of one session or all (Ledger.history)."""
    columns = None if fmt == "json" else ["position", "recorded_at", "session_id", "version", "type", "payload"]
    with opened(ctx, db) as ledger:
        if not follow:
            emit([_event_row(e) for e in ledger.history(session, after=after)], fmt, columns=columns)
            return
        try:
            for printed, event in enumerate(ledger.follow(session, after=after, poll=interval, timeout=timeout)):
                _print_event(_event_row(event), fmt, printed == 0)
        except KeyboardInterrupt:
            pass


_FOLLOWED = ("position", "recorded_at", "session_id", "version", "type", "payload")


def _print_event(row: dict[str, Any], fmt: str | None, first: bool) -> None:
    if fmt == "json":
        click.echo(json.dumps(plain(row), ensure_ascii=False, default=str))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if first:
            writer.writerow(_FOLLOWED)
        writer.writerow([cell(row[k], None) for k in _FOLLOWED])
        click.echo(out.getvalue(), nl=False)
    else:
        click.echo("  ".join(cell(row[k], 100) for k in _FOLLOWED))
    sys.stdout.flush()


@main.command()
@db_option
@output_options
@click.argument("query")
@click.option("--session", help="Only this session.")
@click.option("--role", help="Only messages of this role.")
@click.option("--limit", type=int, default=20, show_default=True, help="At most this many hits.")
@click.pass_context
def search(ctx: click.Context, db: str | None, fmt: str | None, query: str, session: str | None, role: str | None,
           limit: int) -> None:
    """Full-text search over every conversation (Ledger.search_messages)."""
    with opened(ctx, db) as ledger:
        hits = ledger.search_messages(query, session_id=session, role=role, limit=limit)
    emit([msgspec.to_builtins(h) for h in hits], fmt, shorten=100)


@main.command()
@db_option
@output_options
@_target_options
@click.argument("session", required=False)
@click.pass_context
def stats(ctx: click.Context, db: str | None, fmt: str | None, session: str | None, version: int | None,
          at: str | None, position: int | None) -> None:
    """A session's statistics (Ledger.statistics), or the whole ledger's by status."""
    with opened(ctx, db) as ledger:
        if session is None:
            rows = ledger.usage(by="status")
            emit(rows, fmt)
            click.echo(f"{ledger.last_position} events in all", err=True)
            return
        figures = ledger.statistics(session, version=version, position=position, at=when(at, "at"))
    emit_one(msgspec.to_builtins(figures), fmt)


@main.command()
@db_option
@output_options
@click.option("--by", type=click.Choice(["tool", "user", "model", "day", "status"]), default="tool", show_default=True,
              help="What to group by.")
@click.option("--since", help="Activity from this time on (ISO 8601).")
@click.option("--until", help="Activity before this time.")
@click.pass_context
def usage(ctx: click.Context, db: str | None, fmt: str | None, by: str, since: str | None, until: str | None) -> None:
    """Tokens, cost and durations grouped by tool, user, model, day or status (Ledger.usage)."""
    with opened(ctx, db) as ledger:
        rows = ledger.usage(by=by, since=when(since, "since"), until=when(until, "until"))
    emit(rows, fmt)


@main.command()
@db_option
@click.option("--digest", "digest_file", help="Also prove nothing up to this saved digest changed.")
@click.option("--deep", is_flag=True, help="Also rebuild the read tables from the log and compare them.")
@click.pass_context
def verify(ctx: click.Context, db: str | None, digest_file: str | None, deep: bool) -> None:
    """Walk the hash chain; exit 1 with the first bad position and the reason when it does not hold."""
    digest = None
    if digest_file is not None:
        try:
            with open(path_arg(digest_file, "digest"), "rb") as stream:
                text = stream.read(_DIGEST_BYTES + 1)  # bounded: a digest is one short line (not /dev/zero)
        except OSError as exc:
            raise InvalidInput(f"cannot read digest file {digest_file!r}: {exc.strerror or exc}", field="digest") from exc
        if len(text) > _DIGEST_BYTES:
            raise InvalidInput(
                f"digest file {digest_file!r} is not a digest: longer than {_DIGEST_BYTES} bytes",
                field="digest",
                limit=_DIGEST_BYTES,
            )
        digest = Digest.from_json(text)
    with opened(ctx, db) as ledger, progress_bar("verify") as progress:
        report = ledger.verify(digest, progress=progress, projections=deep)
    if report.ok:
        against = f"; matches the digest at position {digest.position}" if digest else ""
        against += "; the read tables match the log" if deep else ""
        click.echo(f"ok: {report.checked} events verified; head {report.head.position} {report.head.hash}{against}")
        if report.scrub_pending:
            click.echo(SCRUB_PENDING)
    else:
        where = f"table {report.table}" if report.table else f"position {report.first_bad_position}"
        click.echo(f"FAILED at {where}: {report.reason}", err=True)
        ctx.exit(EXIT_FAILED)


@main.command()
@db_option
@click.option("--out", help="Write the digest to this file instead of printing it.")
@click.pass_context
def digest(ctx: click.Context, db: str | None, out: str | None) -> None:
    """Print (or save) the chain head, to verify against later."""
    with opened(ctx, db) as ledger:
        head = ledger.digest()
    if out is None:
        click.echo(head.to_json())
        return
    try:
        with open(path_arg(out, "out"), "w", encoding="utf-8") as stream:
            stream.write(head.to_json() + "\n")
    except OSError as exc:
        raise InvalidInput(f"out: cannot write the digest to {out!r}: {exc.strerror}", field="out") from exc
    click.echo(f"digest of position {head.position} written to {out}")


@main.command()
@db_option
@click.option("--session", "sessions", multiple=True, help="Only this session (repeatable).")
@click.option("--until", help="Up to this log position (a number) or time.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "sessions-dir"]), default="jsonl", show_default=True,
              help="jsonl: the event stream; sessions-dir: one folder per session.")
@click.argument("out")
@click.pass_context
def export(ctx: click.Context, db: str | None, sessions: tuple[str, ...], until: str | None, fmt: str, out: str) -> None:
    """Write the event stream (jsonl) or one folder per session (sessions-dir) to OUT."""
    position, moment = parse_cut(until)
    with opened(ctx, db) as ledger, progress_bar("export") as progress:
        count = ledger.export(out, format=fmt, sessions=list(sessions) or None, until_position=position, until=moment,
                              progress=progress)
    click.echo(f"exported {count} {'events' if fmt == 'jsonl' else 'sessions'} to {out}")


@main.command("import")
@db_option
@click.argument("file")
@click.pass_context
def import_command(ctx: click.Context, db: str | None, file: str) -> None:
    """Append a JSONL export, checking its chain; importing twice changes nothing."""
    with opened(ctx, db) as ledger, progress_bar("import") as progress:
        report = ledger.import_events(file, progress=progress)
    click.echo(f"read {report.read}, imported {report.imported}, already present {report.skipped};"
               f" head {report.head.position} {report.head.hash}")


@main.command()
@db_option
@click.argument("out")
@click.pass_context
def backup(ctx: click.Context, db: str | None, out: str) -> None:
    """Copy the live ledger to OUT (SQLite online backup) and verify the copy."""
    with opened(ctx, db) as ledger, progress_bar("backup") as progress:
        report = ledger.backup(out, progress=progress)
    if not report.ok:
        click.echo(f"backup written to {out} but it does not verify: {report.reason}", err=True)
        ctx.exit(EXIT_FAILED)
    click.echo(f"backup {out}: {report.checked} events, verified; head {report.head.position} {report.head.hash}")


@main.command()
@db_option
@click.option("--projection", help="Only this projection (default: all).")
@click.pass_context
def rebuild(ctx: click.Context, db: str | None, projection: str | None) -> None:
    """Drop projections and replay the whole log into them."""
    with opened(ctx, db) as ledger, progress_bar("rebuild") as progress:
        count = ledger.rebuild(projection, progress)
    click.echo(f"rebuilt {projection or 'all projections'} from {count} events")


@main.command()
@db_option
@click.option("--until", required=True, help="The cut: a log position (a number) or a time.")
@click.argument("out")
@click.pass_context
def replay(ctx: click.Context, db: str | None, until: str, out: str) -> None:
    """Write OUT: a ledger holding the events up to the cut and every projection as it stood then."""
    position, moment = parse_cut(until)
    with opened(ctx, db) as ledger, progress_bar("replay") as progress:
        head = ledger.replay(into=out, until_position=position, until=moment, progress=progress)
    click.echo(f"replayed {head.position} events into {out}; head {head.hash}")


@main.command()
@db_option
@click.argument("session")
@click.option("--reason", required=True, help="Why (kept in the purged event).")
@click.option("--by", help="Who asked.")
@click.pass_context
def purge(ctx: click.Context, db: str | None, session: str, reason: str, by: str | None) -> None:
    """Remove a session's payloads (and its forks') everywhere in the file; verify still passes."""
    with opened(ctx, db) as ledger:
        version = ledger.purge_session(session, reason=reason, by=by)
    click.echo(f"purged {session} (version {version})")


@main.command()
@db_option
@click.option("--idle", type=float, help="Complete sessions idle this many seconds as abandoned.")
@click.option("--purge-older-than", "days", type=float,
              help="Purge sessions that ended this many days ago [default: $LEDGER_RETENTION_DAYS].")
@click.option("--keep-snapshots", type=click.IntRange(min=0), default=3, show_default=True,
              help="Snapshots kept per session (plus one a day).")
@click.pass_context
def gc(ctx: click.Context, db: str | None, idle: float | None, days: float | None, keep_snapshots: int) -> None:
    """Retention: abandon idle sessions, purge old ended ones, thin out snapshots."""
    s = settings(ctx, db)
    days = days if days is not None else s.retention_days
    # Every value is checked before anything runs: gc does nothing rather than half its work.
    if idle is not None:
        duration_arg(idle, "max_idle", 1)
    if days is not None:
        duration_arg(days, "older_than", 86_400)
    with opened(ctx, db) as ledger:
        with progress_bar("abandon idle") as progress:
            abandoned = ledger.cleanup(idle, progress=progress) if idle is not None else []
        with progress_bar("purge ended") as progress:
            purged = ledger.purge_completed(days, by="ledger gc", progress=progress) if days is not None else []
        dropped = ledger.drop_snapshots(keep_snapshots)
        scrubbed = ledger.finish_scrub()
    click.echo(f"abandoned {len(abandoned)} idle sessions, purged {len(purged)} ended sessions, dropped {dropped} snapshots")
    if not scrubbed:
        click.echo(SCRUB_PENDING)


@main.command()
@db_option
@click.pass_context
def mcp(ctx: click.Context, db: str | None) -> None:
    """Serve the ledger to MCP clients (agents) over stdio; needs the mcp extra."""
    try:
        from .mcp_server import serve
    except ImportError as exc:  # the extra is optional: say what to install, not a traceback
        if (exc.name or "").partition(".")[0] not in ("mcp", "mcp_types"):
            raise
        click.echo(f"error: ledger mcp needs the MCP SDK 2.x: pip install 'session-ledger[mcp]' ({exc})", err=True)
        ctx.exit(EXIT_INPUT)
    with opened(ctx, db) as ledger:
        serve(ledger)
