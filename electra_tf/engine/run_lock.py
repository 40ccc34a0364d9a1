"""One training job per model_dir: an advisory lock held for the run's lifetime.

Two jobs writing checkpoints into one directory would interleave their
`ckpt-*` files and `checkpoint` state, and each would resume from the other's
steps. The chief of a run takes an exclusive `flock` on
`model_dir/.electra_tf.lock` and writes who it is into the file; a second job
fails at once with that description. The kernel drops the lock when the
holder exits, however it dies (SIGKILL, OOM, a lost node), so a stale file
never blocks a rerun. Workers of a multi-worker job do not lock: they write
to their own temporary directories and only the chief writes model_dir.

`flock` is local to one host (and unreliable on some network filesystems);
remote model_dirs (`gs://`, `s3://`, ...) are not locked.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import sys

LOCK_FILE = ".electra_tf.lock"


class ModelDirInUseError(ValueError):
    """Another live job holds the model_dir."""


class RunLock:
    """An exclusive lock on `model_dir` (released by `release` or process exit).

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> lock = RunLock(d)
        >>> lock.acquire()
        >>> RunLock(d).acquire()
        Traceback (most recent call last):
        ...
        electra_tf.engine.run_lock.ModelDirInUseError: ...
        >>> lock.release()
    """

    def __init__(self, model_dir: str):
        self.model_dir = model_dir
        self.path = os.path.join(model_dir, LOCK_FILE)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Takes the lock or raises ModelDirInUseError naming the holder."""
        if "://" in self.model_dir:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read(fd)
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise ModelDirInUseError(
                f"--model_dir={self.model_dir} is in use by another training job "
                f"({describe(holder)}). Wait for it to finish or stop it, or use another "
                "--model_dir."
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(sys.argv),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode("utf-8"), 0)
        self._fd = fd

    @property
    def held(self) -> bool:
        """True while this process holds the lock (never for remote dirs)."""
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 65536, 0).decode("utf-8") or "{}")
    except (ValueError, OSError):
        return {}


def describe(holder: dict) -> str:
    """'pid 123 on host-a since 2026-...: python -m ...' from a lock file's contents."""
    if not holder:
        return "holder unknown"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}: "
        f"{holder.get('command')}"
    )
