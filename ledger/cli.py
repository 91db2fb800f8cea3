"""The ``ledger`` command: one subcommand per library method, for auditors and operators.

``--db PATH`` goes before or after the subcommand (default ``$LEDGER_PATH``,
else ``./ledger.db``); only ``init``, ``demo`` and ``import`` create a missing
ledger, every other command refuses it. Listings stream a table fitted to the
terminal for people, ``--json``, ``--nl`` (one JSON object a line) or ``--csv``
for programs. Exit codes: 0 success; 1 failure (a chain that does not hold, a
missing session or ledger, a path that cannot be written, a damaged file, a
missing extra); 2 a usage error (a bad option or value); 130 interrupted.
Every error is one line on stderr, never a traceback. Long work shows a
progress bar on a terminal and stays quiet when piped.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import msgspec

from projections.search import SEARCH_SYNTAX_HELP

from . import Digest, FileAccessError, InvalidInput, Ledger, LedgerError, LedgerNotFound, datasette_metadata
from .arguments import (
    STDOUT,
    db_option,
    filter_from_options,
    filter_options,
    finite,
    output_options,
    parse_cut,
    target_options,
    when,
)
from . import cli_proofs
from .extras import require_extra
from .output import emit, emit_one, plain, progress_bar, read_text, save_text, transcript
from .settings import Settings
from .validation import duration_arg

EXIT_FAILED = 1  # the work failed: a chain that does not hold, a missing session or file, an unwritable path
EXIT_USAGE = 2  # the command line itself is wrong: an unknown option, a bad value
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as a shell reports it


def exit_code(exc: LedgerError) -> int:
    """A ``LedgerError``'s exit code: 2 for a bad value on the command line, 1 for everything else."""
    return EXIT_USAGE if isinstance(exc, InvalidInput) and not isinstance(exc, FileAccessError) else EXIT_FAILED


SCRUB_PENDING = (
    "scrub pending: a purge's text may still be in the -wal file while another connection holds an older"
    " snapshot; it is emptied at the next write, close, open, gc or verify after that reader lets go"
)
_DIGEST_BYTES = 4096  # a saved digest is about 100 bytes of JSON


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
            raise click.exceptions.Exit(EXIT_USAGE) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exit_code(exc))
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            ctx.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            # Every file the command was writing is still under its temporary name, removed on the way out.
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:  # the reader went away (``ledger history | head``): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(EXIT_FAILED)


def settings(ctx: click.Context, db: str | None) -> Settings:
    """The settings for this run: the subcommand's ``--db``, else the group's, else the environment."""
    return Settings.load(path=db or ctx.obj.get("db"))


@contextmanager
def opened(ctx: click.Context, db: str | None, *, create: bool = False) -> Iterator[Ledger]:
    """The ledger named by the settings, open for the command; a missing one is refused unless ``create``
    (a mistyped path must not become a new, empty ledger that verifies)."""
    s = settings(ctx, db)
    try:
        ledger = Ledger(s.path, durability=s.durability, snapshot_every=s.snapshot_every, create=create)
    except LedgerNotFound as exc:
        shown = exc.actual or s.path  # the backend's own name for it: a URL without its password
        raise LedgerNotFound(f"{exc}; create one with: ledger --db {shlex.quote(shown)} init", actual=shown) from exc
    with ledger:
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
    with opened(ctx, db, create=True) as ledger:
        click.echo(f"ledger {ledger.path} ready: {ledger.last_position} events, durability {ledger.durability}")


@main.command()
@db_option
@click.pass_context
def demo(ctx: click.Context, db: str | None) -> None:
    """Record a multi-agent scenario and show queries, time travel and verify."""
    from .demo import run_demo

    run_demo(settings(ctx, db).path, click.echo)


