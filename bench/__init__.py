"""Benchmarks of Chorus against raw asyncpg, measured in the same run: `python -m bench`.

`append` times one command on one Customer aggregate against single-row commits; `ingest`
times signals committed over HTTP batches and over NATS against `executemany` of the same rows.
Results go to `bench/results/<name>.json`; see docs/performance.md.
"""

from __future__ import annotations
