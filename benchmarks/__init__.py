"""Benchmarks and studies of edm_bdia, run from the repository root as `python -m benchmarks.<name>`.

Entry points are the modules of this folder (throughput, gpu_check, fid_speed, solver_study, bdia_defaults,
digits_net, and the child processes memory_probe and nvlabs_baseline); `common/` holds the helpers they share and
`study/` the parts of the solver study. Not installed with the package.
"""
