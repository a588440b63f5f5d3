"""The default invertible sampler of `bdia_sampler`, `bdia_invert`, `bdia_encode` and `bdia_edit`, in one place.

O-BELM (Wang et al., NeurIPS 2024) in EDM coordinates, BDIA on the Euler base with gamma_i = (h_i / h_{i+1})^2,
with each gamma_i raised to at least 0.5 on the steps below the data scale ('obelm-floor'): one network evaluation
per step, stable at every step count tried, more accurate than Heun at equal cost, exactly invertible, with
noise-like latents for real images. docs/samplers.md has the measurements behind this choice (and the solver study's).
"""

# The named per-step gamma rules (edm_bdia.samplers.bdia.GAMMA_RULES implements them); torch-free, for parsing.
GAMMA_RULE_NAMES = ('obelm', 'obelm-floor')
DEFAULT_GAMMA = 'obelm-floor'
DEFAULT_BASE = 'euler'
