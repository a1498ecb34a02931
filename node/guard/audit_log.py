"""The node's append-only audit log: one JSON line per outgoing message.

Every reply and every refusal a node sends is recorded *before* it is sent, with
what the centre's data steward needs to check what left the building: the time, the
plan hash, the participant set and nonce of the request, the SHA-256 of the
*unmasked* summary vector, and that summary decoded in plain words
(``SummaryLayout.describe``) — aggregate counts and sums only. Patient ids, dates and
rows are never written: nothing row-level ever reaches this module.

Each line is written with one ``write`` on a descriptor opened ``O_APPEND`` and
flushed to disk (``fsync``) before the message goes out, so a crash cannot leave a
sent message unlogged.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

#: Version tag written into every line.
AUDIT_SCHEMA = "sscjak.audit/1"


class AuditLog:
    """An append-only JSONL file (created with mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Write ``entry`` (plus ``schema`` and ``time``) as one line; fsync; return it."""
        line_entry = {"schema": AUDIT_SCHEMA, "time": _now(), **entry}
        line = json.dumps(line_entry, sort_keys=True, ensure_ascii=False, allow_nan=False)
        if "\n" in line:  # json.dumps escapes newlines; this guards the one-line invariant
            raise ValueError("an audit entry must serialise to one line")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(descriptor, (line + "\n").encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return line_entry

    def entries(self) -> Iterator[dict[str, Any]]:
        """The logged entries, oldest first."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as stream:
            for line in stream:
                if line.strip():
                    yield json.loads(line)


def reply_entry(
    *,
    node: str,
    plan_sha256: str,
    participants: list[str],
    nonce: str,
    attempt: int,
    summary_sha256: str,
    released_summary: Any,
    reply_bytes: int,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """The audit entry of an analysis reply (the masked vector itself is not logged).

    ``warnings`` are notes for the steward, shown by ``sscjak-node history``.
    """
    return {
        "event": "analysis-reply",
        "node": node,
        "plan_sha256": plan_sha256,
        "participants": list(participants),
        "nonce": nonce,
        "attempt": attempt,
        "summary_sha256": summary_sha256,
        "released_summary": released_summary,
        "reply_bytes": reply_bytes,
        "warnings": list(warnings or []),
    }


def reveal_entry(
    *, node: str, plan_sha256: str, participants: list[str], nonce: str, epoch_id: str
) -> dict[str, Any]:
    """The audit entry of a revealed self-mask seed (the seed itself is not logged)."""
    return {
        "event": "self-mask-revealed",
        "node": node,
        "plan_sha256": plan_sha256,
        "participants": list(participants),
        "nonce": nonce,
        "epoch_id": epoch_id,
        "note": "the pooled sum over these participants can now be unmasked",
    }


def refusal_entry(
    *,
    node: str,
    reason: str,
    plan_sha256: str | None = None,
    participants: list[str] | None = None,
    nonce: str | None = None,
    attempt: int | None = None,
) -> dict[str, Any]:
    """The audit entry of a refusal; request fields are given only when well-formed."""
    return {
        "event": "refusal",
        "node": node,
        "reason": reason,
        "plan_sha256": plan_sha256,
        "participants": list(participants) if participants is not None else None,
        "nonce": nonce,
        "attempt": attempt,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def summary_digest(summary: np.ndarray) -> str:
    """SHA-256 (hex) of the unmasked summary as int64 little-endian bytes."""
    return hashlib.sha256(np.asarray(summary, dtype="<i8").tobytes()).hexdigest()
