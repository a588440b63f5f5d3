"""Parts of the solver study (`python -m benchmarks.solver_study`): testbeds, methods, reference solves, metrics,
report, and the digits network."""
