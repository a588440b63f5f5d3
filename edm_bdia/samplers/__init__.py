"""Sampler implementations; the public API is `edm_bdia.sample`."""
