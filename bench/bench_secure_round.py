"""In-process secure analysis: wall time, per exchange, and bytes per node.

Run: ``python bench/bench_secure_round.py [--runs R] [NODES ...]`` (default 10 100, 1 run).

Each node answers one analysis of the default plan through the real node handler
(guards, release epoch, ledger, audit log with fsync, pairwise masks plus a self-mask
and a commitment to its seed), then reveals its self-mask seed in the unmasking
exchange; the coordinator checks each seed against its commitment, adds the masked
vectors and removes the self-masks. Besides the whole analysis, the time of each
``transport.exchange`` call is reported: "summaries" (the first exchange, request to
masked replies) and "seeds" (the unmasking exchange). Summaries are random
summary-like int64 vectors of the plan's layout (95 % zeros, like a centre's mostly
empty histograms) so that the figure is the protocol's own cost, not the centres' data
reading (measured by bench/bench_node.py); the audit log's decoded summary grows with
the non-zero elements.
Masking costs O(n) ChaCha20 streams per node, O(n²) in all.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

import numpy as np

from sscjak.coordinator.federation.secure_round import InProcessTransport, run_secure_analysis
from sscjak.node.guard.analysis_handler import handle_analysis_request
from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
from sscjak.shared.plan import Plan, default_plan
from sscjak.shared.protocol import ANALYSIS_REQUEST_KIND, UNMASK_REQUEST_KIND
from sscjak.shared.summary_layout import SummaryLayout


class TimedTransport(InProcessTransport):
    """InProcessTransport that records the wall time of every exchange, by request kind."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.timings: list[tuple[str, float]] = []

    def exchange(self, requests, timeout):
        kinds = {payload.get("kind") for payload in requests.values()}
        kind = kinds.pop() if len(kinds) == 1 else "mixed"
        started = time.perf_counter()
        try:
            return super().exchange(requests, timeout)
        finally:
            self.timings.append((kind, time.perf_counter() - started))


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
        transport = TimedTransport(
            {n: functools.partial(handle_analysis_request, node=c) for n, c in contexts.items()}
        )
        started = time.perf_counter()
        result = run_secure_analysis(transport, plan, roster)
        wall = time.perf_counter() - started
        assert np.array_equal(result.pooled, sum(vectors.values()))
        assert result.attempts == 1
    kinds = [kind for kind, _ in transport.timings]
    assert kinds == [ANALYSIS_REQUEST_KIND, UNMASK_REQUEST_KIND], kinds
    summaries_s, seeds_s = (seconds for _, seconds in transport.timings)
    return {
        "nodes": nodes,
        "setup_s": setup,
        "round_s": wall,
        "summaries_s": summaries_s,
        "seeds_s": seeds_s,
        "other_s": wall - summaries_s - seeds_s,
        "per_node_s": wall / nodes,
        "bytes_per_node": 8 * length,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nodes", type=int, nargs="*", default=[10, 100])
    parser.add_argument("--runs", type=int, default=1, help="runs per size (fresh nodes each)")
    args = parser.parse_args()
    for count in args.nodes:
        for run in range(1, args.runs + 1):
            figures = bench(count)
            print(
                f"{figures['nodes']:>4} nodes, run {run}/{args.runs}: "
                f"analysis {figures['round_s']:.2f} s "
                f"(summaries exchange {figures['summaries_s']:.2f} s, "
                f"seeds exchange {figures['seeds_s']:.3f} s, "
                f"rest {figures['other_s']:.3f} s; "
                f"{figures['per_node_s'] * 1000:.0f} ms per node), "
                f"setup {figures['setup_s']:.2f} s, "
                f"{figures['bytes_per_node']:.0f} bytes of masked vector per node",
                flush=True,
            )


if __name__ == "__main__":
    main()
