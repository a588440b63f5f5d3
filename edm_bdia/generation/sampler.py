"""Which sampler a generation run uses, with which settings: NVlabs' routing plus BDIA.

Routing (as NVlabs' generate.py, plus BDIA):
* any of solver / discretization / schedule / scaling given -> `ablation_sampler` (NVlabs);
* gamma > 0, gamma 'obelm' or a BDIA base given              -> `bdia_sampler` (deterministic, so no churn);
* otherwise                                                   -> `edm_sampler` (NVlabs).
Settings left unset (None) are not passed on, so each sampler's own defaults apply, as in NVlabs.

`choose_sampler` checks every setting without importing torch (it loads with the samplers, on first use), so a
command line refuses bad settings at once.
"""

import dataclasses
import inspect
import math

from edm_bdia.errors import ArgumentError
from edm_bdia.samplers.checks import check_churn, check_num_steps, check_positive, check_sigma_range

ABLATION_SETTINGS = ('solver', 'discretization', 'schedule', 'scaling')


def _sampler_function(name):
    from edm_bdia import sample  # torch loads here, when a sampler is first needed
    return getattr(sample, name)


def _jsonable(value):
    """Non-finite floats become strings ('inf'): strict JSON has no Infinity."""
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
    """A sampler function by name and its keyword arguments (all but net, latents, class labels and noise)."""
    name: str
    options: dict

    @property
    def draws_noise(self):
        """True when the sampler needs per-seed random draws: a churning EDM step, or the ablation sampler
        (whose churn term need not vanish: sigma^-1(sigma(t)) is not t to the bit). `edm_sampler` without churn
        and BDIA draw nothing (`randn_like=None`), which leaves every image unchanged."""
        if self.name == 'ablation_sampler':
            return True
        return self.name == 'edm_sampler' and self.options.get('S_churn', 0) > 0

    def sample(self, net, latents, class_labels, randn_like):
        """Float64 images from `latents`; `randn_like` draws the per-seed noise (used when `draws_noise`)."""
        noise = dict(randn_like=randn_like if self.draws_noise else None) if self.name != 'bdia_sampler' else {}
        return _sampler_function(self.name)(net, latents, class_labels, **noise, **self.options)

    def _option(self, name):
        """The value the sampler will use: given, else the sampler function's own default."""
        if name in self.options:
            return self.options[name]
        return inspect.signature(_sampler_function(self.name)).parameters[name].default

    def check(self, net):
        """Raise now (before any file is written) what the sampler would raise for this network: a noise-level
        range that clamping to the network's range leaves empty, an ablation discretization without levels."""
        from edm_bdia.samplers.ablation import ablation_noise_levels
        from edm_bdia.samplers.schedules import karras_sigmas
        if self.name == 'ablation_sampler':
            ablation_noise_levels(net, self._option('num_steps'), **{name: self._option(name) for name in (
                'discretization', 'sigma_min', 'sigma_max', 'rho', 'epsilon_s', 'M', 'C_1', 'C_2')})
        else:
            karras_sigmas(self._option('num_steps'), self._option('sigma_min'), self._option('sigma_max'),
                          self._option('rho'), net=net)

    def record(self):
        """(name, options) as plain JSON values, for the manifest."""
        return self.name, {key: _jsonable(value) for key, value in self.options.items()}


def choose_sampler(*, num_steps=18, sigma_min=None, sigma_max=None, rho=7, S_churn=0, S_min=0, S_max=float('inf'),
                   S_noise=1, solver=None, discretization=None, schedule=None, scaling=None, gamma=0.0,
                   bdia_base=None):
    """The SamplerSettings for NVlabs' generate.py options (plus gamma / bdia_base for BDIA); every setting that
    can be checked without a network is checked here."""
    check_num_steps(num_steps)
    check_positive(rho, 'rho')
    check_churn(S_churn, S_min, S_max, S_noise)
    for name, value in (('sigma_min', sigma_min), ('sigma_max', sigma_max)):
        if value is not None:
            check_positive(value, name)
    if sigma_min is not None and sigma_max is not None:
        check_sigma_range(sigma_min, sigma_max)
    common = dict(num_steps=num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)
    churn = dict(S_churn=S_churn, S_min=S_min, S_max=S_max, S_noise=S_noise)
    ablation = dict(solver=solver, discretization=discretization, schedule=schedule, scaling=scaling)
    use_bdia = gamma != 0 or bdia_base is not None
    if use_bdia and any(value is not None for value in ablation.values()):
        raise ArgumentError('gamma', 'or `bdia_base` (BDIA) cannot be combined with `solver`, `discretization`, '
                                     '`schedule` or `scaling` (the ablation sampler); drop one of them')
    if use_bdia and S_churn > 0:
        raise ArgumentError('S_churn', 'must be 0 with BDIA (`gamma` > 0 or a `bdia_base`): BDIA is deterministic, '
                                       'churn would make it non-invertible; drop `S_churn` or set `gamma` to 0')
    if use_bdia:
        base = bdia_base or ('euler' if isinstance(gamma, str) else 'heun')  # O-BELM rules are for the Euler base
        name, options = 'bdia_sampler', dict(common, gamma=gamma, base=base)
    elif any(value is not None for value in ablation.values()):
        name, options = 'ablation_sampler', dict(common, **churn, **ablation)
    else:
        name, options = 'edm_sampler', dict(common, **churn)
    return SamplerSettings(name, {key: value for key, value in options.items() if value is not None})
