"""The public sampler API of edm_bdia (docs/samplers.md explains the maths and the choices).

- `karras_sigmas`: EDM's noise levels (float64, ending in 0).
- `edm_sampler`, `ablation_sampler`: drop-ins for NVlabs' `generate.py` samplers (same draws, same bits on CPU);
  `edm2_sampler`: the drop-in for NVlabs edm2's `generate_images.py` sampler (float32, 32 steps).
- `bdia_sampler`: BDIA from noise to images, a drop-in beside `edm_sampler`; `bdia_sample`, `bdia_invert`,
  `bdia_encode`, `bdia_edit`: the exactly invertible runs (image -> noise -> image), carried between them as a
  `BDIAPair` and returned as `SampleResult` / `InversionResult` / `EditResult` (`Trajectory`: every state).
  `DEFAULT_GAMMA`, `DEFAULT_BASE`: the default invertible sampler; `strength_to_step`: the step a partial
  inversion stops at; `round_trip_settings`: a round trip's settings checked before any work.
- `StackedRandomGenerator`: one random stream per seed, NVlabs semantics.

Every sampler takes `callback=None`, called after each step with dict(i, t_cur, t_next, x, denoised), a guiding
network `gnet=` with its weight `guidance=` (EDM2's classifier-free guidance and autoguidance), and, but for
`edm2_sampler`, an explicit schedule `sigmas=` (t_0 > ... > t_N = 0) instead of num_steps / sigma_min / sigma_max /
rho.
"""

from .samplers.ablation import ablation_sampler
from .samplers.bdia import BDIAPair
from .samplers.defaults import DEFAULT_BASE, DEFAULT_GAMMA
from .samplers.edm import edm2_sampler, edm_sampler
from .samplers.invertible import (EditResult, InversionResult, SampleResult, bdia_edit, bdia_encode, bdia_invert,
                                  bdia_sample, bdia_sampler, round_trip_settings, strength_to_step)
from .samplers.rng import StackedRandomGenerator
from .samplers.schedules import karras_sigmas
from .samplers.trajectory import Trajectory

__all__ = ['karras_sigmas', 'edm_sampler', 'edm2_sampler', 'ablation_sampler', 'bdia_sampler', 'bdia_sample', 'bdia_invert',
           'bdia_encode', 'bdia_edit', 'BDIAPair', 'SampleResult', 'InversionResult', 'EditResult', 'strength_to_step',
           'round_trip_settings',            'DEFAULT_GAMMA', 'DEFAULT_BASE', 'Trajectory', 'StackedRandomGenerator']
