"""simulate pools through the secure round: the result is exactly the plain sum."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from sscjak.coordinator.federation.in_process import centre_summaries, pool_centre_summaries
from sscjak.coordinator.synthetic.demo_bundle import bundled_demo_folder
from sscjak.shared.plan import Plan, default_plan


def _demo_folders() -> list[Path]:
    return sorted(p for p in bundled_demo_folder().iterdir() if p.is_dir())


@pytest.mark.parametrize("plan", [default_plan(), Plan(outcomes=("mrss",), months=(12,))])
def test_secure_pooled_summary_equals_the_plain_sum(plan: Plan) -> None:
    folders = _demo_folders()
    assert len(folders) >= 3
    pooled, nodes = pool_centre_summaries(folders, plan)
    plain = np.sum(centre_summaries(folders, plan), axis=0, dtype=np.int64)
    assert nodes == len(folders)
    assert pooled.dtype == np.int64
    np.testing.assert_array_equal(pooled, plain)


def test_two_folders_are_summed_directly_with_a_note(capsys: pytest.CaptureFixture[str]) -> None:
    folders = _demo_folders()[:2]
    pooled, nodes = pool_centre_summaries(folders, default_plan())
    assert nodes == 2
    assert "secure aggregation needs at least 3 nodes" in capsys.readouterr().err
    plain = np.sum(centre_summaries(folders, default_plan()), axis=0, dtype=np.int64)
    np.testing.assert_array_equal(pooled, plain)


def test_folders_with_the_same_name_become_distinct_nodes(tmp_path: Path) -> None:
    folders = []
    for index, source in enumerate(_demo_folders()[:3]):
        copy = tmp_path / str(index) / "centre"
        shutil.copytree(source, copy)
        folders.append(copy)
    pooled, nodes = pool_centre_summaries(folders, default_plan())
    assert nodes == 3
    plain = np.sum(centre_summaries(folders, default_plan()), axis=0, dtype=np.int64)
    np.testing.assert_array_equal(pooled, plain)
