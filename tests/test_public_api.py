"""The public surface: ``ledger.__all__`` lists exactly the public names, each documented."""

from __future__ import annotations

import inspect

import ledger
from ledger import errors


def test_all_lists_exactly_the_public_names_sorted() -> None:
    # The names load lazily (PEP 562), so they are listed by dir(), not yet all in vars().
    public = {name for name in dir(ledger) if not name.startswith("_") and not inspect.ismodule(getattr(ledger, name))}
    assert set(ledger.__all__) == public
    assert ledger.__all__ == sorted(ledger.__all__)


def test_every_public_name_and_method_has_a_docstring() -> None:
    for name in ledger.__all__:
        obj = getattr(ledger, name)
        assert inspect.getdoc(obj), name
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and callable(member):
                    assert inspect.getdoc(member), f"{name}.{attr}"


def test_every_error_derives_from_ledger_error_and_is_exported() -> None:
    classes = [c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, Exception) and c.__module__ == errors.__name__]
    assert all(issubclass(c, ledger.LedgerError) for c in classes)
    assert {c.__name__ for c in classes} <= set(ledger.__all__)
