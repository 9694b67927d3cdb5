"""One writer per folder: a shard set or a run folder is held by one process, and a second is refused at start
with the holder's pid, host and start time.

The lock is `flock` on `<folder>/.lock`, which the kernel releases when the holder dies however it dies (kill -9
included), so the lock of a dead process is simply taken over; the holder's identity is written into the file only
for the message. Across hosts it relies on the shared filesystem honouring flock: Linux maps it to POSIX locks on
NFS (v3 with lockd, v4 natively; a dead host's lock is freed when its lease expires, about 90 s), Lustre needs the
`flock` mount option (not `localflock`), GPFS and CephFS honour it. On a filesystem that refuses locks the lock
is an error naming the folder, never silently skipped.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".lock"


class FolderInUseError(RuntimeError):
    """Another live process holds the folder."""


def holder_description(lock_path: Path) -> str:
    """Who holds the lock, as its holder wrote it (pid, host, command, since)."""
    try:
        holder = json.loads(lock_path.read_text())
        return f"pid {holder['pid']} on {holder['host']} ({holder['what']}, since {holder['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (it has not written its name yet)"


@contextmanager
def exclusive_folder(folder: Path, what: str) -> Iterator[None]:
    """Hold `folder` for this process while the block runs; `what` names this writer in a refusal message."""
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EACCES):
                raise FolderInUseError(
                    f"{folder} is in use by {holder_description(lock_path)}: wait for it to finish, stop it, or "
                    "write to another folder"
                ) from None
            raise OSError(
                error.errno, f"cannot lock {lock_path} ({error.strerror}): this filesystem refuses file locks"
            ) from None
        since = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "what": what, "since": since}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays, so no opener can race its deletion
