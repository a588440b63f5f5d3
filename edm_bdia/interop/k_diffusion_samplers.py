"""Named k-diffusion samplers run on this package's networks and latents, called like `edm_bdia.sample`'s samplers.

    heun = k_diffusion_sampler('heun')
    images = heun(net, latents, class_labels=labels, num_steps=18)   # float64, edm_sampler's schedule
    heun.nfe(18)                                                      # 35 network evaluations
"""

import inspect

import torch

from edm_bdia.sample import karras_sigmas
from edm_bdia.samplers.checks import check_class_labels, check_latents

from .k_diffusion import KDiffusionDenoiser
from .k_diffusion_loader import load_sampling

# Deterministic k-diffusion ODE samplers: network evaluations for N steps on a schedule that ends at sigma = 0.
NFE_PER_STEPS = {
    'euler': lambda n: n,
    'heun': lambda n: 2 * n - 1,  # two per step, one (Euler) on the last step to sigma = 0
    'dpm_2': lambda n: 2 * n - 1,  # midpoint in log sigma, Euler on the last step
    'lms': lambda n: n,  # linear multistep (order 4 by default)
    'dpmpp_2m': lambda n: n,  # DPM-Solver++(2M), first order on the first and last steps
}
SAMPLER_NAMES = tuple(NFE_PER_STEPS)
# Arguments the wrapper supplies itself; the rest of a sampler's keyword arguments may be given as options.
_SUPPLIED = {'model', 'x', 'sigmas', 'extra_args', 'callback', 'disable'}


def _check_sigmas(sigmas, device):
    """An explicit schedule as float64 on `device`: 1-D, at least two levels, strictly decreasing, none negative."""
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64, device=device)
    if sigmas.ndim != 1 or len(sigmas) < 2 or not bool((sigmas[1:] < sigmas[:-1]).all()) or sigmas[-1] < 0:
        raise ValueError('sigmas must be a 1-D, strictly decreasing sequence of at least two noise levels >= 0 '
                         '(e.g. karras_sigmas(num_steps, net=net), which ends in 0)')
    return sigmas


class KDiffusionSampler:
    """One named k-diffusion sampler (`sample_<name>` of k-diffusion's sampling module) with fixed `options`.

    Calling it runs the sampler from x = latents * sigmas[0] in float64 on `KDiffusionDenoiser(net)`, with EDM's
    schedule `karras_sigmas(num_steps, sigma_min, sigma_max, rho, net=net)` unless `sigmas` is given, and returns
    float64 images. `callback` is k-diffusion's: called with dict(x, i, sigma, sigma_hat, denoised) after each
    step's first evaluation, x being the state before the step. k-diffusion's Euler and Heun draw
    `torch.randn_like(x)` from the global generator every step, even without churn.
    """

    def __init__(self, name, **options):
        if name not in NFE_PER_STEPS:
            raise ValueError(f"k-diffusion sampler must be one of {', '.join(SAMPLER_NAMES)}, not {name!r}")
        self.name = name
        self.function = getattr(load_sampling(), f'sample_{name}')
        allowed = set(inspect.signature(self.function).parameters) - _SUPPLIED
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ValueError(f"k-diffusion's sample_{name} takes no option {', '.join(unknown)}; it takes "
                             f"{', '.join(sorted(allowed)) or 'none'}")
        self.options = options

    def nfe(self, num_steps):
        """Network evaluations per image for `num_steps` steps on a schedule ending at sigma = 0."""
        return NFE_PER_STEPS[self.name](num_steps)

    def __call__(self, net, latents, *, class_labels=None, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7,
                 sigmas=None, callback=None):
        check_latents(net, latents)
        check_class_labels(net, class_labels, latents.shape[0])
        if sigmas is None:
            sigmas = karras_sigmas(num_steps, sigma_min, sigma_max, rho, net=net, device=latents.device)
        else:
            sigmas = _check_sigmas(sigmas, latents.device)
        x = latents.to(torch.float64) * sigmas[0]  # x_0 ~ N(0, sigma_0^2 I), as edm_sampler starts
        extra_args = {} if class_labels is None else {'class_labels': class_labels}
        return self.function(KDiffusionDenoiser(net), x, sigmas, extra_args=extra_args, callback=callback,
                             disable=True, **self.options)

    def __repr__(self):
        options = ''.join(f', {key}={value!r}' for key, value in self.options.items())
        return f'k_diffusion_sampler({self.name!r}{options})'


def k_diffusion_sampler(name, **options):
    """The k-diffusion sampler `name` (one of SAMPLER_NAMES) as a callable like this package's samplers.

    `options` go to k-diffusion's `sample_<name>` (e.g. `s_churn` for 'heun', `order` for 'lms'). Loads
    k-diffusion's sampling module now; raises ImportError with the install line when it is missing.
    """
    return KDiffusionSampler(name, **options)
