"""``Ledger.report``: one self-contained HTML page of the ledger's trends, breakdowns, lifecycle and integrity.

Everything is inline: the styles, and the charts as SVG drawn here (``ledger.charts``); there is no script,
font or image to fetch, so the page opens offline and makes no request. Every figure comes from the ledger's
own reads (``usage``, ``lifecycle``, ``tool_health``, ``statistics``, ``verify``), so the page says what the
library says. With a session, it also shows that session: a timeline of its events, its lineage, its
conversation and whether the chain holds.

The numbers a program may want back are in the page twice: in its tables, and in one JSON object in a
``<script type="application/json" id="report-data">`` element (data, not code).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from html import escape
from typing import TYPE_CHECKING, Any

import msgspec

from . import charts
from .charts import number
from .errors import InvalidInput
from .signing import parse_checkpoint

if TYPE_CHECKING:
    from .ledger import Ledger

_BREAKDOWNS = ("tool", "model", "user", "status")
_TOTALS = ("sessions", "messages", "invocations", "tokens_in", "tokens_out", "tokens_cache_read",
           "tokens_cache_creation", "tokens_reasoning", "cost")
_LIFECYCLE = ("created", "completed", "failed", "abandoned", "purged")
_MESSAGE_TEXT = 4_000  # characters of a message shown in the conversation (the rest is cut, and says so)
_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2733;background:#f6f7f9}
main{max-width:960px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
.muted{color:#5c6773}.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:10px 14px;min-width:120px}
.card b{display:block;font-size:19px}figure{background:#fff;border:1px solid #e1e4e8;border-radius:6px;
margin:0 0 14px;padding:10px}figcaption{font-weight:600;margin-bottom:6px}svg{max-width:100%;height:auto}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:14px}
th,td{border:1px solid #e1e4e8;padding:4px 8px;text-align:right}th:first-child,td:first-child{text-align:left}
.ok{color:#1e7b34;font-weight:600}.bad{color:#b42318;font-weight:600}
.msg{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:8px 10px;margin:6px 0;white-space:pre-wrap}
.role{font-weight:600;margin-right:8px}code{font-size:12px;word-break:break-all}
"""


def _figure(name: str, caption: str, svg: str) -> str:
    return f'<figure class="chart" data-chart="{name}"><figcaption>{escape(caption)}</figcaption>{svg}</figure>'


def _table(name: str, headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f'<table data-table="{name}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number(value)
    return str(value)


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(ledger: Ledger, *, since: datetime | None = None, until: datetime | None = None,
           session: str | None = None, now: datetime | None = None) -> str:
    """The report page as HTML text (``Ledger.report`` writes it to a file)."""
    data: dict[str, Any] = {"since": _when(since), "until": _when(until), "session": session}
    parts = [_integrity(ledger, data)]
    days = ledger.usage(by="day", since=since, until=until)
    statuses = ledger.usage(by="status", since=since, until=until)
    totals = {key: sum(row[key] or 0 for row in statuses) for key in _TOTALS}
    data["totals"] = totals
    cards = "".join(f'<div class="card" data-total="{key}"><b>{escape(number(value))}</b>{escape(key.replace("_", " "))}'
                    f"</div>" for key, value in totals.items())
    parts.append(f'<h2>Overview</h2><div class="cards">{cards}</div>')
    parts.append(_over_time(days, data))
    parts.append(_lifecycle(ledger.lifecycle(since=since, until=until), data))
    parts.append(_breakdowns(ledger, since, until, data))
    if session is not None:
        parts.append(_session(ledger, session, data))
    window = " to ".join(w for w in (data["since"] or "the start", data["until"] or "now"))
    generated = _when(now or datetime.now(timezone.utc))
    # Inside <script>, "<" could start a tag the parser honours (</script>, <!--): JSON escapes it, and & and >.
    blob = json.dumps(data, sort_keys=True, default=str).replace("<", "\\u003c").replace(">", "\\u003e")
    blob = blob.replace("&", "\\u0026")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline';"
        " img-src data:\">"
        f"<title>session-ledger report: {escape(ledger.path)}</title><style>{_STYLE}</style></head><body><main>"
        f"<h1>session-ledger report</h1><p class=\"muted\">{escape(ledger.path)} · activity from {escape(window)}"
        f" · generated {escape(generated or '')}</p>{''.join(parts)}"
        f'<script type="application/json" id="report-data">{blob}</script></main></body></html>'
    )


