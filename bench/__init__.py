"""Benchmarks (dev tooling, not tests): ``python -m bench.bench_pipeline`` from the root."""
