"""Peers measured in the same harness as our server (bench/run.py)."""
