"""Adapters to other diffusion ecosystems: k-diffusion (Crowson's `k_diffusion.sampling`).

- `KDiffusionDenoiser(net)`: an NVlabs network (ours or a loaded pickle) as a k-diffusion denoiser
  `model(x, sigma, class_labels=None)`, for any k-diffusion sampler.
- `NVlabsDenoiser(model, ...)`: a k-diffusion denoiser with the NVlabs interface, for `edm_bdia.sample`'s samplers.
- `k_diffusion_sampler(name)`: a named k-diffusion sampler ('euler', 'heun', 'dpm_2', 'lms', 'dpmpp_2m') called like
  our samplers, `sampler(net, latents, class_labels=..., num_steps=...)`, with its `nfe(num_steps)`.
- `load_k_diffusion_sampling()`: k-diffusion's sampling module, loaded without the rest of k-diffusion.

Importing this package never imports k-diffusion; only `k_diffusion_sampler` and `load_k_diffusion_sampling` do.
"""

from .k_diffusion import KDiffusionDenoiser, NVlabsDenoiser
from .k_diffusion_loader import load_sampling as load_k_diffusion_sampling
from .k_diffusion_samplers import SAMPLER_NAMES, KDiffusionSampler, k_diffusion_sampler

__all__ = ['KDiffusionDenoiser', 'NVlabsDenoiser', 'k_diffusion_sampler', 'KDiffusionSampler', 'SAMPLER_NAMES',
           'load_k_diffusion_sampling']
