"""``python -m benchmarks [--quick] [--repeat N] [NAME ...]``: run the bench_*.py modules.

Prints one markdown table per benchmark and writes every figure, with its
samples and the machine it ran on, to ``benchmarks/results/latest.json``
(``latest-quick.json`` for ``--quick``, so a smoke run never overwrites real
figures). ``--quick`` is a few-seconds smoke run: small sizes, two
repetitions, and the only check is that every figure was produced. No mode
asserts a speed.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path
from typing import Any

from ._harness import Options, environment, missing_figures, now_utc, write_results

PACKAGE_DIR = Path(__file__).resolve().parent


def discover() -> list[str]:
    """Names of the benchmark modules (``bench_*``), sorted."""
    return sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE_DIR)]) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few-seconds smoke run: tiny sizes, 2 repetitions")
    parser.add_argument("--repeat", type=int, default=None, help="override the number of repetitions")
    parser.add_argument("names", nargs="*", help="run only these benchmarks (e.g. append or bench_append)")
    args = parser.parse_args(argv)
    options = Options(quick=args.quick, repeat=args.repeat)

    modules = discover()
    if args.names:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in args.names}
        unknown = wanted - set(modules)
        if unknown:
            parser.error(f"no such benchmark: {', '.join(sorted(unknown))} (have: {', '.join(modules)})")
        modules = [m for m in modules if m in wanted]

    env = environment()
    mode = "quick" if options.quick else "full"
    print(f"# session-ledger benchmarks ({mode})\n")
    print(f"Python {env['python']}, SQLite {env['sqlite']}, {env['platform']}, {env['cpus']} CPUs\n")

    started = time.perf_counter()
    reports: list[dict[str, Any]] = []
    problems: list[str] = []
    for module_name in modules:
        module = importlib.import_module(f"{__package__}.{module_name}")
        t0 = time.perf_counter()
        report = module.run(options)
        report["seconds"] = round(time.perf_counter() - t0, 2)
        reports.append(report)
        print(f"## {report['title']}\n")
        if report.get("note"):
            print(f"{report['note']} ({report['seconds']} s)\n")
        print(report["table"] + "\n")
        figures = report.get("figures") or {}
        if not figures:
            problems.append(f"{module_name}: produced no figures")
        problems.extend(f"{module_name}: figure {name!r} was not produced" for name in missing_figures(figures))

    payload = {
        "created_at": now_utc(),
        "mode": mode,
        "options": {"quick": options.quick, "repeat": options.repeat},
        "environment": env,
        "seconds": round(time.perf_counter() - started, 2),
        "benchmarks": {r["name"]: r for r in reports},
    }
    path = write_results(payload, "latest-quick.json" if options.quick else "latest.json")
    print(f"results: {path} ({payload['seconds']} s in all)")
    if problems:
        print("\n".join(["", "MISSING FIGURES:", *problems]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
