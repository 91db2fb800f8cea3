"""Methods made from other methods, so each public signature is declared once.

``delegate`` puts a collaborator's method on the facade (``Ledger.add_message``
is ``Commands.add_message``, called on the ledger's commands); ``for_session``
puts a ledger method on a session handle with the session id filled in. Both
keep the original's name, docstring and signature, so ``help()``, IDEs and
type checkers see the real parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C")


def delegate(attribute: str, method: Callable[Concatenate[C, P], R]) -> Callable[Concatenate[Any, P], R]:
    """A ``Ledger`` method that calls ``method`` on the collaborator held in ``self.<attribute>``."""

    def call(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(getattr(self, attribute), *args, **kwargs)

    call = _like(call, method, method.__doc__)
    call.__qualname__ = f"Ledger.{method.__name__}"
    call.__delegate__ = attribute  # type: ignore[attr-defined]  # read by bind_delegates
    return call


def bind_delegates(instance: object) -> None:
    """Put each delegated method's collaborator method on ``instance`` itself, so a call on the hot path
    (an append, a load) goes straight to it, without a forwarding frame that repacks its arguments."""
    cls = type(instance)
    for name in dir(cls):  # the effective class attributes: a subclass's own override is left alone
        attribute = getattr(getattr(cls, name), "__delegate__", None)
        if attribute is not None:
            setattr(instance, name, getattr(getattr(instance, attribute), name))


class _Bound(Protocol):
    ledger: Any
    session_id: str


def for_session(method: Callable[Concatenate[C, str, P], R], alias: str | None = None) -> Callable[Concatenate[_Bound, P], R]:
    """A handle method (named ``alias``, else as the method): the ledger method of the method's name, with
    the handle's session id as its first argument."""
    name = method.__name__

    def call(self: _Bound, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return getattr(self.ledger, name)(self.session_id, *args, **kwargs)  # type: ignore[no-any-return]  # found by name: Any

    first = (inspect.getdoc(method) or "").partition("\n")[0]
    call = _like(call, method, f"``Ledger.{name}`` for this session: {first}")
    if alias is not None:
        call.__name__ = alias
        call.__qualname__ = f"SessionHandle.{alias}"
    signature = inspect.signature(method)
    params = list(signature.parameters.values())
    call.__signature__ = signature.replace(parameters=[params[0], *params[2:]])  # type: ignore[attr-defined]  # inspect reads it; typeshed omits it
    return call


F = TypeVar("F", bound=Callable[..., Any])


def _like(call: F, method: Callable[..., Any], doc: str | None) -> F:
    call.__name__ = method.__name__
    call.__qualname__ = method.__qualname__
    call.__module__ = method.__module__
    call.__doc__ = doc
    call.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]  # inspect reads it; typeshed omits it
    return call
