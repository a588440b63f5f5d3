"""The public sampler API of edm_bdia (docs/samplers.md explains the maths and the choices).

- `karras_sigmas`: EDM's noise levels (float64, ending in 0).
- `edm_sampler`, `ablation_sampler`: drop-ins for NVlabs' `generate.py` samplers (same draws, same bits on CPU).
- `bdia_sampler`, `bdia_invert`, `bdia_encode`, `bdia_edit`: BDIA on EDM, exactly invertible (image -> noise ->
  image); the default is O-BELM with gamma_i >= 0.5 (`DEFAULT_GAMMA`, `DEFAULT_BASE`). `strength_to_step` maps an
  edit strength to the step a partial inversion stops at; `Trajectory` / `EditResult` hold every state of a run.
- `StackedRandomGenerator`: one random stream per seed, NVlabs semantics.

Every sampler takes `callback=None`, called after each step with dict(i, t_cur, t_next, x, denoised), and an
explicit schedule `sigmas=` (t_0 > ... > t_N = 0) instead of num_steps / sigma_min / sigma_max / rho.
"""

from .samplers.rng import StackedRandomGenerator
from .samplers.ablation import ablation_sampler
from .samplers.bdia import bdia_invert, bdia_sampler, strength_to_step
from .samplers.defaults import DEFAULT_BASE, DEFAULT_GAMMA
from .samplers.edm import edm_sampler
from .samplers.editing import EditResult, bdia_edit, bdia_encode
from .samplers.schedules import karras_sigmas
from .samplers.trajectory import Trajectory

__all__ = ['karras_sigmas', 'edm_sampler', 'ablation_sampler', 'bdia_sampler', 'bdia_invert', 'bdia_encode',
           'bdia_edit', 'strength_to_step', 'DEFAULT_GAMMA', 'DEFAULT_BASE', 'Trajectory', 'EditResult',
           'StackedRandomGenerator']
