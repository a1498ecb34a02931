"""What the node remembers about rounds: every nonce seen, every participant set answered.

Three guards of docs/secure-aggregation.md rest on this ledger:

* **nonce replay** — a nonce is answered at most once, ever: a coordinator replaying
  a request gets a refusal, never a second masked vector under the same masks;
* **participant-set log** — every set the node answered for a plan is kept, so a
  steward (and :func:`answered_sets`) can see whether the coordinator reran a plan
  with shrinking sets (the signature of the lying-about-dropout attack);
* **rerun cap** — a node answers a plan at most ``max_answers`` times per approval
  (first run and reruns together); approving the plan again restarts the count;
* **confirmed unmasking** — the self-mask seed of at most one round per approved plan
  is ever revealed; after that the plan is closed until approved again.

State lives in ``STATE/ledger/`` as JSON lines; all updates happen under an exclusive
``flock`` on ``STATE/ledger/lock`` because Flower may run one process per message.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LEDGER_DIRECTORY = "ledger"
_NONCES_FILE = "seen_nonces.txt"
_ANSWERS_FILE = "answered_sets.jsonl"
_REVEALS_FILE = "revealed_self_masks.jsonl"


class RoundLedger:
    """The node's persistent record of nonces and answered participant sets."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = Path(state_dir) / LEDGER_DIRECTORY

    @contextmanager
    def locked(self) -> Iterator[RoundLedger]:
        """Hold the ledger's exclusive lock for a check-then-record sequence."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield self
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            os.close(descriptor)

    def nonce_seen(self, nonce: str) -> bool:
        """Whether this nonce was ever received by this node."""
        path = self.directory / _NONCES_FILE
        if not path.exists():
            return False
        with path.open(encoding="ascii") as stream:
            return any(line.strip() == nonce for line in stream)

    def record_nonce(self, nonce: str) -> None:
        """Remember a nonce for good (fsync'd before anything is answered)."""
        _append_line(self.directory / _NONCES_FILE, nonce)

    def answered_sets(self, plan_sha256: str) -> list[dict[str, Any]]:
        """Every answer given for this plan: approval id, participants, nonce, attempt."""
        path = self.directory / _ANSWERS_FILE
        if not path.exists():
            return []
        with path.open(encoding="utf-8") as stream:
            rows = [json.loads(line) for line in stream if line.strip()]
        return [row for row in rows if row["plan_sha256"] == plan_sha256]

    def answers_under_approval(self, plan_sha256: str, approval_id: str) -> int:
        """How many times this plan was answered under this approval."""
        return sum(
            1 for row in self.answered_sets(plan_sha256) if row["approval_id"] == approval_id
        )

    def record_answer(
        self,
        *,
        plan_sha256: str,
        approval_id: str,
        participants: list[str],
        nonce: str,
        attempt: int,
        unmasking: str = "pairwise",
    ) -> None:
        """Log that the node answered this participant set for this plan."""
        row = {
            "plan_sha256": plan_sha256,
            "approval_id": approval_id,
            "participants": list(participants),
            "nonce": nonce,
            "attempt": attempt,
            "unmasking": unmasking,
        }
        _append_line(self.directory / _ANSWERS_FILE, json.dumps(row, sort_keys=True))

    def answer_for_nonce(self, plan_sha256: str, nonce: str) -> dict[str, Any] | None:
        """The answer this node gave for the round of ``nonce``, if any."""
        for row in self.answered_sets(plan_sha256):
            if row["nonce"] == nonce:
                return row
        return None

    def record_reveal(self, *, plan_sha256: str, approval_id: str, nonce: str) -> None:
        """Log (fsync'd, before it is sent) that the self-mask seed of ``nonce`` is revealed."""
        row = {"plan_sha256": plan_sha256, "approval_id": approval_id, "nonce": nonce}
        _append_line(self.directory / _REVEALS_FILE, json.dumps(row, sort_keys=True))

    def reveals_under_approval(self, plan_sha256: str, approval_id: str) -> list[str]:
        """Nonces whose self-mask seed was revealed for this plan under this approval."""
        path = self.directory / _REVEALS_FILE
        if not path.exists():
            return []
        with path.open(encoding="utf-8") as stream:
            rows = [json.loads(line) for line in stream if line.strip()]
        return [
            row["nonce"]
            for row in rows
            if row["plan_sha256"] == plan_sha256 and row["approval_id"] == approval_id
        ]


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(descriptor, (line + "\n").encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def single_centre_differences(
    answered: list[list[str]], participants: list[str]
) -> list[tuple[list[str], str]]:
    """Earlier answered sets that differ from ``participants`` by exactly one centre.

    Two complete rounds over sets differing by one centre D let the coordinator compute
    D's whole summary as the difference of the two sums — harmless after a real dropout
    of D, an attack if D did answer (docs/secure-aggregation.md §5). Returns each such
    earlier set with the centre by which it differs.
    """
    current = set(participants)
    found = []
    for earlier in answered:
        difference = current.symmetric_difference(earlier)
        if len(difference) == 1:
            found.append((list(earlier), next(iter(difference))))
    return found
