"""Malformed inputs of every kind (scenarios, saves, command lines, console commands) and
a runner that judges what the program does with them. The test suite runs a fixed sample
(tests/app/test_fuzz.py); `python benchmarks/fuzz.py` runs them all and prints a table."""
