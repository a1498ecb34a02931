"""``sscjak-node history``: approvals, released summaries with warnings, refusals."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from sscjak.coordinator.secure_round import InProcessTransport, run_secure_analysis
from sscjak.node.analysis_handler import handle_analysis_request
from sscjak.node.cli import main as node_main
from sscjak.node.simulated_centres import prepare_simulated_nodes
from sscjak.shared.plan import Plan, default_plan
from sscjak.shared.summary_layout import SummaryLayout


def test_history_shows_answers_warnings_and_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = default_plan()
    length = SummaryLayout.for_plan(plan).length

    def summarise(folder: Path, _plan: Plan) -> np.ndarray:
        return np.ones(length, dtype=np.int64)

    folders = [tmp_path / f"centre-{i}" for i in range(4)]
    roster, nodes = prepare_simulated_nodes(folders, plan, tmp_path / "state", summarise=summarise)
    transport = InProcessTransport(
        {n: functools.partial(handle_analysis_request, node=c) for n, c in nodes.items()}
    )
    run_secure_analysis(transport, plan, roster)
    transport.unreachable.add("centre-3")
    run_secure_analysis(transport, plan, roster, participants=sorted(nodes))
    handle_analysis_request({"kind": "nonsense"}, nodes["centre-0"])

    assert node_main(["history", "--state", str(nodes["centre-0"].state_dir)]) == 0
    out = capsys.readouterr().out
    assert f"{plan.sha256[:12]}  approved" in out and "answered 3 time(s)" in out
    assert "Summaries released: 3" in out
    assert out.count("WARNING") == 1 and "differs by one centre (centre-3)" in out
    assert "Refusals: 1" in out and "malformed request" in out
