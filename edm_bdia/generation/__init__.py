"""The generation engine behind `edm_bdia.generate` (the CLI): seeds and file names, per-seed inputs, sampler
choice, how the network is called, writer threads, the run manifest, grid/npz outputs and streaming FID."""
