"""Atomic file writes: readers see the old file or the new one, never half of either.

Each write goes to a temporary file in the same folder, is flushed and fsynced, given the usual
permissions (``0666`` less the umask) and moved over the target with ``os.replace``. A process
killed before ``os.replace`` leaves its temporary (``.<name>.XXXXXXXX.tmp``) behind:
`remove_stale_temps` removes those: a `w2s_theory.results_table.ResultTable` calls it when it
opens its table, and the ``real`` and ``features extract`` commands call it on their cache
folders when they start (``w2s_theory.cli.common.remove_cache_temps``).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from ._validation import ArgumentTypeError, check_number, check_path

__all__ = ["atomic_write_bytes", "atomic_write_text", "current_umask", "remove_stale_temps",
           "process_start_time", "TEMP_PATTERN"]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (readers see the old or the new file, never half).

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
        >>> atomic_write_bytes(p, b"hello"); p.read_bytes()
        b'hello'
        >>> oct(p.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
        True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the file the usual permissions (0666 less the umask).
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text version of `atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


#: The temporary files `atomic_write_bytes` creates: ``.<target name>.<8 random chars>.tmp``
#: (``tempfile.mkstemp``'s names) in the target's folder.
TEMP_PATTERN = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp\Z")


def process_start_time() -> float:
    """When this process started (seconds since the epoch; the import time of this module when
    the operating system does not say)."""
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # noqa: BLE001 - psutil missing or the OS refuses: a later bound is safe
        return _IMPORTED_AT


_IMPORTED_AT = time.time()


def remove_stale_temps(folder: str | os.PathLike, *, names: Iterable[str] | None = None,
                       older_than: float | None = None) -> list[Path]:
    """Remove the temporary files a killed `atomic_write_bytes` left in ``folder``.

    Only files named like this module's temporaries (`TEMP_PATTERN`,
    ``.<target>.XXXXXXXX.tmp``), for the targets ``names`` when given, last modified before
    ``older_than`` (default: the start of this process, `process_start_time`: a writer
    that is running now created its temporary later) are removed. Other files, folders and
    links are never touched. A file that vanishes meanwhile (another cleaner) is skipped.

    Args:
        folder: the folder to clean (a missing folder has nothing to clean).
        names: target file names (``"main.csv"``) whose temporaries may be removed; ``None``:
            any target.
        older_than: a time (seconds since the epoch); only temporaries older than it go.

    Returns:
        the removed paths.

    Examples:
        >>> import tempfile, pathlib, os
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / ".r.csv.ab12cd34.tmp").write_text("half a tab"); os.utime(d / ".r.csv.ab12cd34.tmp", (0, 0))
        >>> _ = (d / "notes.tmp").write_text("mine")
        >>> [p.name for p in remove_stale_temps(d)], sorted(p.name for p in d.iterdir())
        (['.r.csv.ab12cd34.tmp'], ['notes.tmp'])
    """
    folder = check_path(folder, "folder")
    if names is not None:
        if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
            raise ArgumentTypeError(f"names: must be a list of file names, got {names!r:.60}")
        names = list(names)
        for n in names:
            if not isinstance(n, str) or not n or "/" in n or os.sep in n:
                raise ValueError(f"names: each must be a plain file name, got {n!r}")
        wanted = set(names)
    cutoff = (process_start_time() if older_than is None
              else check_number(older_than, "older_than", allow_inf=True))
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in folder.iterdir():
        m = TEMP_PATTERN.match(p.name)
        if m is None or (names is not None and m.group("target") not in wanted):
            continue
        try:
            st = p.lstat()
            if not stat.S_ISREG(st.st_mode) or st.st_mtime >= cutoff:
                continue
            p.unlink()
        except FileNotFoundError:
            continue
        removed.append(p)
    return removed
