"""Small file helpers shared by everything that writes results.

Paths may be local or remote (`gs://bucket/...`, any scheme etils' epath knows); remote ones go
through `etils.epath`, which needs the scheme's filesystem package (gcsfs for gs://).
"""

from __future__ import annotations

import os
import pathlib
import tempfile

from etils import epath


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; results are shared files (a web server
# running as another user serves model.onnx and stats.json), so they get the usual mode.
_FILE_MODE = 0o666 & ~_umask()


def is_remote(path: str | os.PathLike) -> bool:
    """Whether `path` names an object in a store (gs://, s3://, ...) rather than a local file."""
    return "://" in os.fspath(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes `data` to `path` so that readers see the old file or the new one, never half.

    Locally the data goes to a temporary file in the same directory, which then replaces `path`.
    """
    if is_remote(path):
        # An object store replaces an object whole once its upload completes (and has no atomic
        # rename to build on), so one direct write keeps the promise.
        target = epath.Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write_bytes` of `text` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))
