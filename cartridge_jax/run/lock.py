"""One trainer per run directory: an exclusive lock on `<run_dir>/train.lock`.

The lock is an advisory `flock` held for the life of the process, so the kernel releases it
however the process ends (kill -9 included): no stale lock to clean up. The file holds the
owner's pid and host, for the message that refuses a second trainer. Remote run directories
(gs://...) have no such lock; running two trainers on one is up to the user.
"""

from __future__ import annotations

import fcntl
import os
import socket

from etils import epath

from cartridge_jax._files import is_remote

LOCK_NAME = "train.lock"


class LockError(Exception):
    """The run directory is in use or not writable; the message is one line for people."""


class RunLock:
    """`with RunLock(run_dir):` holds the run directory's lock, or raises LockError."""

    def __init__(self, run_dir: epath.Path):
        self._run_dir = run_dir
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        if is_remote(self._run_dir):
            return self
        path = os.fspath(self._run_dir / LOCK_NAME)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise LockError(f"cannot write in the run directory {self._run_dir} "
                            f"({error.strerror}): make it writable or use another --run-dir"
                            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockError(f"another trainer (pid {owner}) is using {self._run_dir}: wait for "
                            "it to finish, stop it, or use another --run-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            # The file stays: removing it would race with a trainer that just opened it.
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
