"""Ratio benchmarks: session-ledger against raw ``sqlite3`` measured in the same process run.

Run all of them with ``python -m benchmarks`` (a few minutes on 2 cores: the
load benchmark alone builds a 1M-event session and takes about two), or a
few-seconds smoke version with ``python -m benchmarks --quick``. Each
``bench_*.py`` module exposes ``NAME``, ``TITLE`` and ``run(options)``; the
shared helpers live in ``benchmarks._harness``. Results go to
``benchmarks/results/`` (git-ignored).
"""
