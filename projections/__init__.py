"""The read side: projectors fold the event log into plain SQL tables beside it.

``Projector`` is the base class for your own; ``ANY`` is the metadata filter
value meaning "key present"; the rest are the shapes queries return.
"""

from .analytics import Statistics, ToolUsage
from .base import ProjectionRunner, Projector
from .queries import ANY, Page, SessionFilter, SessionSummary
from .records import Record, RecordsProjector
from .search import SearchHit, SearchProjector
from .sessions import SessionsProjector

__all__ = [
    "ANY",
    "Page",
    "ProjectionRunner",
    "Projector",
    "Record",
    "RecordsProjector",
    "SearchHit",
    "SearchProjector",
    "SessionFilter",
    "SessionSummary",
    "SessionsProjector",
    "Statistics",
    "ToolUsage",
]
