"""Benchmarks for agentcore (not part of the library; see docs/performance.md)."""
