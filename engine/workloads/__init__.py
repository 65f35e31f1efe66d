"""Workload generators: which pages each VM reads and writes in a tick."""
