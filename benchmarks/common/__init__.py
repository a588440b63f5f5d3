"""Helpers the benchmarks share: timing, engine runs, a metered network, denoiser inputs, the ODE derivative, FID
timing, the NVlabs baseline's command lines, paths, markdown tables and log-log plots."""
