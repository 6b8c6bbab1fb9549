"""Benchmarks for agentcore (not part of the library): docs/performance.md, bench/NOTES.md."""
