"""Small file helpers shared by everything that writes results.

Paths may be local or remote (`gs://bucket/...`, any scheme etils' epath knows); remote ones go
through `etils.epath`, which needs the scheme's filesystem package (gcsfs for gs://).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import tempfile
from collections.abc import Callable

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


def sha256_of(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, hex, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with epath.Path(path).open("rb") as handle:
        while piece := handle.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()


def folder_sums(folder: str | os.PathLike, *,
                skip: Callable[[str], bool] = lambda relative: False) -> dict[str, dict]:
    """{relative path: {"bytes": size, "sha256": hex}} of every file under `folder` (paths
    with "/", sorted), leaving out those for which `skip(relative path)` is true."""
    folder = epath.Path(folder)
    sums = {}
    for parent, _, names in folder.walk():
        for name in names:
            path = parent / name
            relative = path.relative_to(folder).as_posix()
            if not skip(relative):
                sums[relative] = {"bytes": path.stat().length, "sha256": sha256_of(path)}
    return dict(sorted(sums.items()))


def sum_differences(folder: str | os.PathLike, sums: dict[str, dict]) -> list[str]:
    """How the files under `folder` differ from `sums` (as `folder_sums` wrote them): a
    missing file, another size, other bytes. Files not in `sums` are not looked at."""
    folder = epath.Path(folder)
    differences = []
    for relative, expected in sums.items():
        path = folder / relative
        if not path.is_file():
            differences.append(f"{relative} is missing")
            continue
        size = path.stat().length
        if size != expected["bytes"]:
            differences.append(f"{relative} has {size} bytes, {expected['bytes']} when written")
        elif sha256_of(path) != expected["sha256"]:
            differences.append(f"{relative} differs from its checksum")
    return differences
