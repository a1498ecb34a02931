"""The bundled demo centres: how they are generated and where they are installed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sscjak.coordinator.synthetic.cohort_model import generate_cohort
from sscjak.coordinator.synthetic.writers import write_centre
from sscjak.shared.plan import Plan, default_plan

#: The bundled demo: folder name, number of patients, seed and patient-id prefix.
DEMO_CENTRES: tuple[tuple[str, int, int, str], ...] = (
    ("centre_a", 60, 20260101, "A"),
    ("centre_b", 45, 20260102, "B"),
    ("centre_c", 35, 20260103, "C"),
    ("centre_d", 25, 20260104, "D"),
)



def write_demo_centres(folder: Path) -> list[Path]:
    """Regenerate the bundled demo set (``centre_a`` … ``centre_d``) under ``folder``.

    Deterministic: the same files every time, byte for byte, as committed in
    ``sscjak/coordinator/synthetic/demo_centres``. Returns the centre folders in order.
    """
    written = []
    for name, n_patients, seed, prefix in DEMO_CENTRES:
        tables = generate_cohort(n_patients, seed, visits_per_patient=8.0, id_prefix=prefix)
        path = Path(folder) / name
        write_centre(tables, path, fmt="csv")
        written.append(path)
    return written


def bundled_demo_folder() -> Path:
    """The installed folder holding the bundled demo centres (``centre_a`` … ``centre_d``)."""
    return Path(__file__).resolve().parent / "demo_centres"




def demo_centre_folders() -> dict[str, Path]:
    """Node name → folder of every bundled demo centre (``centre_a`` → ``centre-a``)."""
    folders = sorted(p for p in bundled_demo_folder().glob("centre_*") if p.is_dir())
    return {folder.name.replace("_", "-"): folder for folder in folders}


def demo_plan() -> Plan:
    """The demo's plan: the reference study's changes, and drug retention by drug."""
    return replace(
        default_plan(),
        title="JAK inhibitors in systemic sclerosis: change from baseline and drug retention",
        time_to_event=("drug_retention",),
        by="jaki_drug",
    )
