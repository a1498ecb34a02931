"""Deployment benchmark: a secure analysis vs a bare Flower query round, same federation.

For each federation size, starts a real loopback federation (SuperLink with TLS and node
authentication, one ``sscjak-node serve`` process per centre; centres cycle through the
bundled demo centres) and measures, inside the ServerApp:

* bare round: one ``query.ping`` message to every node and the replies back — Flower's
  transport alone (the nodes read no data; same Grid, same polling);
* secure analysis: one complete ``run_secure_analysis`` of the default plan — two
  exchanges: the summaries exchange (request; each node reads + summarises its data,
  masks it with pairwise masks and a self-mask, commits to the self-mask seed, replies)
  and the unmasking exchange (each node reveals its self-mask seed), then the pooled
  statistics and the results file;

and, from the ServerApp's progress events (wall-clock ``time`` of the ``nodes`` event and
of the ``attempt`` event written after each exchange), the time of each exchange: the
summaries exchange runs from ``nodes`` to "attempt N: n/n nodes answered", the seeds
exchange from there to "attempt N: n/n seeds revealed", the rest to ``done``. Also the
bytes each node sends per analysis (its masked vector, from its audit log).

    python bench/federation_bench.py --nodes 3 10 --pings 5 --analyses 3

Run on an otherwise idle machine; figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

from sscjak.coordinator.federation.loopback import LoopbackFederation
from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders


def bench_federation(size: int, pings: int, analyses: int, root: Path) -> dict:
    demo = list(demo_centre_folders().values())
    centres = {f"centre-{i:02d}": demo[i % len(demo)] for i in range(size)}
    started = time.monotonic()
    with LoopbackFederation(root, centres) as federation:
        federation.start(progress=lambda line: print(f"  {line}", flush=True))
        setup_seconds = time.monotonic() - started
        # Warm-up: the first message of a run also pulls run info and bundle to each node.
        ping = federation.analyse(
            root / "ping.json", mode="ping", rounds=pings + 1, run_name="ping", on_event=None
        )
        ping_seconds = ping["ping_seconds"][1:]
        analysis_seconds, submit_seconds, exchanges = [], [], []
        for index in range(analyses):
            events: list[dict] = []
            submitted = time.monotonic()
            done = federation.analyse(
                root / f"results-{index}.json",
                run_name=f"analysis-{index}",
                on_event=events.append,
            )
            submit_seconds.append(time.monotonic() - submitted)
            analysis_seconds.append(done["seconds"])
            exchanges.append(exchange_seconds(events))
        reply_bytes = []
        for name in centres:
            audit = federation.state_dir(name) / "audit.jsonl"
            for line in audit.read_text().splitlines():
                entry = json.loads(line)
                if entry.get("event") == "analysis-reply":
                    reply_bytes.append(entry["reply_bytes"])
    bare = statistics.median(ping_seconds)
    secure = statistics.median(analysis_seconds)
    one_attempt = [e for e in exchanges if len(e) == 3]  # summaries, seeds, rest
    return {
        "nodes": size,
        "setup_seconds": round(setup_seconds, 1),
        "bare_round_seconds": [round(s, 2) for s in ping_seconds],
        "analysis_seconds": [round(s, 2) for s in analysis_seconds],
        "submit_to_results_seconds": [round(s, 2) for s in submit_seconds],
        "median_bare_round": round(bare, 2),
        "median_analysis": round(secure, 2),
        "ratio_analysis_to_bare": round(secure / bare, 2),
        "exchanges_seconds": exchanges,
        "median_summaries_exchange": _median_of(one_attempt, 0),
        "median_seeds_exchange": _median_of(one_attempt, 1),
        "masked_vector_bytes_per_node": sorted(set(reply_bytes)),
    }


def exchange_seconds(events: list[dict]) -> list[list]:
    """[label, seconds] per exchange of one analysis, then ["rest", seconds] up to ``done``.

    Labels are the progress summaries ("attempt 1: 3/3 nodes answered", "attempt 1: 3/3
    seeds revealed"); each interval runs from the previous event (``nodes`` first).
    """
    marks = [e for e in events if e["event"] in ("nodes", "attempt", "done")]
    intervals = []
    for before, after in itertools.pairwise(marks):
        label = after.get("summary", "rest") if after["event"] == "attempt" else "rest"
        intervals.append([label, round(after["time"] - before["time"], 2)])
    return intervals


def _median_of(rows: list[list[list]], position: int) -> float | None:
    return round(statistics.median(row[position][1] for row in rows), 2) if rows else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--pings", type=int, default=5)
    parser.add_argument("--analyses", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = []
    for size in args.nodes:
        print(f"federation of {size} nodes", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"sscjak-bench-{size}-") as scratch:
            figures.append(bench_federation(size, args.pings, args.analyses, Path(scratch)))
        print(json.dumps(figures[-1], indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
