"""Settings for the ``ledger`` command: from arguments first, then the environment, validated by pydantic."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from .errors import InvalidInput

# setting -> environment variable
ENVIRONMENT = {
    "path": "LEDGER_PATH",
    "snapshot_every": "LEDGER_SNAPSHOT_EVERY",
    "retention_days": "LEDGER_RETENTION_DAYS",
    "durability": "LEDGER_DURABILITY",
}


class Settings(pydantic.BaseModel):
    """Where the ledger is and how to open it; ``Settings.load`` reads arguments, then the environment."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    path: str = pydantic.Field("ledger.db", min_length=1)
    snapshot_every: int = pydantic.Field(100, ge=0)
    retention_days: int | None = pydantic.Field(None, ge=1)
    durability: Literal["normal", "full"] = "normal"

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **given: Any) -> Settings:
        """Settings from the given values (None means "not given"), else the environment, else defaults.

        Raises ``InvalidInput`` naming the setting and where its bad value came from.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        source: dict[str, str] = {}
        for name, variable in ENVIRONMENT.items():
            if given.get(name) is not None:
                values[name], source[name] = given[name], f"--{name.replace('_', '-')}"
            elif env.get(variable, "") != "":
                values[name], source[name] = env[variable], variable
        try:
            return cls(**values)
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else "settings"
            raise InvalidInput(
                f"bad setting {name} (from {source.get(name, 'default')}): {error['msg']}; got {values.get(name)!r}",
                field=name,
            ) from exc
