"""One process trains in a run folder at a time, with a lock a crash cannot leave stuck.

    with claim_run_folder(RunFolder("runs/ft"), accelerator, inputs=[data_path, init_from]):
        ...  # fit's work: this run folder is ours

``claim_run_folder`` first refuses a run folder that is a file or that is, holds or lies
inside an input (the prepared dataset, the model to start from). Then the main process
takes ``fcntl.flock`` on ``RUN/.lock`` and writes its pid, host, start time and command
there; the other processes of an ``accelerate launch`` belong to the same run and only
learn, through one all-reduce, whether the lock was taken, so that all of them fail alike.
A second run on the same folder gets one error naming the holder. The kernel drops a flock
when its file descriptor closes, however the process ends (an exception, SIGKILL, a lost
notebook kernel): a dead holder never blocks the next run. A run that fails before it
saved anything (no state, no model) removes the files it wrote, and the folder if it made it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from glacier.artifacts.run import RunFolder
from glacier.errors import GlacierError
from glacier.outputs import refuse_inputs, require_kind
from glacier.training.signals import any_process

_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
"""flock errors of file systems without locks (some network mounts): train unlocked, warned."""


class RunLock:
    """The flock on a run folder's lock file, held by one process (see the module docstring)."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        self._handle = None

    def acquire(self) -> str | None:
        """Take the lock; None on success, else why not (the holder, as a sentence)."""
        import fcntl

        path = self.folder.lock_file
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return self.holder_text()
            except OSError as exc:
                handle.close()
                if exc.errno not in _UNSUPPORTED:
                    raise
                print(
                    f"warning: {path}: file locks are not supported here ({exc.strerror}); training unlocked"
                )
                return None
            if _same_file(path, handle):
                break
            handle.close()  # a holder released and removed the file between our open and flock
        handle.truncate(0)
        handle.write(json.dumps(_holder()) + "\n")
        handle.flush()
        self._handle = handle
        return None

    def release(self) -> None:
        """Remove the lock file and drop the lock (removing first: a waiter that opened the
        old file notices it is gone and opens the new one)."""
        if self._handle is None:
            return
        self.folder.lock_file.unlink(missing_ok=True)
        self._handle.close()
        self._handle = None

    def holder_text(self) -> str:
        """Who holds the lock, from what the holder wrote into the lock file."""
        try:
            holder = json.loads(self.folder.lock_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            holder = {}
        if not isinstance(holder, dict) or "pid" not in holder:
            return "another process holds its lock"
        return (
            f"process {holder['pid']} on {holder.get('host', '?')} trains in it since "
            f"{holder.get('started', '?')} ({holder.get('command', '?')})"
        )


def refuse_if_in_use(folder: RunFolder) -> None:
    """Refuse a run folder another process trains in, without taking its lock: a finished
    run that a second command is training over again is not read as finished.

    A shared flock probe (every process of a launch may probe at once; only a trainer's
    exclusive lock conflicts), on the lock file only if it exists (a probe leaves nothing).
    """
    import fcntl

    try:
        handle = open(folder.lock_file, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError:
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise GlacierError(
            f"{folder.path} is in use: {RunLock(folder).holder_text()}; wait for that run to end "
            "(or stop it), or choose another --out"
        ) from None
    except OSError:
        pass  # no locks on this file system: nothing to learn
    finally:
        handle.close()


@contextlib.contextmanager
def claim_run_folder(
    folder: RunFolder, accelerator, inputs: Iterable[str | Path | None] = ()
) -> Iterator[None]:
    """Hold ``folder`` for this run (module docstring); every process enters it."""
    require_kind(folder.path, "folder", "--out")
    refuse_inputs(folder.path, inputs, "--out")
    made, existed = _missing_folders(folder.path), folder.startup_files()
    lock = RunLock(folder)
    problem = lock.acquire() if accelerator.is_main_process else None
    if any_process(accelerator, problem is not None):
        raise GlacierError(
            f"{folder.path} is in use: {problem or lock.holder_text()}; wait for that run to end "
            "(or stop it), or choose another --out"
        )
    try:
        yield
    except BaseException:
        if accelerator.is_main_process and folder.discard_unstarted(existed):
            lock.release()
            for path in made:  # deepest first; only folders this run created, only if empty
                with contextlib.suppress(OSError):
                    path.rmdir()
        raise
    finally:
        lock.release()


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its parents that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _same_file(path: Path, handle) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def _holder() -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["glacier", *sys.argv[1:]]) if sys.argv else "glacier",
    }
