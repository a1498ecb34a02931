"""Benchmark: one node deriving and summarising 100,000 patients / 1,000,000 visits.

Target: under 5 s wall and under 2 GiB peak memory on the 2-core CI machine,
for read + validate + derive + summarise of one centre folder.

Usage::

    python bench/bench_node.py [--patients 100000] [--visits-per-patient 10] [--folder DIR]

The folder is generated once (synthetic cohort, CSV) and reused on later runs. The
measured phase runs in a fresh child process so that its peak RSS (``ru_maxrss``) is the
node's own, not the generator's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
started = time.perf_counter()
from sscjak.node.data.centre_reader import read_centre
from sscjak.node.summarise.summary_vector import summarise_data
from sscjak.shared.plan import default_plan
imported = time.perf_counter()
data = read_centre(Path(sys.argv[1]))
read = time.perf_counter()
vector = summarise_data(data, default_plan())
done = time.perf_counter()
print(json.dumps({
    "patients": int(vector[1]), "visits": len(data.visits),
    "import_s": imported - started, "read_validate_s": read - imported,
    "derive_summarise_s": done - read, "total_s": done - started,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--visits-per-patient", type=float, default=10.0)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.gettempdir()) / f"sscjak-bench-{args.patients}"
    if not (folder / "visits.csv").exists():
        from sscjak.coordinator.synthetic.cohort_model import generate_cohort
        from sscjak.coordinator.synthetic.writers import write_centre

        started = time.perf_counter()
        cohort = generate_cohort(
            args.patients, seed=2026, visits_per_patient=args.visits_per_patient
        )
        write_centre(cohort, folder)
        print(f"generated {folder} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    runs = []
    for _ in range(args.repeat):
        completed = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, check=True
        )
        runs.append(json.loads(completed.stdout))
    best = min(runs, key=lambda run: run["total_s"])
    print(json.dumps({"folder": str(folder), "runs": runs, "best": best}, indent=2))


if __name__ == "__main__":
    main()
