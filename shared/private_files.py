"""Writing and reading files that must never be half-written or readable by others.

Small primitives used by both sides: results, rosters and approvals are replaced
atomically (a temporary file beside the target, fsync, then ``os.replace``); key files
are created with mode 0600 from their first byte on; and a key is read only if no other
user of the host could have read or replaced it (:func:`read_private_file`, the check
OpenSSH applies to identity files, ``sshd_config(5)`` StrictModes).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from sscjak.shared.errors import SscjakError

#: Permission bits that let group or others read, write or execute a file.
_GROUP_OR_OTHER_BITS = 0o077


class PrivateFileError(SscjakError, PermissionError):
    """A secret file is exposed to other users; the message says which and what to do."""


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


def replace_private_file(path: Path | str, content: bytes) -> None:
    """Replace ``path`` by a secret atomically: readers see the old key or the new, never half.

    The new content goes to a 0600 temporary file beside ``path`` (created exclusively,
    fsync'd) which then replaces ``path`` with ``os.replace`` (atomic within one file
    system, POSIX ``rename``). Used when a key is rotated while a service may read it.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)  # mkstemp creates 0600; rewrite through the one key-writing primitive
    try:
        write_private_file(temporary, content, replace=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _refuse_exposed(path: Path, status: os.stat_result) -> None:
    """Raise :class:`PrivateFileError` unless ``status`` is a file only its owner can use."""
    if not stat.S_ISREG(status.st_mode):
        raise PrivateFileError(f"{path} is not a regular file; expected a private key file")
    owner, me = status.st_uid, os.geteuid()
    if owner not in (me, 0):
        raise PrivateFileError(
            f"{path} belongs to user id {owner}, not to the user running sscjak (id {me});"
            " another user could have written this key: create it again as this user,"
            " or 'chown' it if you know where it came from"
        )
    mode = stat.S_IMODE(status.st_mode)
    if mode & _GROUP_OR_OTHER_BITS:
        raise PrivateFileError(
            f"{path} is accessible to other users (mode {mode:o}, expected 600);"
            f" run 'chmod 600 {path}'"
        )


def read_private_file(path: Path | str) -> bytes:
    """The content of a secret file, refused if another user could read or replace it.

    Refused (:class:`PrivateFileError`, a message naming the file and the fix) when the
    file is not a regular file, is owned by a user other than the current one or root
    (a planted key), or grants group or others any permission (a copied key). The checks
    apply to the opened file itself (``fstat`` on the descriptor that is then read), so
    the file cannot be swapped between the check and the read. ``FileNotFoundError``
    propagates: a missing key is for the caller to explain.
    """
    path = Path(path)
    # O_NONBLOCK: opening a FIFO planted in place of the key must not hang the node.
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        _refuse_exposed(path, os.fstat(descriptor))
    except BaseException:
        os.close(descriptor)
        raise
    with os.fdopen(descriptor, "rb") as stream:
        return stream.read()