@main.command("sessions")
@db_option
@output_options
@filter_options
@click.pass_context
def sessions_command(ctx: click.Context, /, db: str | None, fmt: str | None, **options: Any) -> None:
    """List sessions matching every filter given (Ledger.list_sessions).

    A page at a time: the next page's --cursor is printed on stderr, or as "cursor" in --json output
    ({"items": [...], "cursor": ...}).
    """
    criteria = filter_from_options(options)
    with opened(ctx, db) as ledger:
        page = ledger.list_sessions(**msgspec.structs.asdict(criteria))
    rows = [msgspec.structs.asdict(s) for s in page.items]
    if fmt == "json":
        emit_document({"items": [{k: r[k] for k in _SESSION_FIELDS} for r in rows], "cursor": page.cursor})
        return
    emit(rows, fmt, columns=_SESSION_FIELDS if fmt else _SESSION_COLUMNS)
    if page.cursor:
        click.echo(f"more: --cursor {page.cursor}", err=True)


_SESSION_COLUMNS = ["session_id", "status", "user_id", "created_at", "updated_at", "message_count",
                    "invocation_count", "tokens_in", "tokens_out", "estimated_cost", "tags"]
_SESSION_FIELDS = ["session_id", "status", "user_id", "purpose", "created_at", "updated_at", "version",
                   "message_count", "invocation_count", "tokens_in", "tokens_out", "estimated_cost", "tags",
                   "parent_id"]


def emit_document(document: Any) -> None:
    """Print one JSON document (times as ISO 8601 with ``Z``)."""
    click.echo(json.dumps(plain(document), indent=2, ensure_ascii=False))


@main.command()
@db_option
@output_options
@target_options
@click.argument("session")
@click.pass_context
def show(ctx: click.Context, db: str | None, fmt: str | None, session: str, version: int | None, at: str | None,
         position: int | None) -> None:
    """Show a session's state, now or as of --at-version, --at or --position (Ledger.get_session)."""
    with opened(ctx, db) as ledger:
        state = ledger.get_session(session, version=version, position=position, at=when(at, "at"))
    record = msgspec.structs.asdict(state)
    for internal in ("lineage", "run_start"):
        record.pop(internal)
    emit_one(record, fmt)


_MESSAGE_FIELDS = ["session_id", "version", "position", "recorded_at", "role", "tool_name", "invocation_id",
                   "model", "tokens_in", "tokens_out", "content"]


def _message_row(session: str, m: Any) -> dict[str, Any]:
    # Flat, for CSV as much as JSON: the session asked for, and the token counts as two columns.
    tokens = m.tokens or {}
    return msgspec.structs.asdict(m) | {"session_id": session, "tokens_in": tokens.get("input"),
                                        "tokens_out": tokens.get("output")}


@main.command()
@db_option
@output_options
@target_options
@click.option("--limit", type=click.IntRange(min=1), help="At most this many messages.")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many first.")
@click.argument("session")
@click.pass_context
def messages(ctx: click.Context, db: str | None, fmt: str | None, session: str, version: int | None, at: str | None,
             position: int | None, limit: int | None, offset: int) -> None:
    """Print a session's conversation, now or as of a target (Ledger.messages): a transcript wrapped to
    the terminal, or every field with --json, --nl or --csv."""
    with opened(ctx, db) as ledger:
        found = ledger.messages(session, version=version, position=position, at=when(at, "at"),
                                limit=limit, offset=offset)
    rows = [_message_row(session, m) for m in found]
    if fmt is None:
        transcript(rows)
    else:
        emit(rows, fmt, columns=_MESSAGE_FIELDS)


_EVENT_FIELDS = ["position", "recorded_at", "session_id", "version", "type", "event_id", "hash", "payload"]
_EVENT_COLUMNS = ["position", "recorded_at", "session_id", "version", "type", "payload"]


def _event_row(e: Any) -> dict[str, Any]:
    return {
        "position": e.position, "recorded_at": e.recorded_at, "session_id": e.session_id, "version": e.version,
        "type": e.type, "event_id": e.event_id, "hash": e.hash, "payload": msgspec.to_builtins(e.payload),
    }


