"""Shared fixtures: a ledger in memory and in a real file, a controllable clock, a table dump."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ledger import Ledger


class Clock:
    """A clock that moves only when told to (one millisecond per reading by default)."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc), step_ms: int = 1) -> None:
        self.now = start
        self.step = timedelta(milliseconds=step_ms)

    def __call__(self) -> datetime:
        current = self.now
        self.now += self.step
        return current


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture(params=["memory", "file"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    """The contract suite runs against both an in-memory and a file ledger."""
    path = ":memory:" if request.param == "memory" else str(tmp_path / "contract.db")
    with Ledger(path, clock=clock) as led:
        yield led


def dump(led: Ledger) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, for asserting that nothing was written."""
    conn: sqlite3.Connection = led._log.conn
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables if not t.startswith("sqlite_")}
