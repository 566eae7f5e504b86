"""Benchmarks: each prints figures; none asserts on time."""
