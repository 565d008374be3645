"""Writing files so that a reader — or the next run after a crash — sees the old file or the new one,
never a part."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Snapshots, baselines, reports and certificates hold no secret in clear (only keyed hashes).
DEFAULT_MODE = 0o644


def write_atomically(path: Path, text: str, mode: int = DEFAULT_MODE) -> None:
    """Replace `path` with `text` atomically; OSError propagates for the caller to explain.

    The temporary file lives in the same directory (os.replace is atomic only within one file system) and
    is fsync'ed before the rename, and the directory after it, so a crash cannot leave an empty file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
