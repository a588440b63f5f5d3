"""The public sampler API of edm_bdia.

- `karras_sigmas`: EDM's noise levels (float64, ending in 0).
- `edm_sampler`, `ablation_sampler`: drop-ins for NVlabs' `generate.py` samplers (same draws, same bits on CPU).
- `bdia_sampler`, `bdia_invert`, `bdia_encode`: BDIA on EDM, exactly invertible (image -> noise -> image).
- `StackedRandomGenerator`: one random stream per seed, NVlabs semantics.

Every sampler takes `callback=None`, called after each step with dict(i, t_cur, t_next, x, denoised).
"""

from .rng import StackedRandomGenerator
from .samplers.ablation import ablation_sampler
from .samplers.bdia import bdia_encode, bdia_invert, bdia_sampler
from .samplers.edm import edm_sampler
from .samplers.schedules import karras_sigmas

__all__ = ['karras_sigmas', 'edm_sampler', 'ablation_sampler', 'bdia_sampler', 'bdia_invert', 'bdia_encode',
           'StackedRandomGenerator']
