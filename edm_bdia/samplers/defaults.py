"""The default invertible sampler of `bdia_sampler`, `bdia_invert`, `bdia_encode` and `bdia_edit`, in one place.

O-BELM (Wang et al., NeurIPS 2024) in EDM coordinates: BDIA on the Euler base with gamma_i = (h_i / h_{i+1})^2.
Second order at one network evaluation per step, stable for every step count tried, exactly invertible with
noise-like latents for real images; docs/samplers.md has the measurements behind this choice.
"""

DEFAULT_GAMMA = 'obelm'
DEFAULT_BASE = 'euler'
