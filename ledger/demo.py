"""The demonstration behind ``ledger demo`` / ``make demo``: a small multi-agent run, recorded and read back.

Each run records new sessions (ids are generated), so it can run any number
of times on the same file; what it prints is this run's sessions plus the
whole file's verification.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import Ledger
from .output import table, wrapped


def run_demo(path: str, echo: Callable[[str], Any] = print) -> list[str]:
    """Record a planner / coder / reviewer scenario into ``path``; print and return its session ids."""
    with Ledger(path) as ledger:
        before = ledger.last_position
        plan = ledger.create_session(
            user_id="alice",
            purpose="Fix the flaky checkout test",
            tags=["bug-fix", "ci"],
            metadata={"agent_role": "planner", "model": "gpt-4.1", "is_starred": True},
        )
        pid = plan.session_id
        ledger.add_message(pid, "user", "The checkout test fails one run in ten. Find out why and fix it.")
        ledger.add_message(
            pid,
            "assistant",
            "Plan: 1) rerun the test 50 times, 2) read the failing traces, 3) patch, 4) review.",
            model="gpt-4.1",
            tokens={"input": 412, "output": 96},
        )
        ledger.set_data(pid, "plan", ["rerun", "trace", "patch", "review"])

        code = ledger.create_session(
            user_id="alice",
            purpose="Implement the checkout fix",
            tags=["bug-fix"],
            metadata={"agent_role": "coder", "model": "claude-sonnet", "parent": pid},
        )
        cid = code.session_id
        # One agent step writes several events at once: all or nothing.
        with ledger.batch():
            ledger.add_message(cid, "assistant", "Running the test suite 50 times.", model="claude-sonnet",
                               tokens={"input": 230, "output": 31})
            ledger.link_invocation(cid, "inv-pytest-1", "pytest", duration_ms=48210.5,
                                   tokens={"input": 0, "output": 0}, cost=0.0, artifact="file:///runs/pytest-1/")
            ledger.add_message(cid, "tool", "5 failed, 45 passed: TimeoutError in wait_for_payment",
                               tool_name="pytest", invocation_id="inv-pytest-1")
        ledger.link_invocation(cid, "inv-llm-2", "code_search", duration_ms=812.0,
                               tokens={"input": 5120, "output": 640}, cost=0.0231)
        ledger.add_message(cid, "assistant", "The payment mock resolves after the 2 s timeout under load; "
                           "raising the timeout and awaiting the mock fixes it.", model="claude-sonnet",
                           tokens={"input": 1800, "output": 120})
        ledger.set_data(cid, "step.patch", {"files": ["tests/test_checkout.py"], "lines_changed": 4})
        ledger.link_invocation(cid, "inv-pytest-2", "pytest", duration_ms=51002.0, status="ok")
        ledger.add_message(cid, "tool", "50 passed", tool_name="pytest", invocation_id="inv-pytest-2")
        ledger.set_metadata(cid, "review_state", "requested", modified_by="coder")
        ledger.complete_session(cid, reason="patch verified with 50 green runs")

        review = ledger.create_session(
            user_id="bob",
            purpose="Review the checkout fix",
            tags=["review"],
            metadata={"agent_role": "reviewer", "model": "gpt-4.1-mini"},
        )
        rid = review.session_id
        ledger.add_message(rid, "system", "You review diffs for correctness and style.")
        ledger.add_message(rid, "assistant", "Looks right; the timeout should be a named constant.",
                           model="gpt-4.1-mini", tokens={"input": 900, "output": 40})
        ledger.link_invocation(rid, "inv-lint-1", "ruff", duration_ms=310.0, status="error")
        ledger.complete_session(rid, "failed", reason="lint step errored")
        ledger.add_tags(rid, ["needs-human"])  # tags and metadata still annotate a closed session
        ledger.update_metadata(pid, {"outcome": "fixed", "is_starred": False}, modified_by="alice")
        ledger.complete_session(pid)

        ids = [pid, cid, rid]
        sessions = [ledger.get_session(i) for i in ids]
        echo(wrapped(f"Recorded {ledger.last_position - before} events in 3 sessions into {ledger.path}.", 4) + "\n")
        echo("Sessions")
        echo(table(
            [[s.session_id, s.metadata.get("agent_role"), s.status, s.message_count, s.invocation_count,
              s.tokens_in, s.tokens_out, round(s.estimated_cost, 4), ",".join(s.tags)] for s in sessions],
            ["session", "role", "status", "msgs", "calls", "tok in", "tok out", "cost $", "tags"],
        ))
        echo(f"\nConversation of the coder session {cid}")
        for m in ledger.messages(cid):
            who = m.role + (f"[{m.tool_name}]" if m.tool_name else "")
            echo(wrapped(f"  v{m.version:<3} {who:<14} {m.content}", 22))
        echo(wrapped(f"\nWorkflow data of the coder session: {ledger.get_data(cid)}", 4))
        echo("\nQueries")
        fixes = ledger.list_sessions(tags=["bug-fix"], status="completed", created_after=plan.created_at)
        echo(wrapped(f"  completed bug-fix sessions this run: {[x.session_id for x in fixes.items]}", 4))
        coders = ledger.list_sessions(metadata={"agent_role": "coder"}, created_after=plan.created_at)
        echo(wrapped(f"  sessions whose agent_role is coder: {[x.session_id for x in coders.items]}", 4))
        for hit in ledger.search_messages("timeout", limit=2):
            echo(wrapped(f"  search 'timeout': {hit.session_id} v{hit.version} {hit.snippet}", 4))
        echo("\nUsage by tool (the whole file)")
        echo(table(
            [[r["tool"] or "(none)", r["sessions"], r["invocations"], r["tokens_in"], r["tokens_out"],
              round(r["cost"], 4), round(r["p95_duration_ms"] or 0)] for r in ledger.usage(by="tool")],
            ["tool", "sessions", "calls", "tok in", "tok out", "cost $", "p95 ms"],
        ))
        echo("\nTime travel")
        before_fix = ledger.get_session(cid, version=4)
        echo(wrapped(f"  coder at version 4: {before_fix.message_count} messages, data {before_fix.data},"
                     f" status {before_fix.status}", 4))
        alt = ledger.fork(cid, version=4)
        ledger.add_message(alt.session_id, "assistant", "Alternative: mock the clock instead of raising the timeout.")
        echo(wrapped(f"  forked {alt.session_id} from {alt.parent_id} v{alt.parent_version}: "
                     f"{[m.content[:40] for m in ledger.messages(alt.session_id)][-2:]}", 4))
        ledger.set_data(alt.session_id, "draft", "clock-mock")
        ledger.restore(alt.session_id, version=2)
        kept = len(list(ledger.history(alt.session_id)))
        echo(wrapped(f"  restored the fork to v2: data now {ledger.get_data(alt.session_id)}, "
                     f"{len(ledger.messages(alt.session_id))} messages, all {kept} events still in its history", 4))
        echo("\nLast 6 events of the audit trail")
        tail = list(ledger.history(after=max(ledger.last_position - 6, 0)))
        echo(table(
            [[e.position, e.recorded_at, e.session_id, e.version, e.type, e.hash[:16]] for e in tail],
            ["pos", "recorded", "session", "ver", "type", "hash"],
        ))
        report = ledger.verify()
        head = report.head
        status = "ok" if report.ok else f"FAILED at {report.first_bad_position}: {report.reason}"
        echo(wrapped(f"\nverify: {status}, {report.checked} events checked; chain head {head.position} {head.hash[:16]}...", 4))
        return ids
