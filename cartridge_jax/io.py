"""Small file helpers shared by everything that writes results."""

from __future__ import annotations

import os
import pathlib
import tempfile


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` so that readers see the old file or the new one, never half.

    The text goes to a temporary file in the same directory, which then replaces `path`.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
