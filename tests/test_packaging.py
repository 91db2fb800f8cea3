"""The distribution ships every package the code imports."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_directory_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("ledger", "projections")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found == listed


def test_the_editable_install_make_demo_runs_has_nothing_to_warn_about(tmp_path: Path) -> None:
    # setuptools warns (on every `make demo`) when it must install an import finder instead of a plain
    # .pth entry; the explicit package-dir in pyproject.toml is what lets it use the .pth entry.
    project = tmp_path / "project"
    project.mkdir()
    for name in ("ledger", "projections"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    code = "import sys\nfrom setuptools import build_meta\nbuild_meta.build_editable(sys.argv[1])\n"
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=project, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    said = proc.stdout + proc.stderr
    assert "using .pth file" in said
    assert "meta path finder" not in said and "Please be careful" not in said and "Warning" not in said
