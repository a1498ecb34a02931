"""The audit log: one fsync'd line per outgoing message; aggregates only, never ids or dates."""

from __future__ import annotations

import importlib.util
import json
import re
import secrets
import stat
from pathlib import Path

import numpy as np

from sscjak.node.guard.analysis_handler import handle_analysis_request
from sscjak.node.guard.audit_log import AuditLog, refusal_entry, summary_digest
from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
from sscjak.node.summarise.derivation import derive_cohort
from sscjak.node.summarise.summary_vector import summarise_derived
from sscjak.shared.plan import Plan, default_plan
from sscjak.shared.protocol import AnalysisRequest, encode_request
from sscjak.shared.summary_layout import SummaryLayout

_spec = importlib.util.spec_from_file_location(
    "random_cohort", Path(__file__).parents[1] / "support" / "random_cohort.py"
)
random_cohort = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(random_cohort)

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def test_entries_are_appended_one_line_each(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(refusal_entry(node="centre-a", reason="line one\nline two"))
    log.append(refusal_entry(node="centre-a", reason="second"))
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert [json.loads(line)["reason"] for line in lines] == ["line one\nline two", "second"]
    assert stat.S_IMODE((tmp_path / "audit.jsonl").stat().st_mode) & 0o077 == 0
    assert [e["reason"] for e in log.entries()] == ["line one\nline two", "second"]


def test_reply_entry_has_plan_hash_digest_and_decoded_summary_but_no_ids_or_dates(
    tmp_path: Path,
) -> None:
    plan = default_plan()
    cohorts = {
        f"centre-{i}": random_cohort.random_cohort(i, 40, id_prefix=f"SECRET{i}-") for i in range(3)
    }

    def summarise(folder: Path, plan: Plan) -> np.ndarray:
        return summarise_derived(derive_cohort(*cohorts[folder.name], plan), plan)

    folders = [tmp_path / "data" / name for name in cohorts]
    roster, nodes = prepare_simulated_nodes(folders, plan, tmp_path / "state", summarise=summarise)
    request = encode_request(
        AnalysisRequest(
            plan_sha256=plan.sha256,
            plan_toml=plan.canonical_toml,
            roster_sha256=roster.sha256,
            participants=tuple(nodes),
            nonce=secrets.token_hex(32),
            attempt=1,
        )
    )
    node = nodes["centre-1"]
    handle_analysis_request(request, node)
    text = node.audit_log.path.read_text()
    (entry,) = [json.loads(line) for line in text.splitlines()]

    summary = summarise(node.data_folder, plan)
    assert entry["plan_sha256"] == plan.sha256
    assert entry["summary_sha256"] == summary_digest(summary)
    assert entry["participants"] == ["centre-0", "centre-1", "centre-2"]
    assert entry["nonce"] == request["nonce"]
    assert entry["released_summary"] == SummaryLayout.for_plan(plan).describe(summary)
    assert entry["released_summary"]["cohort"]["patients"] == 40
    assert entry["reply_bytes"] == 8 * SummaryLayout.for_plan(plan).length
    # no patient id, and the only date in the line is the log's own timestamp
    patients = cohorts["centre-1"][0]
    assert "SECRET" not in text
    assert not any(pid in text for pid in patients["patient_id"])
    without_time = json.dumps({k: v for k, v in entry.items() if k != "time"})
    assert ISO_DATE.search(without_time) is None
    assert ISO_DATE.match(entry["time"])
    # the masked vector itself is not logged
    assert "masked" not in entry
