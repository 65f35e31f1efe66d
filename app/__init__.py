"""Overcommit's console and command line (the engine lives in `engine`)."""
