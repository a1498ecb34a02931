"""Writing files that must never be half-written or readable by others.

Two small primitives used by both sides: results, rosters and approvals are replaced
atomically (a temporary file beside the target, fsync, then ``os.replace``), and key
files are created with mode 0600 from their first byte on.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_text_atomically(path: Path | str, text: str) -> Path:
    """Replace ``path`` by ``text`` (UTF-8): readers see the old file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_private_file(path: Path | str, content: bytes, *, replace: bool = False) -> None:
    """Write a secret (a private key) with mode 0600 from the first byte on.

    ``replace=False`` creates the file exclusively (``O_EXCL``): an existing key — perhaps
    created concurrently — is never clobbered and ``FileExistsError`` is raised instead.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())
    os.chmod(path, 0o600)  # in case the file existed with looser bits or the umask was odd