def _tail_after(ledger: Ledger, session: str | None, after: int, count: int) -> int:
    """The position after which the last ``count`` events (of ``session``, or all) begin."""
    if session is None:
        return max(after, ledger.last_position - count)  # positions have no gaps
    last = collections.deque((e.position for e in ledger.history(session, after=after)), maxlen=count)
    return last[0] - 1 if len(last) == count else after


@main.command()
@db_option
@output_options
@click.argument("session", required=False)
@click.option("--after", type=click.IntRange(min=0), default=0, help="Only events after this position.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@click.option("--tail", type=click.IntRange(min=1), metavar="N", help="Only the last N events (then new ones, with --follow).")
@click.option("--follow", is_flag=True, help="Keep printing new events as other processes append them.")
@click.option("--interval", type=click.FloatRange(0.01, 3600), default=0.2, show_default=True, callback=lambda c, p, v: finite(v, p),
              help="Seconds between looks when following.")
@click.option("--timeout", type=click.FloatRange(0, 1e7), default=None, help="Stop following after this many seconds.")
@click.pass_context
def history(ctx: click.Context, db: str | None, fmt: str | None, session: str | None, after: int, limit: int | None,
            tail: int | None, follow: bool, interval: float, timeout: float | None) -> None:
    """Print the audit timeline, of one session or all (Ledger.history), as it is read: the first line
    comes at once and memory stays flat however long the log."""
    with opened(ctx, db) as ledger:
        if tail is not None:
            after = _tail_after(ledger, session, after, tail)
        events = (
            ledger.follow(session, after=after, poll=interval, timeout=timeout) if follow
            else ledger.history(session, after=after)
        )
        rows = (_event_row(e) for e in itertools.islice(events, limit))
        emit(rows, fmt, columns=_EVENT_FIELDS if fmt else _EVENT_COLUMNS, sample=1 if follow else None)


_HIT_FIELDS = ["session_id", "position", "version", "role", "rank", "snippet"]


# "\b" keeps click from re-flowing the syntax table's lines.
@main.command(epilog="\n\n".join("\b\n" + part for part in SEARCH_SYNTAX_HELP.split("\n\n")))
@db_option
@output_options
@click.argument("query")
@click.option("--session", help="Only this session's conversation.")
@click.option("--role", help="Only messages of this role.")
@click.option("--limit", type=int, default=20, show_default=True, help="At most this many hits.")
@click.pass_context
def search(ctx: click.Context, db: str | None, fmt: str | None, query: str, session: str | None, role: str | None,
           limit: int) -> None:
    """Full-text search over every conversation, best match first (Ledger.search_messages)."""
    with opened(ctx, db) as ledger:
        hits = ledger.search_messages(query, session_id=session, role=role, limit=limit)
    # The table leaves the rank out (the hits are in its order); programs get it, higher is better.
    columns = _HIT_FIELDS if fmt else [c for c in _HIT_FIELDS if c != "rank"]
    emit((msgspec.structs.asdict(h) for h in hits), fmt, columns=columns)


_STATUS_FIELDS = ["status", "sessions", "messages", "invocations", "tokens_in", "tokens_out", "cost"]


@main.command()
@db_option
@output_options
@target_options
@click.argument("session", required=False)
@click.pass_context
def stats(ctx: click.Context, db: str | None, fmt: str | None, session: str | None, version: int | None,
          at: str | None, position: int | None) -> None:
    """A session's statistics (Ledger.statistics), or the whole ledger's sessions by status, purged ones
    included (Ledger.sessions_by_status)."""
    with opened(ctx, db) as ledger:
        if session is None:
            emit(ledger.sessions_by_status(), fmt, columns=_STATUS_FIELDS)
            click.echo(f"{ledger.last_position} events in all", err=True)
            return
        figures = ledger.statistics(session, version=version, position=position, at=when(at, "at"))
    emit_one(msgspec.structs.asdict(figures), fmt)


_TOKEN_PARTS = ["tokens_cache_read", "tokens_cache_creation", "tokens_reasoning"]
_USAGE_FIELDS = ["sessions", "messages", "invocations", "tokens_in", "tokens_out", "cost", "total_duration_ms",
                 "p95_duration_ms"]


@main.command()
@db_option
@output_options
@click.option("--by", type=click.Choice(["tool", "user", "model", "day", "status"]), default="tool", show_default=True,
              help="What to group by; activity without a tool, user or model is one group, (none).")
@click.option("--since", help="Activity from this time on (ISO 8601).")
@click.option("--until", help="Activity before this time.")
@click.pass_context
def usage(ctx: click.Context, db: str | None, fmt: str | None, by: str, since: str | None, until: str | None) -> None:
    """Tokens, cost and durations grouped by tool, user, model, day or status (Ledger.usage); the groups add
    up to the whole."""
    with opened(ctx, db) as ledger:
        rows = ledger.usage(by=by, since=when(since, "since"), until=when(until, "until"))
    # The table leaves out the cache and reasoning parts (programs get them): it has to fit the terminal.
    emit(rows, fmt, columns=[by, *_USAGE_FIELDS, *(_TOKEN_PARTS if fmt else ())], none={by: "(none)"})


@main.command()
@db_option
@click.option("--since", help="Activity from this time on (ISO 8601).")
@click.option("--until", help="Activity before this time.")
@click.option("--session", help="Also show this session: its timeline, lineage and conversation.")
@click.argument("out")
@click.pass_context
def report(ctx: click.Context, db: str | None, since: str | None, until: str | None, session: str | None,
           out: str) -> None:
    """Write one self-contained HTML page with charts (it opens offline): activity, tokens and cost per day, the
    lifecycle, breakdowns by tool, model, user and status, and the integrity line."""
    with opened(ctx, db) as ledger:
        path = ledger.report(out, since=when(since, "since"), until=when(until, "until"), session=session)
    click.echo(f"report written to {path}")


@main.command()
@db_option
@click.option("--digest", "digest_file", help="Also prove nothing up to this saved digest changed.")
@click.option("--deep", is_flag=True, help="Also rebuild the read tables from the log and compare them.")
@click.option("--checkpoint", help="Prove the log extends this signed checkpoint (with --key).")
@click.option("--key", metavar="PUB", help="The verifier key file of the checkpoint's signer.")
@click.pass_context
def verify(ctx: click.Context, db: str | None, digest_file: str | None, deep: bool, checkpoint: str | None,
           key: str | None) -> None:
    """Walk the hash chain; exit 1 with the first bad position and the reason when it does not hold."""
    if key is not None and checkpoint is None:
        raise click.UsageError("--key goes with --checkpoint: the verifier key of the checkpoint's signer")
    if checkpoint is not None and (digest_file is not None or deep):
        raise click.UsageError("--checkpoint proves the log against a signed checkpoint: run --digest and --deep apart")
    if checkpoint is not None:
        with opened(ctx, db) as ledger:
            cli_proofs.verify_checkpoint(ctx, ledger, checkpoint, key, EXIT_FAILED)
        return
    digest = None
    if digest_file is not None:
        text = read_text(digest_file, "digest", _DIGEST_BYTES)  # bounded: a digest is one short line (not /dev/zero)
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
@click.option("--out", help="Write the digest to this file ('-': standard output, as without --out).")
@click.pass_context
def digest(ctx: click.Context, db: str | None, out: str | None) -> None:
    """Print (or save) the chain head, to verify against later."""
    with opened(ctx, db) as ledger:
        head = ledger.digest()
    if out is None or out == STDOUT:
        click.echo(head.to_json())
        return
    save_text(out, head.to_json(), "the digest")
    click.echo(f"digest of position {head.position} written to {out}")


@main.command()
@db_option
@click.option("--session", "sessions", multiple=True, help="Only this session (repeatable).")
@click.option("--until", help="Up to this log position (a number) or time.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "sessions-dir"]), default="jsonl", show_default=True,
              help="jsonl: the event stream; sessions-dir: one folder per session.")
@click.option("--with-proofs", is_flag=True, help="One session's proof bundle: its events with inclusion proofs.")
@click.option("--sign", "key", metavar="KEY", help="With --with-proofs: the signer key file for the checkpoint.")
@click.argument("out")
@click.pass_context
def export(ctx: click.Context, db: str | None, sessions: tuple[str, ...], until: str | None, fmt: str,
           with_proofs: bool, key: str | None, out: str) -> None:
    """Write the event stream (jsonl; OUT '-' for standard output) or one folder per session (sessions-dir)
    to OUT, under a temporary name renamed at the end: an interrupted export leaves nothing behind. With
    --with-proofs, one session's proof bundle, which `ledger verify-bundle` checks offline."""
    if key is not None and not with_proofs:
        raise click.UsageError("--sign goes with --with-proofs: it signs the proof bundle's checkpoint")
    if with_proofs and (until is not None or fmt != "jsonl"):
        raise click.UsageError("--with-proofs proves a session up to the current head: no --until or --format")
    if with_proofs:
        with opened(ctx, db) as ledger:
            cli_proofs.export_proofs(ledger, sessions, key, out)
        click.echo(f"exported the proof bundle of session {sessions[0]} to {out}", err=out == STDOUT)
        return
    position, moment = parse_cut(until)
    if out == STDOUT and fmt != "jsonl":
        raise click.UsageError("a sessions-dir export needs a directory, not '-'")
    target: Any = sys.stdout if out == STDOUT else out
    with opened(ctx, db) as ledger, progress_bar("export") as progress:
        count = ledger.export(target, format=fmt, sessions=list(sessions) or None, until_position=position,
                              until=moment, progress=progress)
    click.echo(f"exported {count} {'events' if fmt == 'jsonl' else 'sessions'} to {out}", err=out == STDOUT)


@main.command("import")
@db_option
@click.argument("file")
@click.pass_context
def import_command(ctx: click.Context, db: str | None, file: str) -> None:
    """Append a JSONL export (FILE '-' for standard input), checking its chain; importing twice changes
    nothing. Creates the ledger when it does not exist."""
    source: Any = sys.stdin if file == "-" else file
    with opened(ctx, db, create=True) as ledger, progress_bar("import") as progress:
        report = ledger.import_events(source, progress=progress)
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


@main.command("datasette-metadata")
@db_option
@click.option("--out", help="Write it to this file instead of printing it ('-': standard output).")
@click.option("--database", help="The database's name in Datasette [default: the file's stem, as Datasette names it].")
@click.pass_context
def datasette_metadata_command(ctx: click.Context, db: str | None, out: str | None, database: str | None) -> None:
    """Print Datasette's metadata for the ledger file: every table, view and column described, with units
    (tokens, USD, ms) and the search index (datasette FILE --metadata metadata.json)."""
    with opened(ctx, db) as ledger:  # opening brings an older file's tables and views up to date first
        document = datasette_metadata(ledger, database=database)
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if out is None or out == STDOUT:
        click.echo(text)
        return
    save_text(out, text, "the metadata")
    click.echo(f"Datasette metadata written to {out}: datasette {ledger.path} --metadata {out}")


@main.command()
@db_option
@click.pass_context
def mcp(ctx: click.Context, db: str | None) -> None:
    """Serve the ledger to MCP clients (agents) over stdio; needs the mcp extra."""
    server = require_extra("ledger.mcp_server", "mcp", "ledger mcp")  # one line naming the extra when missing
    with opened(ctx, db) as ledger:
        server.serve(ledger)


cli_proofs.register(main, opened, EXIT_FAILED)
