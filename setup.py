"""Maps the three top-level folders to ``sscjak.node``, ``sscjak.coordinator`` and
``sscjak.shared``, with every package below them found on disk (nothing listed by hand).

Everything else about the distribution is in pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages, setup

#: The folders installed as ``sscjak.<folder>``.
TOP_LEVEL_FOLDERS = ("node", "coordinator", "shared")


def package_folders(root: Path) -> dict[str, str]:
    """Every installed package name and its folder (relative to ``root``)."""
    packages: dict[str, str] = {}
    for top in TOP_LEVEL_FOLDERS:
        packages[f"sscjak.{top}"] = top
        for sub in find_packages(str(root / top)):
            packages[f"sscjak.{top}.{sub}"] = f"{top}/{sub.replace('.', '/')}"
    return packages


if __name__ == "__main__":
    folders = package_folders(Path(__file__).resolve().parent)
    setup(packages=sorted(folders), package_dir=folders)
