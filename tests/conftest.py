"""How the suite is spread over pytest-xdist workers (``addopts`` in pyproject.toml).

On the project's 2-core machine the suite is bound by CPU, not by waiting: the
integration tests start many Python processes (SuperLink, SuperNodes, ``sscjak-node
serve``, one ServerApp per analysis, the set-up commands), each
importing Flower, and the unit tests compute. Three workers keep both cores busy while
one of them waits on Flower's heartbeat expiry or an exchange timeout; more workers only
lengthen every test.

* ``--dist loadfile``: each test file runs whole, in file order, on one worker, sharing
  its module-scoped federation. (Not ``loadgroup``: with pytest 9.2, pytest-xdist 3.8
  no longer sees ``xdist_group`` marks, so it would spread a file's tests.)
* The files that take longest are handed out first (``--no-loadscope-reorder`` keeps
  this order), so that no long file starts last.
* How many workers ``-n auto`` starts: :func:`pytest_xdist_auto_num_workers`; ``-n 0``
  runs everything in this process.
* Ports: every port the tests or :class:`LoopbackFederation` pick comes from the
  worker's own block (``tests/support/ports.py``), so two workers never get the same.
"""

from __future__ import annotations

import os
from pathlib import Path

import ports
import pytest

#: Test files, longest first (measured with --durations on 2 cores, docs/benchmarks.md);
#: the rest follow in their usual order.
LONGEST_FIRST = (
    "tests/integration/test_faults.py",
    "tests/integration/test_federation_deployment.py",
    "tests/integration/test_disclosure.py",
    "tests/deploy/test_deploy_files.py",
    "tests/integration/test_federation_commands.py",
    "tests/integration/test_malformed_messages.py",
    "tests/integration/test_firewall_netns.py",
    "tests/integration/test_first_study.py",
    "tests/node/test_centre_reader_fuzz.py",
    "tests/node/test_centre_reader.py",
    "tests/coordinator/test_report_heterogeneity.py",
    "tests/coordinator/test_report_strata.py",
    "tests/coordinator/test_report_figures.py",
)
#: Workers for a run with integration tests (some of them waiting) and without them.
WORKERS_WITH_INTEGRATION = 3
WORKERS_WITHOUT_INTEGRATION = 2


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook (-p no:xdist runs without)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own hook reads it
    expression = (config.option.markexpr or "").replace(" ", "")
    if "notintegration" in expression:
        return WORKERS_WITHOUT_INTEGRATION
    return WORKERS_WITH_INTEGRATION


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(config.rootpath)
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}

    def position(item: pytest.Item) -> int:
        return rank.get(Path(item.path).resolve().relative_to(root).as_posix(), len(rank))

    items.sort(key=position)  # stable: the tests of a file keep their order


@pytest.fixture(scope="session", autouse=True)
def _ports_of_this_worker():
    """LoopbackFederation's SuperLink ports come from this worker's block too."""
    from sscjak.coordinator.federation import loopback

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loopback, "free_port", ports.free_port)
        yield
