"""edm_bdia: EDM and BDIA samplers for NVlabs EDM checkpoints, sharded generation and FID."""

__version__ = '0.1.0'
