"""Adapters that plug the ledger into the tools agent builders already use (each an optional extra).

``run_to_completion`` is what the asynchronous adapters share: a blocking ledger call on a worker thread
that a cancelled caller still waits for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


async def run_to_completion(call: Callable[[], _T]) -> _T:
    """Run a blocking ledger call in a worker thread; if the caller is cancelled meanwhile, let the call
    finish first (a thread cannot be stopped), so cancellation never hides a half-known outcome."""
    task = asyncio.ensure_future(asyncio.to_thread(call))
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            cancelled = cancelled or exc
    if cancelled is not None:
        if not task.cancelled():
            task.exception()  # retrieved, so it is not reported as never retrieved
        raise cancelled
    return task.result()
