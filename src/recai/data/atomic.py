"""Write files and folders so that a crash never leaves a half-written result behind.

Everything is first written under a temporary name next to the target, then renamed into place, which
is atomic on POSIX file systems when source and target share a directory. Temporary names are
``.NAME.tmp-PID-RANDOM`` (and ``.NAME.old-PID`` for the folder being replaced), so that what a crashed
process left behind can be recognised and removed later by :func:`remove_stale_temporaries`, without
touching anything that is not recai's own or that a live process is still writing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

#: recai's own temporary names: ``.NAME.tmp-PID-RANDOM``, ``.NAME.old-PID``, and the pid-less
#: ``.NAME.tmp-RANDOM`` that versions before 0.1.1 wrote (recognised by age only).
_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?:tmp-(?:(?P<pid>\d+)-)?[A-Za-z0-9_]{6,}|old-(?P<old>\d+))$")
#: A pid-less temporary this old cannot belong to a write in progress.
LEGACY_STALE_AFTER_S = 3600.0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_directory(target: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``target`` only if the block finishes without error."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists (pass overwrite=True to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the result should look like any new folder
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    backup: Path | None = None
    if target.exists():
        backup = target.with_name(f".{target.name}.old-{os.getpid()}")
        if backup.exists():
            shutil.rmtree(backup)
        target.rename(backup)
    try:
        tmp.rename(target)
    except BaseException:
        if backup is not None:
            backup.rename(target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path; it is renamed onto ``target`` only if the block succeeds.

    The caller writes to the yielded path with any library that takes a path (pandas, pyarrow, yaml).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; the result should look like any new file
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(target: str | Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_file(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def process_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine. A zombie (killed, not yet reaped by its
    parent) still answers ``kill(pid, 0)`` but counts as gone; someone else's process counts as alive."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        with Path(f"/proc/{pid}/stat").open(encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (not Linux), or the process just ended
        return True


def _started_at(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), where /proc tells (Linux); else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, after the parenthesised name
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _owner_is_gone(pid: int, written_at: float) -> bool:
    """Whether the process that wrote a temporary at ``written_at`` is gone: no process has its pid, or
    the one that has it started later (the pid was reused, e.g. PID 1 in every container start)."""
    if not process_alive(pid):
        return True
    started = _started_at(pid)
    return started is not None and written_at < started - 1.0


def remove_stale_temporaries(folder: str | Path, *, now: float | None = None) -> list[Path]:
    """Delete what interrupted atomic writes left in ``folder``: recai's own temporary names whose
    writer process is gone (no such pid, or a process with that pid that started after the temporary
    was written), or, for pid-less legacy names, that are over an hour old. Returns what was removed.
    Anything else in the folder, and temporaries of live writers, are left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    removed: list[Path] = []
    for entry in folder.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match is None or entry.is_symlink():
            continue
        pid = match.group("pid") or match.group("old")
        try:
            written_at = entry.stat().st_mtime
        except FileNotFoundError:
            continue
        if pid is not None:
            stale = _owner_is_gone(int(pid), written_at)
        else:
            stale = now - written_at > LEGACY_STALE_AFTER_S
        if not stale:
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
