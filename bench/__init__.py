"""Scale-out benchmark of issue 7: `python bench/run.py` (see run.py)."""
