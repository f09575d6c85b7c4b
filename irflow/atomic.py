"""One way to write a file: atomically, so a failure never leaves a half-written target.

Every file irflow writes (IR JSON, ONNX, ``.npz``, DOT/SVG, checkpoints, summaries' sidecars)
goes through :func:`atomic_write`: the bytes go to a temporary file in the target's own
directory (same file system, so the final ``os.replace`` is atomic), are flushed and
fsync'ed, and only then renamed over the target. If anything fails midway (disk full, a
file-size limit, an exception in the caller's writer) the temporary file is removed and the
old target is left byte-identical.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_write(d / "a.txt", "w") as f:
...     _ = f.write("hello")
>>> (d / "a.txt").read_text()
'hello'
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from irflow.errors import IrflowError

__all__ = ["atomic_write", "write_bytes", "write_text", "check_output_path"]


def check_output_path(path: str | os.PathLike) -> Path:
    """Check, before any work is done, that ``path`` can be written as a file.

    Raises an ``IrflowError`` naming the path when it is an existing directory, when its
    parent is missing or is not a directory, or when the parent is not writable.

    >>> check_output_path("/")
    Traceback (most recent call last):
    ...
    irflow.errors.IrflowError: cannot write '/': it is a directory
    """
    p = Path(path)
    if p.is_dir():
        raise IrflowError(f"cannot write '{p}': it is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise IrflowError(f"cannot write '{p}': its directory '{parent}' does not exist")
    if not parent.is_dir():
        raise IrflowError(f"cannot write '{p}': '{parent}' is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise IrflowError(f"cannot write '{p}': directory '{parent}' is not writable")
    if p.exists() and not os.access(p, os.W_OK):
        raise IrflowError(f"cannot write '{p}': the file is not writable")
    return p


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
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    target = check_output_path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    tmp = Path(tmp_name)
    try:
        if mode == "w":
            f = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline="")
        else:
            f = os.fdopen(fd, "wb")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _keep_mode(target, tmp)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, IrflowError):
            raise IrflowError(f"could not write '{target}': {exc.strerror or exc}") from exc
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
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
        fd = os.open(directory or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
