"""The optional extras: which one installs what, and the one-line error when it is missing.

An optional dependency (psycopg, the MCP SDK, the OpenAI Agents SDK) is imported
only where it is used, through ``require_extra``, so a missing one — or a missing
package it depends on — is a ``MissingExtra`` naming the extra to install, never
a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtra

#: The extras of session-ledger, and what each one installs.
EXTRAS = {
    "postgres": "psycopg 3, for PostgreSQL ledgers",
    "mcp": "the official MCP SDK 2.x",
    "agents": "the OpenAI Agents SDK",
    "langgraph": "langgraph-checkpoint 4.x, for the LangGraph checkpointer",
    "adk": "google-adk 2.x, for the ADK session service",
    "otel": "the OpenTelemetry SDK, for the span exporter",
}


def missing_extra(extra: str, needed_for: str, exc: ImportError) -> MissingExtra:
    """The error for ``needed_for`` failing to import because ``extra`` is not (fully) installed, or is of a
    version without what it needs."""
    reason = f"no module named {exc.name!r}" if isinstance(exc, ModuleNotFoundError) and exc.name else str(exc)
    return MissingExtra(
        f"{needed_for} needs the '{extra}' extra ({EXTRAS[extra]}), missing or too old here ({reason}):"
        f" pip install 'session-ledger[{extra}]'",
        extra=extra,
    )


def require_extra(module: str, extra: str, needed_for: str) -> ModuleType:
    """Import ``module``, which needs ``extra``; raises ``MissingExtra`` naming the extra when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(extra, needed_for, exc) from exc
