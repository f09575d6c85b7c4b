"""One way to write a file: atomically, so a failure never leaves a half-written target.

Every file irflow writes (IR JSON, ONNX, ``.npz``, DOT/SVG, checkpoints, summaries' sidecars)
goes through :func:`atomic_write`: the bytes go to a temporary file in the target's own
directory (same file system, so the final ``os.replace`` is atomic), are flushed and
fsync'ed, and only then renamed over the target. If anything fails midway (disk full, a
file-size limit, an exception in the caller's writer) the temporary file is removed and the
old target is left byte-identical.

Files that must change together (an ONNX model and its external-data file) go through
:func:`atomic_write_many`: every file is staged to its own temporary first, then they are
renamed in the order given, dependencies first (the data file before the model that points
into it). If a rename fails, the targets already replaced are put back from hard-link backups
taken just before, so an *error* never leaves a mixed pair. A power loss or ``kill -9`` in the
microseconds between two renames can still leave the new data file beside the old model (no
POSIX call renames two files at once); the old model then fails to load with an error rather
than reading wrong numbers, since the offsets it names no longer match.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_write(d / "a.txt", "w") as f:
...     _ = f.write("hello")
>>> (d / "a.txt").read_text()
'hello'
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Sequence

from irflow.errors import IrflowError

__all__ = ["atomic_write", "atomic_write_many", "write_bytes", "write_text", "check_output_path"]


def check_output_path(path: str | os.PathLike) -> Path:
    """Check, before any work is done, that ``path`` can be written as a file.

    Raises an ``IrflowError`` naming the path when it is an existing directory, when its
    parent is missing or is not a directory, or when nothing can be created in the parent
    (permissions, a read-only mount, ``/proc``): the check creates and removes a probe file
    there, because ``os.access`` says yes to root even where writing fails.

    >>> check_output_path("/")
    Traceback (most recent call last):
    ...
    irflow.errors.IrflowError: cannot write '/': it is a directory
    """
    p = Path(path)
    if str(p) == "" or p.name in ("", ".", ".."):
        raise IrflowError(f"cannot write '{p}': not a file name")
    if p.is_dir():
        raise IrflowError(f"cannot write '{p}': it is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise IrflowError(f"cannot write '{p}': its directory '{parent}' does not exist")
    if not parent.is_dir():
        raise IrflowError(f"cannot write '{p}': '{parent}' is not a directory")
    if p.exists() and not p.is_file():
        raise IrflowError(f"cannot write '{p}': it exists and is not a regular file")
    if p.exists() and not os.access(p, os.W_OK):
        raise IrflowError(f"cannot write '{p}': the file is not writable")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{p.name[:64]}.", suffix=".probe", dir=parent)
    except OSError as e:
        raise IrflowError(f"cannot write '{p}': cannot create files in '{parent}' ({e.strerror or e})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return p


def _open_temp(fd: int, mode: str, encoding: str | None) -> IO:
    # The one place a temporary file is opened; the fault-injection tests replace it.
    if mode == "w":
        return os.fdopen(fd, "w", encoding=encoding or "utf-8", newline="")
    return os.fdopen(fd, "wb")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit, fsync it and rename it over ``path``.

    ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8 unless ``encoding`` says otherwise). On any
    exception the temporary file is deleted, the target is untouched and the exception
    propagates (an ``OSError`` becomes an ``IrflowError`` naming the path).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.bin"
    >>> with atomic_write(p) as f:
    ...     _ = f.write(b"\\x00\\x01")
    >>> p.read_bytes()
    b'\\x00\\x01'
    """
    with atomic_write_many([path], mode, encoding=encoding) as (f,):
        yield f


@contextlib.contextmanager
def atomic_write_many(paths: Sequence[str | os.PathLike], mode: str = "wb", *,
                      encoding: str | None = None) -> Iterator[list[IO]]:
    """Write several files that must change together; rename them in the order given.

    Yields one open temporary file per path. On a clean exit each is flushed and fsync'ed,
    then all are renamed over their targets, first to last: put the file others point into
    first (ONNX external data before its model). A failure before the renames leaves every
    target untouched; a failed rename restores the targets already replaced.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_write_many([d / "m.data", d / "m.idx"]) as (data, index):
    ...     _ = data.write(b"1234"); _ = index.write(b"m.data:0:4")
    >>> sorted(p.name for p in d.iterdir())
    ['m.data', 'm.idx']
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    targets = [check_output_path(p) for p in paths]
    if len({os.path.abspath(t) for t in targets}) != len(targets):
        raise IrflowError(f"cannot write {', '.join(map(str, targets))}: the same file is named twice")
    temps: list[Path] = []
    files: list[IO] = []
    try:
        try:
            for target in targets:
                fd, name = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=".tmp", dir=target.parent)
                temps.append(Path(name))
                try:
                    files.append(_open_temp(fd, mode, encoding))
                except BaseException:
                    os.close(fd)
                    raise
            yield files
            for f in files:
                f.flush()
                os.fsync(f.fileno())
        finally:
            for f in files:
                with contextlib.suppress(OSError):
                    f.close()
        for target, tmp in zip(targets, temps):
            _keep_mode(target, tmp)
        _rename_all(temps, targets)
        temps = []
        for directory in {t.parent for t in targets}:
            _fsync_dir(directory)
    except BaseException as exc:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, IrflowError):
            names = ", ".join(f"'{t}'" for t in targets)
            raise IrflowError(f"could not write {names}: {exc.strerror or exc}; the previous file(s) are unchanged") from exc
        raise


def _rename_all(temps: list[Path], targets: list[Path]) -> None:
    if len(targets) == 1:
        os.replace(temps[0], targets[0])
        return
    backups: list[Path | None] = []
    done = 0
    try:
        for target in targets:
            backups.append(_backup(target))
        for tmp, target in zip(temps, targets):
            os.replace(tmp, target)
            done += 1
    except BaseException:
        for target, backup in zip(targets[:done], backups[:done]):
            with contextlib.suppress(OSError):
                if backup is None:
                    target.unlink()
                else:
                    os.replace(backup, target)
        raise
    finally:
        for backup in backups:
            if backup is not None:
                with contextlib.suppress(OSError):
                    backup.unlink()


def _backup(target: Path) -> Path | None:
    # A hard link keeps the old file's bytes reachable without copying them.
    if not target.exists():
        return None
    for i in range(100):
        backup = target.with_name(f".{target.name[:64]}.{os.getpid()}.{i}.bak")
        try:
            os.link(target, backup)
            return backup
        except FileExistsError:
            continue
        except OSError as e:
            if e.errno in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK):
                return None  # no hard links here: rename without the rollback
            raise
    return None


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.bin"; write_bytes(p, b"ab"); p.read_bytes()
    b'ab'
    """
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.txt"; write_text(p, "hi"); p.read_text()
    'hi'
    """
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)


def _keep_mode(target: Path, tmp: Path) -> None:
    # mkstemp creates 0600; a replaced file keeps its old mode, a new one gets the umask's.
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some file systems refuse O_RDONLY on directories.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
