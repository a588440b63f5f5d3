"""Parts of the solver study (`benchmarks/solver_study.py`): testbeds, methods, reference solves, metrics, report."""
