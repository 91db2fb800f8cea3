"""Ratio benchmarks: session-ledger against raw ``sqlite3`` measured in the same process run.

Run all of them with ``python -m benchmarks`` (about a minute at most), or a
few-seconds smoke version with ``python -m benchmarks --quick``. Each
``bench_*.py`` module exposes ``NAME``, ``TITLE`` and ``run(options)``; the
shared helpers live in ``benchmarks._harness``. Results go to
``benchmarks/results/`` (git-ignored).
"""