def _integrity(ledger: Ledger, data: dict[str, Any]) -> str:
    report = ledger.verify()
    checkpoint = ledger.latest_checkpoint()
    parsed = None
    if checkpoint is not None:
        try:
            parsed = parse_checkpoint(checkpoint.split("\n\n")[0] + "\n")
        except InvalidInput:
            parsed = None
    signed = None if parsed is None else {"origin": parsed.origin, "size": parsed.size, "root": parsed.root.hex()}
    data["integrity"] = {"ok": report.ok, "checked": report.checked, "first_bad_position": report.first_bad_position,
                         "reason": report.reason, "head": msgspec.to_builtins(report.head), "checkpoint": signed}
    verdict = (f'<span class="ok">the chain holds</span>: {number(report.checked)} events verified' if report.ok else
               f'<span class="bad">the chain is broken at position {report.first_bad_position}</span>:'
               f" {escape(report.reason or '')}")
    line = (f'<p data-integrity="{"ok" if report.ok else "failed"}">{verdict}; digest: position'
            f" {report.head.position}, <code>{report.head.hash}</code>")
    if parsed is not None:
        line += (f"; latest signed checkpoint: {escape(parsed.origin)}, {number(parsed.size)} events, root"
                 f" <code>{parsed.root.hex()}</code>")
    else:
        line += "; no signed checkpoint recorded (ledger checkpoint --sign KEY)"
    return f"<h2>Integrity</h2>{line}</p>"


def _over_time(days: list[dict[str, Any]], data: dict[str, Any]) -> str:
    labels = [str(row["day"]) for row in days]
    column = {key: [float(row[key] or 0) for row in days] for key in _TOTALS}
    data["days"] = days
    if not days:
        return "<h2>Over time</h2><p class=\"muted\">No activity in this window.</p>"
    return "<h2>Over time</h2>" + "".join((
        _figure("activity", "Messages and invocations per day",
                charts.bars(labels, {"messages": column["messages"], "invocations": column["invocations"]},
                            "messages and invocations per day")),
        _figure("sessions", "Sessions with activity per day",
                charts.lines(labels, {"sessions": column["sessions"]}, "sessions per day")),
        _figure("tokens", "Tokens per day: input, output, cached (read), reasoning",
                charts.lines(labels, {"input": column["tokens_in"], "output": column["tokens_out"],
                                      "cached": column["tokens_cache_read"], "reasoning": column["tokens_reasoning"]},
                             "tokens per day")),
        _figure("cost", "Cost per day (USD)", charts.bars(labels, {"cost": column["cost"]}, "cost per day")),
    ))


def _lifecycle(rows: list[dict[str, Any]], data: dict[str, Any]) -> str:
    data["lifecycle"] = rows
    if not rows:
        return "<h2>Lifecycle</h2><p class=\"muted\">No session was created or ended in this window.</p>"
    labels = [row["day"] for row in rows]
    series = {kind: [float(row[kind]) for row in rows] for kind in _LIFECYCLE}
    table = _table("lifecycle", ["day", *_LIFECYCLE], [[row["day"], *(row[k] for k in _LIFECYCLE)] for row in rows])
    return "<h2>Lifecycle</h2>" + _figure(
        "lifecycle", "Sessions created, completed, failed, abandoned and purged per day",
        charts.bars(labels, series, "session lifecycle per day")) + table


def _breakdowns(ledger: Ledger, since: datetime | None, until: datetime | None, data: dict[str, Any]) -> str:
    health = {row["tool"]: row for row in ledger.tool_health(since=since, until=until)}
    data["tool_health"] = list(health.values())
    out = ["<h2>Breakdowns</h2>"]
    for by in _BREAKDOWNS:
        rows = ledger.usage(by=by, since=since, until=until)
        data[f"by_{by}"] = rows
        if not rows:
            continue
        headers = [by, "sessions", "messages", "invocations", "tokens in", "tokens out", "cost"]
        table_rows = [[r[by], r["sessions"], r["messages"], r["invocations"], r["tokens_in"], r["tokens_out"],
                       r["cost"]] for r in rows]
        if by == "tool":
            headers += ["p50 ms", "p95 ms", "error rate"]
            for row, r in zip(table_rows, rows):
                h = health.get(r["tool"]) or {}
                rate = h.get("error_rate")
                row += [h.get("p50_ms"), h.get("p95_ms"), None if rate is None else f"{rate:.1%}"]
        ranked = sorted(((str(_cell(r[by])), float(r["messages"] + r["invocations"])) for r in rows),
                        key=lambda item: -item[1])
        out.append(_figure(f"by_{by}", f"Activity by {by} (messages and invocations)",
                           charts.hbars(ranked[:20], f"activity by {by}")))
        out.append(_table(f"by_{by}", headers, table_rows))
    return "".join(out)


