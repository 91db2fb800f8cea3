"""Scratch outputs: a file or directory is written under a temporary name beside its target and renamed
into place when complete, so an interrupted write never leaves a half-written output under the real name.

The temporary name carries the writer's process id (``NAME.partial-PID``, ``.NAME.partial-PID`` for a
directory). A writer killed before it could clean up leaves its scratch behind, possibly holding a full
copy of the ledger that later purges never reach; the next writer of the same target, or the next open
of a ledger at that path, removes every scratch whose process is gone.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import FileAccessError

_PARTIAL = re.compile(r"\.partial-(\d+)(?:-wal|-shm|-journal)?")


def _stem(target: Path) -> str:
    # A name near the file system's limit is shortened (and made unique by its hash), so the suffix fits.
    name = target.name
    if len(name.encode()) <= 200:
        return name
    return f"{name[:40]}~{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def scratch_path(target: Path, *, hidden: bool = False) -> Path:
    """The temporary name this process writes ``target`` under."""
    name = f".{_stem(target)}" if hidden else _stem(target)
    return target.with_name(f"{name}.partial-{os.getpid()}")


def remove_stale(target: Path) -> list[Path]:
    """Remove the scratch outputs of ``target`` left by processes that are gone; returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        for prefix in (_stem(target), f".{_stem(target)}"):
            if not entry.name.startswith(prefix):
                continue
            match = _PARTIAL.fullmatch(entry.name[len(prefix):])
            if match is None or _alive(int(match.group(1))):
                continue
            try:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            except OSError:
                continue
            removed.append(entry)
            break
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # this process's own scratch is in use
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or not a pid we can ask about: leave it
    return True


@contextmanager
def written(target: Path, field: str, *, directory: bool = False) -> Iterator[Path]:
    """A file (or, with ``directory``, a new private directory) written under a scratch name beside
    ``target`` and renamed onto it when the block ends well; on an error or an interrupt the scratch is
    removed and ``target`` is left untouched. Scratches of dead writers of ``target`` are removed first."""
    remove_stale(target)
    scratch = scratch_path(target, hidden=directory)
    if directory:
        scratch.mkdir(mode=0o700)
    try:
        yield scratch
        try:
            os.replace(scratch, target)
        except OSError as exc:
            raise FileAccessError(f"{field}: cannot write {str(target)!r}: {exc.strerror or exc}", field=field) from exc
    finally:
        if directory:
            shutil.rmtree(scratch, ignore_errors=True)
        for leftover in (scratch, Path(f"{scratch}-wal"), Path(f"{scratch}-shm")):
            try:
                leftover.unlink(missing_ok=True)
            except OSError:  # a directory, or nothing there that can be removed
                pass
