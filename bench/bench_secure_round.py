"""In-process secure round: wall time and bytes per node for 10 and 100 nodes.

Run: ``python bench/bench_secure_round.py [NODES ...]`` (default 10 100).

Each node answers one analysis request of the default plan through the real node
handler (guards, ledger, audit log with fsync, pairwise masking) and the coordinator
adds the masked vectors. Summaries are random summary-like int64 vectors of the plan's
layout (95 % zeros, like a centre's mostly empty histograms) so that the figure is the
protocol's own cost, not the centres' data reading (measured by bench/bench_node.py);
the audit log's decoded summary grows with the non-zero elements.
Masking costs O(n) ChaCha20 streams per node, O(n²) in all.
"""

from __future__ import annotations

import functools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sscjak.coordinator.secure_round import InProcessTransport, run_secure_analysis
from sscjak.node.analysis_handler import handle_analysis_request
from sscjak.node.simulated_centres import prepare_simulated_nodes
from sscjak.shared.plan import Plan, default_plan
from sscjak.shared.summary_layout import SummaryLayout


def bench(nodes: int) -> dict[str, float]:
    plan = default_plan()
    length = SummaryLayout.for_plan(plan).length
    rng = np.random.default_rng(nodes)
    with tempfile.TemporaryDirectory() as root:
        folders = [Path(root) / "data" / f"centre-{i:03d}" for i in range(nodes)]
        vectors = {
            f.name: np.where(rng.random(length) < 0.95, 0, rng.integers(1, 50, length))
            for f in folders
        }

        def summarise(folder: Path, _plan: Plan) -> np.ndarray:
            return vectors[folder.name]

        started = time.perf_counter()
        roster, contexts = prepare_simulated_nodes(
            folders, plan, Path(root) / "state", summarise=summarise
        )
        setup = time.perf_counter() - started
        transport = InProcessTransport(
            {n: functools.partial(handle_analysis_request, node=c) for n, c in contexts.items()}
        )
        started = time.perf_counter()
        result = run_secure_analysis(transport, plan, roster)
        wall = time.perf_counter() - started
        assert np.array_equal(result.pooled, sum(vectors.values()))
    return {
        "nodes": nodes,
        "setup_s": setup,
        "round_s": wall,
        "per_node_s": wall / nodes,
        "bytes_per_node": 8 * length,
    }


if __name__ == "__main__":
    for count in [int(a) for a in sys.argv[1:]] or [10, 100]:
        figures = bench(count)
        print(
            f"{figures['nodes']:>4} nodes: round {figures['round_s']:.2f} s "
            f"({figures['per_node_s'] * 1000:.0f} ms per node), setup {figures['setup_s']:.2f} s, "
            f"{figures['bytes_per_node']:.0f} bytes sent per node"
        )
