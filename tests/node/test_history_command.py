"""``sscjak-node history``: approvals, the release epoch, released summaries, refusals."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from sscjak.coordinator.federation.secure_round import (
    InProcessTransport,
    SecureRoundError,
    run_secure_analysis,
)
from sscjak.node.cli import main as node_main
from sscjak.node.guard.analysis_handler import handle_analysis_request
from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
from sscjak.shared.plan import Plan, default_plan
from sscjak.shared.summary_layout import SummaryLayout


def test_history_shows_answers_epoch_reveals_and_refusals(
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
    assert node_main(["history", "--state", str(nodes["centre-0"].state_dir)]) == 0
    assert "Release epoch: none yet" in capsys.readouterr().out
    transport.unreachable.add("centre-3")
    run_secure_analysis(transport, plan, roster)  # centre-3 missing: retried without it
    transport.unreachable.clear()
    with pytest.raises(SecureRoundError):  # the epoch is pinned to the three others
        run_secure_analysis(transport, plan, roster)
    handle_analysis_request({"kind": "nonsense"}, nodes["centre-0"])

    assert node_main(["history", "--state", str(nodes["centre-0"].state_dir)]) == 0
    out = capsys.readouterr().out
    assert f"{plan.sha256[:12]}  approved" in out
    assert "answered 2 time(s), unmasked 1 time(s)" in out  # attempts 1 and 2
    assert "Summaries released: 2" in out
    assert "results only over centre-0, centre-1, centre-2; data pinned" in out
    assert "Self-mask seeds revealed (results unmasked): 1" in out
    assert "Refusals: 2" in out and "malformed request" in out
    assert "one participant set per epoch" in out
