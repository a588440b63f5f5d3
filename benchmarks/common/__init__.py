"""Helpers the benchmarks share: timing, engine runs, denoiser inputs, child processes, markdown tables, plots."""
