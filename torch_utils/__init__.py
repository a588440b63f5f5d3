"""Own, dnnlib-free implementation of the `torch_utils` surface that NVlabs pickles reference."""
