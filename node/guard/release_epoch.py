"""The release epoch: one participant set, one roster and one version of the data.

Any two unmasked pooled sums over participant sets that differ by one centre give that
centre's whole summary — whether they come from a rerun after a claimed dropout, from
two plans sharing a segment, from a twin plan, or from two sets served under one nonce.
And two unmasked sums over the *same* set before and after this centre's data changed
give the change. So a node reveals self-mask seeds (the only act that lets a pooled sum
be unmasked, docs/secure-aggregation.md) under one rule:

    Within a release epoch, every reveal is for the same participant set, under the
    same study roster, with the same data.

The epoch's set, roster and data fingerprint are *pinned* by its first reveal, across
all plans; until then they are open. Only the centre's data steward starts a new epoch
(``sscjak-node approve PLAN --roster ROSTER --participants A,B,C``), after a warning in
plain words that results over two sets differ by the missing centres' summaries.

The epoch lives in ``STATE/ledger/release_epoch.json`` (0600), written atomically.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sscjak.shared.data_contract import FILE_SUFFIXES
from sscjak.shared.private_files import write_text_atomically

EPOCH_FILE = "release_epoch.json"
#: Spreadsheet programs leave ``~$name.xlsx`` lock files beside an open workbook: not data.
EDITOR_LOCK_PREFIX = "~$"
EPOCH_SCHEMA = "sscjak.release-epoch/1"


class EpochFileError(ValueError):
    """The epoch file exists but cannot be read: the node refuses to reveal anything."""


@dataclass(frozen=True)
class ReleaseEpoch:
    """What this node's reveals are pinned to (``None``: not pinned yet).

    ``started_by`` is ``"first use"`` for the epoch a node starts on its own, or
    ``"steward"`` for one started with ``approve --participants``.
    """

    epoch_id: str
    started_at: str
    started_by: str
    participants: tuple[str, ...] | None = None
    roster_sha256: str | None = None
    data_fingerprint: str | None = None
    pinned_at: str | None = None

    @property
    def pinned(self) -> bool:
        return self.roster_sha256 is not None

    def refusal(
        self, participants: tuple[str, ...], roster_sha256: str, data_fingerprint: str | None
    ) -> str | None:
        """Why a reveal for this set, roster and data would break the epoch, or ``None``."""
        if self.participants is not None and tuple(participants) != self.participants:
            return (
                "this centre releases results over one participant set per epoch, pinned to "
                f"{', '.join(self.participants)}; this request is for "
                f"{', '.join(participants)}. Results over two sets differ by the missing "
                "centres' summaries, so only the centre's steward can start a new epoch "
                "(sscjak-node approve ... --participants ...)"
            )
        if self.roster_sha256 is not None and roster_sha256 != self.roster_sha256:
            return (
                f"this epoch is pinned to study roster {self.roster_sha256[:12]}, the request "
                f"is under roster {roster_sha256[:12]}; the centre's steward must start a new "
                "epoch (sscjak-node approve ... --participants ...)"
            )
        if (
            self.data_fingerprint is not None
            and data_fingerprint is not None
            and data_fingerprint != self.data_fingerprint
        ):
            return (
                "the centre's data changed since the first result of this epoch was released; "
                "two results over the same centres before and after the change would show the "
                "change, so the centre's steward must start a new epoch "
                "(sscjak-node approve ... --participants ...)"
            )
        return None

    def pinned_to(
        self, participants: tuple[str, ...], roster_sha256: str, data_fingerprint: str | None
    ) -> ReleaseEpoch:
        """This epoch with whatever is still open pinned to these values."""
        return replace(
            self,
            participants=self.participants or tuple(participants),
            roster_sha256=self.roster_sha256 or roster_sha256,
            data_fingerprint=self.data_fingerprint or data_fingerprint,
            pinned_at=self.pinned_at or _now(),
        )


def new_epoch(started_by: str, participants: tuple[str, ...] | None = None) -> ReleaseEpoch:
    """A fresh epoch; a steward's epoch names its participant set from the start."""
    return ReleaseEpoch(
        epoch_id=secrets.token_hex(16),
        started_at=_now(),
        started_by=started_by,
        participants=tuple(sorted(participants)) if participants else None,
    )


def read_epoch(ledger_dir: Path) -> ReleaseEpoch | None:
    """The current epoch, or ``None`` when none was started; raise if the file is damaged."""
    path = Path(ledger_dir) / EPOCH_FILE
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.pop("schema") != EPOCH_SCHEMA:
            raise ValueError("unknown schema")
        if document["participants"] is not None:
            document["participants"] = tuple(document["participants"])
        return ReleaseEpoch(**document)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise EpochFileError(f"{path}: the release epoch cannot be read ({error})") from None


def write_epoch(ledger_dir: Path, epoch: ReleaseEpoch) -> None:
    """Write the epoch atomically (mode 0600)."""
    Path(ledger_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    document = {"schema": EPOCH_SCHEMA, **asdict(epoch)}
    if epoch.participants is not None:
        document["participants"] = list(epoch.participants)
    write_text_atomically(Path(ledger_dir) / EPOCH_FILE, json.dumps(document, indent=2))


def describe_new_epoch(current: ReleaseEpoch | None, participants: tuple[str, ...]) -> str:
    """The warning a steward reads before starting an epoch over ``participants``."""
    names = ", ".join(sorted(participants))
    lines = [f"New release epoch: from now on this centre releases results over {names} only."]
    if current is not None and current.participants is not None:
        before = set(current.participants)
        after = set(participants)
        lines += [
            f"Until now it released results over {', '.join(current.participants)}.",
            "",
            "WARNING: a result over one set of centres minus a result over another set is",
            "the sum of the summaries of the centres in one set and not the other. Centres",
            f"only in the earlier set: {', '.join(sorted(before - after)) or 'none'}; only",
            f"in the new set: {', '.join(sorted(after - before)) or 'none'}. If exactly one",
            "centre differs, whoever holds both results has that centre's whole summary.",
            "Start a new epoch only when the study really changed its centres (a centre",
            "joined or left for good), never because the coordinator asked for a rerun.",
        ]
    lines += [
        "The centre's data are pinned again at the first result of the new epoch; a data",
        "update within an epoch is refused for the same reason (before minus after).",
    ]
    return "\n".join(lines)


def data_fingerprint(folder: Path) -> str:
    """SHA-256 over every file the reader could take a table from (name and bytes).

    Every ``.csv``, ``.xlsx`` and ``.parquet`` file directly in the folder counts (any
    case of the suffix) — the tables' own files and any workbook that holds them as
    sheets — so any change to the data the node reads changes the fingerprint. Other
    files, and a spreadsheet program's ``~$`` lock files, do not count.
    """
    digest = hashlib.sha256(b"sscjak.data-fingerprint/2")
    folder = Path(folder)
    if not folder.is_dir():
        return digest.hexdigest()
    paths = sorted(
        path
        for path in folder.iterdir()
        if path.suffix.lower() in FILE_SUFFIXES
        and not path.name.startswith(EDITOR_LOCK_PREFIX)
        and path.is_file()
    )
    for path in paths:
        digest.update(len(path.name.encode()).to_bytes(2, "big") + path.name.encode("utf-8"))
        file_digest = hashlib.sha256()
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                file_digest.update(block)
        digest.update(file_digest.digest())
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