def _session(ledger: Ledger, session_id: str, data: dict[str, Any]) -> str:
    state = ledger.get_session(session_id)
    stats = ledger.statistics(session_id)
    events = list(ledger.history(session_id))
    messages = ledger.messages(session_id)
    data["session_statistics"] = msgspec.to_builtins(stats)

    items: list[tuple[str, float, float, str]] = []
    for event in events:
        at, payload = event.recorded_at.timestamp(), event.payload
        if event.type == "message_added":
            items.append(("messages", at, at, f"v{event.version} {getattr(payload, 'role', '')}"))
        elif event.type == "invocation_linked":
            took = (getattr(payload, "duration_ms", None) or 0.0) / 1000
            items.append(("invocations", at - took, at,
                          f"v{event.version} {getattr(payload, 'tool_name', '')}: {number(took * 1000)} ms"))
        elif event.type in ("metadata_set", "metadata_removed", "data_set", "data_deleted", "data_cleared",
                            "tags_added", "tags_removed"):
            items.append(("changes", at, at, f"v{event.version} {event.type}"))
        else:
            items.append(("lifecycle", at, at, f"v{event.version} {event.type}"))
    start = min(first for _, first, _, _ in items)  # an invocation may have begun before the session's first event
    end = max(last for _, _, last, _ in items)
    lineage = _lineage(ledger, session_id)
    conversation = "".join(
        f'<div class="msg"><span class="role">{escape(m.role)}</span><span class="muted">'
        f"{escape(_when(m.recorded_at) or '')}</span>\n{escape(m.content[:_MESSAGE_TEXT])}"
        f"{' […]' if len(m.content) > _MESSAGE_TEXT else ''}</div>" for m in messages
    )
    verified = ('<span class="ok">its events verify</span>' if data["integrity"]["ok"]
                else '<span class="bad">the chain does not hold</span>')
    return (
        f"<h2>Session {escape(session_id)}</h2><p>{escape(state.status)}, version {state.version},"
        f" {number(stats.message_count)} messages, {number(stats.invocation_count)} invocations,"
        f" {number(stats.tokens_in)} tokens in, {number(stats.tokens_out)} out, cost {number(stats.estimated_cost)};"
        f" {verified}</p>"
        + _figure("timeline", "Timeline: messages, invocations (duration bars), changes",
                  charts.timeline(items, start, end, "session timeline"))
        + _figure("lineage", "Lineage: forks and the sessions it came from",
                  charts.tree(lineage, session_id, "session lineage"))
        + f"<h2>Conversation</h2>{conversation or '<p class=muted>No messages.</p>'}"
    )


def _lineage(ledger: Ledger, session_id: str) -> list[tuple[str, str | None, str]]:
    """The session's ancestors, itself and its forks (and theirs), as (id, parent, label)."""
    nodes: list[tuple[str, str | None, str]] = []
    seen: set[str] = set()
    chain, current = [], ledger.get_session(session_id)
    while current.parent_id is not None and current.parent_id not in seen:
        seen.add(current.session_id)
        current = ledger.get_session(current.parent_id)
        chain.append(current)
    for state in reversed(chain):
        nodes.append((state.session_id, state.parent_id, f"{state.session_id} ({state.status})"))
    queue = [session_id]
    while queue and len(nodes) < 200:
        sid = queue.pop(0)
        state = ledger.get_session(sid)
        nodes.append((sid, state.parent_id, f"{sid} ({state.status})"))
        # A restore is a branch within the session: the history went back to an earlier version and on.
        for event in ledger.history(sid):
            target = getattr(event.payload, "target_version", None)
            if event.type == "restored" and target is not None:
                nodes.append((f"{sid}@v{event.version}", sid,
                              f"v{event.version}: restored to v{target} ({_when(event.recorded_at)})"))
        queue += [s.session_id for s in ledger.list_sessions(parent_id=sid, limit=100).items]
    return nodes
