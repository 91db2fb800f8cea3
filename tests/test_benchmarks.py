"""The benchmarks never rot: their smoke mode runs in the test suite and produces every figure.

It asserts only that they ran and produced their figures, never a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_every_benchmark_runs_in_quick_mode_and_produces_every_figure() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "MISSING FIGURES" not in proc.stderr
    results = json.loads((ROOT / "benchmarks" / "results" / "latest-quick.json").read_text())
    modules = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py"))
    assert sorted(results["benchmarks"]) == modules
    assert "|" in proc.stdout  # the markdown tables were printed
