"""Benchmarks: each module prints a table and writes its figures to bench/results/."""
