"""A workflow helper: each step's input, output and result in session data, each step an invocation.

The seeds' workflow engine keeps a key-value store per run (inputs, step
results) and links agent invocations to the run's session. Here a run is a
session; every step writes, under ``step.<name>.``:

==================  ==========================================================
key                 value
==================  ==========================================================
``.input``          the step's input, when one is given
``.status``         ``"running"`` while the block runs, then ``"ok"`` or ``"error"``
``.output``         what the block set as ``step.output`` (absent when it set nothing)
``.error``          ``"ExceptionType: message"`` when the step failed
==================  ==========================================================

and links one invocation (``tool_name`` = the step name, ``duration_ms`` of
the block measured with ``time.perf_counter``, ``status`` ``ok``/``error``,
tokens and cost when given). The start and the end of a step are each one
transaction. A step run again under the same name overwrites its keys (each
run keeps its own invocation, and the log keeps every value). An exception in
the block is recorded, then re-raised unchanged.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any, ParamSpec, TypeVar

from .. import InvalidInput, Ledger, SessionHandle
from ..ids import new_id as default_new_id

P = ParamSpec("P")
R = TypeVar("R")

RUNNING, OK, ERROR = "running", "ok", "error"
_PARTS = ("input", "output", "status", "error")
_MAX_ERROR_CHARS = 4000  # an exception's text can be huge; the start says what failed
_UNSET: Any = object()


class Step:
    """One running step, yielded by ``Workflow.step``: set ``output`` (and ``tokens``, ``cost``,
    ``artifact`` when known only inside the block); ``status``, ``error`` and ``duration_ms`` are
    filled in when it ends."""

    __slots__ = ("artifact", "cost", "duration_ms", "error", "input", "invocation_id", "name", "output", "status", "tokens")

    def __init__(
        self,
        name: str,
        input: Any,
        *,
        invocation_id: str,
        tokens: Mapping[str, int] | None,
        cost: float | None,
        artifact: str | None,
    ) -> None:
        self.name = name
        self.input = input
        self.output: Any = _UNSET
        self.invocation_id = invocation_id
        self.tokens = tokens
        self.cost = cost
        self.artifact = artifact
        self.status = RUNNING
        self.error: str | None = None
        self.duration_ms: float | None = None

    def __repr__(self) -> str:
        return f"Step({self.name!r}, status={self.status!r}, invocation_id={self.invocation_id!r})"


class Workflow:
    """Record workflow steps in one session: ``Workflow(handle)`` or ``Workflow(ledger, session_id)``.

    Given a ``Ledger``, the session is opened with ``ledger.session(session_id)``:
    created when missing (an id is generated when ``session_id`` is None).
    ``timer`` (seconds, default ``time.perf_counter``) and ``new_id`` (invocation
    ids) can be injected. Raises ``InvalidInput`` for a bad target.
    """

    def __init__(
        self,
        target: SessionHandle | Ledger,
        session_id: str | None = None,
        *,
        prefix: str = "step.",
        timer: Callable[[], float] = time.perf_counter,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        if isinstance(target, SessionHandle):
            if session_id is not None:
                raise InvalidInput("give a SessionHandle or a Ledger and a session_id, not both", field="session_id")
            self.session = target
        elif isinstance(target, Ledger):
            self.session = target.session(session_id)
        else:
            raise InvalidInput(f"target must be a SessionHandle or a Ledger; got {target!r}", field="target")
        if not isinstance(prefix, str):
            raise InvalidInput(f"prefix must be a string; got {prefix!r}", field="prefix")
        for name, value in (("timer", timer), ("new_id", new_id)):
            if value is not None and not callable(value):
                raise InvalidInput(f"{name} must be a callable; got {value!r}", field=name)
        self.prefix = prefix
        self._timer = timer
        self._new_id = new_id or default_new_id

    def __repr__(self) -> str:
        return f"Workflow({self.session!r})"

    def key(self, name: str, part: str) -> str:
        """The data key of one part (input, output, status or error) of a step."""
        return f"{self.prefix}{name}.{part}"

    @contextmanager
    def step(
        self,
        name: str,
        input: Any = None,
        *,
        tokens: Mapping[str, int] | None = None,
        cost: float | None = None,
        artifact: str | None = None,
    ) -> Iterator[Step]:
        """Run the block as the step ``name``: record its input and status, time it, then record its
        output and result and link it as an invocation. An exception in the block is recorded as the
        step's error and re-raised.

        Raises ``InvalidInput`` for a bad name or an input that is not JSON (before the block runs),
        and the ledger's errors (e.g. ``SessionClosed``) when the step cannot be recorded.
        """
        if not isinstance(name, str) or not name or "\x00" in name:
            raise InvalidInput(
                f"step name must be a non-empty string; got {name!r}", session_id=self.session.session_id, field="name"
            )
        step = Step(name, input, invocation_id=self._new_id(), tokens=tokens, cost=cost, artifact=artifact)
        handle = self.session
        with self._transaction():
            if input is None:
                handle.delete_data(self.key(name, "input"))
            else:
                handle.set_data(self.key(name, "input"), input)
            handle.delete_data(self.key(name, "output"))
            handle.delete_data(self.key(name, "error"))
            handle.set_data(self.key(name, "status"), RUNNING)
        start = self._timer()
        try:
            yield step
        except BaseException as exc:
            step.duration_ms = max(0.0, (self._timer() - start) * 1000)
            step.status, step.error = ERROR, _describe(exc)
            try:
                self._finish(step)
            except Exception as failure:  # the step's own exception matters more; say why it is not recorded
                exc.add_note(f"session-ledger could not record step {name!r}: {failure}")
            raise
        step.duration_ms = max(0.0, (self._timer() - start) * 1000)
        step.status = OK
        try:
            self._finish(step)
        except InvalidInput as bad:  # the output, tokens or cost cannot be stored: the step fails after all
            step.status, step.error = ERROR, f"the step's result could not be recorded: {bad}"
            step.output, step.tokens, step.cost, step.artifact = _UNSET, None, None, None
            self._finish(step)
            raise

    def task(
        self, name: str | None = None, *, record_input: bool = True, record_output: bool = True
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a function so that every call runs as a step (named after the function unless
        ``name`` is given): its arguments (a dict by parameter name) as the input, its return value
        as the output. Both must be JSON, or switched off with ``record_input`` / ``record_output``.
        Works as ``@run.task`` and as ``@run.task()``."""
        if callable(name):  # used bare, as @run.task
            return self.task()(name)
        if name is not None and not isinstance(name, str):
            raise InvalidInput(f"a step name must be a string; got {name!r}", field="name")

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            if inspect.iscoroutinefunction(fn):
                raise InvalidInput(f"{fn.__name__} is a coroutine function; Workflow records synchronous steps", field="fn")
            step_name = name if name is not None else fn.__name__
            signature = inspect.signature(fn)

            @functools.wraps(fn)
            def run(*args: P.args, **kwargs: P.kwargs) -> R:
                given = None
                if record_input:
                    bound = signature.bind(*args, **kwargs)
                    bound.apply_defaults()
                    given = dict(bound.arguments)
                with self.step(step_name, given) as step:
                    result = fn(*args, **kwargs)
                    if record_output:
                        step.output = result
                return result

            return run

        return decorate

    def results(self) -> dict[str, dict[str, Any]]:
        """Every step recorded in the session's data now: ``{name: {"status": ..., "input": ...,
        "output": ..., "error": ...}}`` with the parts present, steps in the order first recorded."""
        out: dict[str, dict[str, Any]] = {}
        for key, value in self.session.get_data().items():
            if not key.startswith(self.prefix):
                continue
            name, _, part = key[len(self.prefix):].rpartition(".")
            if name and part in _PARTS:
                out.setdefault(name, {})[part] = value
        return out

    # -- recording ------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction for the writes in the block; inside a batch of this thread, that batch's."""
        with ExitStack() as stack:
            try:
                stack.enter_context(self.session.ledger.batch())
            except InvalidInput as exc:
                if exc.field != "batch":
                    raise
            yield

    def _finish(self, step: Step) -> None:
        handle, name = self.session, step.name
        with self._transaction():
            if step.output is not _UNSET:  # first: when it is refused, nothing of the end is written yet
                handle.set_data(self.key(name, "output"), step.output)
            handle.link_invocation(
                step.invocation_id, name, duration_ms=step.duration_ms, tokens=step.tokens, cost=step.cost,
                status=step.status, artifact=step.artifact,
            )
            if step.error is not None:
                handle.set_data(self.key(name, "error"), step.error)
            handle.set_data(self.key(name, "status"), step.status)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"
