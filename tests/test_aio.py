"""``AsyncLedger``: the ledger as awaitables, run on one worker thread so the event loop never blocks."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ledger import InvalidInput, Ledger, SessionNotFound, StorageError, UnsupportedFormat
from ledger.aio import AsyncLedger, AsyncSessionHandle
from ledger import SessionHandle

SPECIAL = {"batch", "follow", "history", "last_position", "session"}  # written by hand; the rest are generated


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(main())  # type: ignore[arg-type]


class GatedClock:
    """A ledger clock that, once armed, holds the command calling it until the test releases it."""

    def __init__(self) -> None:
        self.armed = False
        self.inside = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> datetime:
        if self.armed:
            self.inside.set()
            assert self.release.wait(10), "the test never released the command"
        return datetime.now(timezone.utc)


def test_100_concurrent_coroutines_lose_nothing_and_do_not_block_the_loop(ledger_path: str) -> None:
    sessions = [f"s{n}" for n in range(10)]
    agents, per_agent = 100, 10

    async def main() -> tuple[list[list[int]], list[float], float, float, Any]:
        async with AsyncLedger(ledger_path) as led:
            for sid in sessions:
                await led.create_session(sid)
            ticks: list[float] = []
            stop = asyncio.Event()

            async def ticker() -> None:
                while not stop.is_set():
                    ticks.append(time.perf_counter())
                    await asyncio.sleep(0.001)

            async def agent(n: int) -> list[int]:
                sid = sessions[n % len(sessions)]
                versions = [await led.add_message(sid, "user", f"agent {n} message {i}") for i in range(per_agent)]
                versions.append(await led.link_invocation(sid, f"inv-{n}", "tool", duration_ms=1.0))
                assert (await led.get_session(sid)).version >= versions[-1]
                return versions

            ticking = asyncio.create_task(ticker())
            await asyncio.sleep(0)
            start = time.perf_counter()
            versions = await asyncio.gather(*(agent(n) for n in range(agents)))
            end = time.perf_counter()
            stop.set()
            await ticking

            for index, sid in enumerate(sessions):
                mine = sorted(v for n, vs in enumerate(versions) if n % len(sessions) == index for v in vs)
                expected = list(range(2, 2 + (agents // len(sessions)) * (per_agent + 1)))
                assert mine == expected, sid  # every version given out once, none skipped
                assert [e.version async for e in led.history(sid)] == [1, *expected]
                contents = [m.content for m in await led.messages(sid)]
                assert len(contents) == agents // len(sessions) * per_agent
                for n in range(index, agents, len(sessions)):  # each agent's messages in its own order
                    mine_in_order = [c for c in contents if c.startswith(f"agent {n} ")]
                    assert mine_in_order == [f"agent {n} message {i}" for i in range(per_agent)]
            assert await led.last_position() == len(sessions) + agents * (per_agent + 1)
            assert (await led.verify()).ok
            digest = await led.digest()
            return versions, ticks, start, end, digest

    versions, ticks, start, end, digest = run(main)
    during = [t for t in ticks if start <= t <= end]
    # A loop blocked by the writes would tick once or twice; a free one ticks throughout.
    assert len(during) >= 20, f"the ticker ran {len(during)} times in {end - start:.2f} s"
    with Ledger(ledger_path) as led:  # and it is all on disk
        assert led.digest() == digest and led.verify().ok
        assert sum(led.get_session(sid).message_count for sid in sessions) == agents * per_agent


def test_the_loop_runs_while_a_command_is_in_progress(ledger_path: str) -> None:
    clock = GatedClock()

    async def main() -> None:
        async with AsyncLedger(ledger_path, clock=clock) as led:
            clock.armed = True
            command = asyncio.create_task(led.create_session("s"))
            while not clock.inside.is_set():
                await asyncio.sleep(0.001)
            for _ in range(20):  # the command is stuck inside the ledger, and the loop still turns
                await asyncio.sleep(0)
            assert not command.done()
            clock.release.set()
            assert (await command).version == 1

    run(main)


def test_a_call_cancelled_before_it_starts_never_runs(ledger_path: str) -> None:
    clock = GatedClock()

    async def main() -> None:
        async with AsyncLedger(ledger_path, clock=clock) as led:
            await led.create_session("s")
            clock.armed = True
            first = asyncio.create_task(led.add_message("s", "user", "first"))
            second = asyncio.create_task(led.add_message("s", "user", "second"))
            while not clock.inside.is_set():
                await asyncio.sleep(0.001)
            second.cancel()
            while not second.done():  # let the cancellation reach the queued call before the worker frees up
                await asyncio.sleep(0)
            clock.armed = False
            clock.release.set()
            assert await first == 2
            with pytest.raises(asyncio.CancelledError):
                await second
            assert [m.content for m in await led.messages("s")] == ["first"]

    run(main)


def test_a_batch_commits_its_body_in_one_transaction_and_other_tasks_wait(ledger_path: str) -> None:
    async def main() -> None:
        async with AsyncLedger(ledger_path) as led:
            await led.create_session("a")
            await led.create_session("b")
            inside = asyncio.Event()

            async def outsider() -> int:
                await inside.wait()
                return await led.add_message("b", "user", "outside")

            task = asyncio.create_task(outsider())
            async with led.batch() as same:
                assert same is led
                await led.add_message("a", "user", "one")
                inside.set()
                await asyncio.sleep(0.05)
                assert not task.done()  # it waits for the body
                await asyncio.gather(led.add_message("a", "user", "two"), led.set_data("a", "k", 1))
            await task
            events = [e async for e in led.history()]
            body = [e for e in events if e.session_id == "a" and e.version > 1]
            assert [e.position for e in body] == [3, 4, 5]  # consecutive: nothing else got in between
            assert events[-1].session_id == "b"

    run(main)


def test_an_exception_in_a_batch_rolls_back_only_its_body(ledger_path: str) -> None:
    async def main() -> None:
        async with AsyncLedger(ledger_path) as led:
            await led.create_session("a")
            await led.create_session("b")
            inside = asyncio.Event()

            async def outsider() -> int:
                await inside.wait()
                return await led.add_message("b", "user", "outside")

            task = asyncio.create_task(outsider())
            with pytest.raises(RuntimeError):
                async with led.batch():
                    await led.add_message("a", "user", "inside")
                    inside.set()
                    await asyncio.sleep(0.01)
                    raise RuntimeError("roll back")
            assert await task == 2
            assert await led.messages("a") == []
            assert [m.content for m in await led.messages("b")] == ["outside"]
            assert (await led.verify()).ok

    run(main)


def test_batches_do_not_nest_and_aclose_waits_for_them(ledger_path: str) -> None:
    async def main() -> None:
        led = AsyncLedger(ledger_path)
        async with led.batch():
            await led.create_session("a")
            with pytest.raises(InvalidInput):
                async with led.batch():
                    pass
            with pytest.raises(InvalidInput):
                await led.aclose()
        assert (await led.get_session("a")).version == 1
        await led.aclose()
        await led.aclose()  # twice is fine
        with pytest.raises(StorageError):
            await led.get_session("a")
        with pytest.raises(StorageError):
            async with led.batch():
                pass

    run(main)


def test_errors_are_the_ledgers(ledger_path: str, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-ledger.db"
    bad.write_text("hello")

    async def main() -> None:
        async with AsyncLedger(ledger_path) as led:
            with pytest.raises(SessionNotFound):
                await led.add_message("missing", "user", "hi")
            with pytest.raises(InvalidInput):
                await led.create_session("bad id!")
            with pytest.raises(SessionNotFound):
                [e async for e in led.history("missing")]
        with pytest.raises(UnsupportedFormat):
            async with AsyncLedger(bad):
                pass
        with Ledger(ledger_path) as mem, pytest.raises(InvalidInput):
            AsyncLedger(mem, clock=None)

    run(main)


def test_session_handles_and_history_in_chunks(ledger_path: str) -> None:
    async def main() -> None:
        async with AsyncLedger(ledger_path) as led:
            handle = await led.session("s", purpose="chat", tags=["x"])
            assert isinstance(handle, AsyncSessionHandle) and isinstance(handle.handle, SessionHandle)
            assert (await handle.state()).purpose == "chat"
            await handle.add_message("user", "hi")
            await handle.set_data("k", [1])
            child = await handle.fork(new_session_id="child")
            assert (await child.state()).parent_id == "s" and [m.content for m in await child.messages()] == ["hi"]
            await handle.complete()
            with pytest.raises(SessionNotFound):
                await led.session("nope", create=False)
            with led.ledger.batch():  # the sync ledger, from sync code: 2100 events in one go
                for n in range(2100):
                    led.ledger.set_data("child", "n", n)
            assert [e.version async for e in child.history()] == list(range(1, 2102))
            assert len([e async for e in led.history(after=1)]) == 2104

    run(main)


def test_an_open_ledger_can_be_shared_and_stays_open(ledger_path: str) -> None:
    with Ledger(ledger_path) as sync:
        async def main() -> None:
            async with AsyncLedger(sync) as led:
                await led.create_session("a")
                assert led.ledger is sync

        run(main)
        assert sync.get_session("a").version == 1  # still open after aclose


def test_every_public_ledger_method_has_an_awaitable_with_its_signature() -> None:
    public = {name for name in dir(Ledger) if not name.startswith("_")} - {"close", "path", "durability", "limits"}
    assert isinstance(AsyncLedger.limits, property)
    assert public <= set(dir(AsyncLedger))
    assert inspect.iscoroutinefunction(AsyncLedger.aclose)
    for name in sorted(public - SPECIAL):
        ours = getattr(AsyncLedger, name)
        assert inspect.iscoroutinefunction(ours), name
        assert inspect.signature(ours) == inspect.signature(getattr(Ledger, name)), name
        assert inspect.getdoc(ours), name
    handle_public = {name for name in dir(SessionHandle) if not name.startswith("_")} - {"ledger", "session_id"}
    assert handle_public <= set(dir(AsyncSessionHandle))
    for name in sorted(handle_public - {"fork", "history"}):
        assert inspect.signature(getattr(AsyncSessionHandle, name)) == inspect.signature(getattr(SessionHandle, name)), name


def test_a_batch_cancelled_while_it_starts_releases_the_ledger(ledger_path: str) -> None:
    import gc
    import threading
    import time

    async def main() -> None:
        led = AsyncLedger(ledger_path)
        await led.__aenter__()
        await led.create_session("s")

        async def enter() -> None:
            async with led.batch():
                await led.add_message("s", "user", "in batch")

        task = asyncio.create_task(enter())
        await asyncio.sleep(0)
        time.sleep(0.3)  # the worker starts the batch while the loop is held here
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        del task
        gc.collect()
        assert await led.add_message("s", "user", "after") >= 2
        done = threading.Event()
        threading.Thread(target=lambda: (led.ledger.add_message("s", "user", "sync"), done.set()), daemon=True).start()
        assert done.wait(5), "the worker kept the ledger's lock"
        await asyncio.wait_for(led.aclose(), 5)

    run(main)


def test_follow_yields_the_timeline_and_then_each_new_event_without_blocking_other_calls(ledger_path: str) -> None:
    async def main() -> None:
        async with AsyncLedger(ledger_path) as led:
            await led.create_session("a")
            seen = []

            async def tail() -> None:
                async for event in led.follow("a", poll=0.02, timeout=2.0):
                    seen.append(event.version)
                    if event.version == 3:
                        return

            task = asyncio.create_task(tail())
            await asyncio.sleep(0.05)
            await led.add_message("a", "user", "one")  # runs while the follower waits
            await led.add_message("a", "user", "two")
            await asyncio.wait_for(task, 5)
            assert seen == [1, 2, 3]

    run(main)
