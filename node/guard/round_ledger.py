"""What the node remembers about analyses: nonces seen, answers given, seeds revealed.

The guards of docs/secure-aggregation.md rest on this ledger:

* **nonce replay** — a nonce is answered at most once: a coordinator replaying a
  request gets a refusal. (Even a replay of a nonce forgotten long ago gains nothing:
  every answer carries a fresh self-mask.)
* **answers** — for every answer, the plan, the participant set, the roster, the epoch,
  the data fingerprint and the self-mask seed (kept so that it can be revealed in the
  second exchange; the file is 0600 in a 0700 directory).
* **reveals** — every self-mask seed revealed, with its set; the release epoch
  (:mod:`sscjak.node.guard.release_epoch`) is pinned by the first.
* **estimate settings** — per release epoch and per estimate of a heterogeneity plan (a
  change cell's outcome, time point, window, SMC kind and grid), the one
  ``min_centre_n`` its terms were sent under and the one τ² a random-effects request
  was answered with. This file is never trimmed: forgetting an entry would let a second
  setting through, and two sums differing only in it can isolate this centre's terms.

State lives in ``STATE/ledger/`` as JSON lines, all updates under an exclusive ``flock``
on ``STATE/ledger/lock`` because Flower may run one process per message. Every file is
bounded: when a file holds twice its limit of lines it is rewritten (atomically) with
the newest ``limit`` lines.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sscjak.node.guard.release_epoch import ReleaseEpoch, new_epoch, read_epoch, write_epoch
from sscjak.shared.private_files import write_text_atomically

LEDGER_DIRECTORY = "ledger"
_NONCES_FILE = "seen_nonces.txt"
_ANSWERS_FILE = "answers.jsonl"
_REVEALS_FILE = "reveals.jsonl"
_ESTIMATE_SETTINGS_FILE = "estimate_settings.jsonl"
#: Nonces remembered. A forgotten nonce could be answered again, but the answer carries a
#: fresh self-mask and the epoch rules still hold, so the bound costs no protection.
MAX_REMEMBERED_NONCES = 100_000
#: Answers remembered. An answer forgotten before its reveal can no longer be revealed:
#: it stays self-masked for good.
MAX_REMEMBERED_ANSWERS = 2_000
#: Reveals remembered (for the history command).
MAX_REMEMBERED_REVEALS = 2_000


class RoundLedger:
    """The node's persistent record of nonces, answers, reveals and its release epoch."""

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
        """Whether this nonce was received by this node (among the remembered ones)."""
        return nonce in _read_lines(self.directory / _NONCES_FILE)

    def record_nonce(self, nonce: str) -> None:
        """Remember a nonce (fsync'd before anything is answered)."""
        _append_bounded(self.directory / _NONCES_FILE, nonce, MAX_REMEMBERED_NONCES)

    def record_answer(
        self,
        *,
        plan_sha256: str,
        roster_sha256: str,
        participants: list[str],
        nonce: str,
        attempt: int,
        epoch_id: str,
        data_fingerprint: str,
        self_mask_seed: bytes,
    ) -> None:
        """Log an answer with its self-mask seed (fsync'd before the answer is sent)."""
        row = {
            "plan_sha256": plan_sha256,
            "roster_sha256": roster_sha256,
            "participants": list(participants),
            "nonce": nonce,
            "attempt": attempt,
            "epoch_id": epoch_id,
            "data_fingerprint": data_fingerprint,
            "self_mask_seed": self_mask_seed.hex(),
        }
        line = json.dumps(row, sort_keys=True)
        _append_bounded(self.directory / _ANSWERS_FILE, line, MAX_REMEMBERED_ANSWERS)

    def answers(self, plan_sha256: str | None = None) -> list[dict[str, Any]]:
        """Every remembered answer (of one plan, if given), oldest first."""
        rows = _read_json_lines(self.directory / _ANSWERS_FILE)
        return [row for row in rows if plan_sha256 is None or row["plan_sha256"] == plan_sha256]

    def answers_for_nonce(self, nonce: str) -> list[dict[str, Any]]:
        """The remembered answers this node gave to the request of ``nonce`` (at most one,
        unless the nonce was forgotten and replayed: then none of them is revealed)."""
        return [row for row in self.answers() if row["nonce"] == nonce]

    def record_reveal(
        self, *, plan_sha256: str, participants: list[str], nonce: str, epoch_id: str
    ) -> None:
        """Log (fsync'd, before it is sent) that the self-mask seed of ``nonce`` is revealed."""
        row = {
            "plan_sha256": plan_sha256,
            "participants": list(participants),
            "nonce": nonce,
            "epoch_id": epoch_id,
        }
        line = json.dumps(row, sort_keys=True)
        _append_bounded(self.directory / _REVEALS_FILE, line, MAX_REMEMBERED_REVEALS)

    def reveals(self, plan_sha256: str | None = None) -> list[dict[str, Any]]:
        """Every remembered reveal (of one plan, if given), oldest first."""
        rows = _read_json_lines(self.directory / _REVEALS_FILE)
        return [row for row in rows if plan_sha256 is None or row["plan_sha256"] == plan_sha256]

    def estimate_settings(self, epoch_id: str, setting: str) -> dict[str, str]:
        """Estimate identity → the value of ``setting`` (``"tau2"`` or ``"min_centre_n"``)
        this node answered under in epoch ``epoch_id``."""
        rows = _read_json_lines(self.directory / _ESTIMATE_SETTINGS_FILE)
        return {
            row["estimate"]: row["value"]
            for row in rows
            if row["epoch_id"] == epoch_id and row["setting"] == setting
        }

    def record_estimate_settings(
        self, epoch_id: str, setting: str, answered: dict[str, str]
    ) -> None:
        """Remember (fsync'd, before the answer is sent) ``setting`` per estimate."""
        path = self.directory / _ESTIMATE_SETTINGS_FILE
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lines = "".join(
            json.dumps(
                {"epoch_id": epoch_id, "estimate": key, "setting": setting, "value": value},
                sort_keys=True,
            )
            + "\n"
            for key, value in answered.items()
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(descriptor, lines.encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def epoch(self) -> ReleaseEpoch:
        """The current release epoch; the first one is started here, unpinned."""
        epoch = read_epoch(self.directory)
        if epoch is None:
            epoch = new_epoch("first use")
            write_epoch(self.directory, epoch)
        return epoch

    def pin_epoch(self, epoch: ReleaseEpoch) -> None:
        """Record the epoch with its set, roster and data pinned (before the reveal is sent)."""
        write_epoch(self.directory, epoch)


def _read_lines(path: Path) -> set[str]:
    if not path.exists():
        return set()
    with path.open(encoding="ascii") as stream:
        return {line.strip() for line in stream if line.strip()}


def _read_json_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def _append_bounded(path: Path, line: str, limit: int) -> None:
    """Append ``line`` (fsync'd); past ``2 × limit`` lines keep only the newest ``limit``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(descriptor, (line + "\n").encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    # a cheap size test first: most appends never count lines
    if path.stat().st_size < 2 * limit * (len(line) // 2 + 1):
        return
    with path.open(encoding="utf-8") as stream:
        lines = [kept for kept in stream.read().splitlines() if kept.strip()]
    if len(lines) > 2 * limit:
        write_text_atomically(path, "\n".join(lines[-limit:]) + "\n")
