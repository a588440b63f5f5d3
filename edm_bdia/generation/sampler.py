"""Which sampler function a generation run calls, with which keyword arguments, and how it is called.

Routing (`choose_sampler`: NVlabs' generate.py rules plus BDIA):
* any of solver / discretization / schedule / scaling given       -> `ablation_sampler` (NVlabs);
* gamma != 0 (a number or a named rule such as 'obelm-adaptive'; GAMMA_RULE_NAMES in samplers/defaults.py) or a BDIA
  base given                                                      -> `bdia_sampler` (deterministic: no churn);
* otherwise                                                      -> `edm_sampler` (NVlabs).
Settings left unset (None) are not passed on, so each sampler's own defaults apply, as in NVlabs.

`choose_sampler` checks every setting before it imports torch (which loads with the samplers), so a command line
refuses bad settings at once; `check_sampler` checks what needs the network, before any file is written.
"""

import inspect

from edm_bdia.errors import ArgumentError
from edm_bdia.samplers.checks import (check_churn, check_num_steps, check_positive, check_sigma_range,
                                      warn_if_many_steps)


def _check_settings(num_steps, sigma_min, sigma_max, rho, S_churn, S_min, S_max, S_noise):
    """The checks both command lines' sampler options share (a noise level may be None: the network's own)."""
    check_num_steps(num_steps)
    warn_if_many_steps(num_steps)
    check_positive(rho, 'rho')
    check_churn(S_churn, S_min, S_max, S_noise)
    for name, value in (('sigma_min', sigma_min), ('sigma_max', sigma_max)):
        if value is not None:
            check_positive(value, name)
    if sigma_min is not None and sigma_max is not None:
        check_sigma_range(sigma_min, sigma_max)


def _check_bdia_without_churn(S_churn):
    if S_churn > 0:
        raise ArgumentError('S_churn', 'must be 0 with BDIA (`gamma` > 0 or a `bdia_base`): BDIA is deterministic, '
                                       'churn would make it non-invertible; drop `S_churn` or set `gamma` to 0')


def _bdia(sample, common, gamma, bdia_base):
    """`bdia_sampler` and its arguments: the O-BELM rules (a gamma named by a string) are for the Euler base."""
    base = bdia_base or ('euler' if isinstance(gamma, str) else 'heun')
    return sample.bdia_sampler, dict(common, gamma=gamma, base=base)


def choose_sampler(*, num_steps=18, sigma_min=None, sigma_max=None, rho=7, S_churn=0, S_min=0, S_max=float('inf'),
                   S_noise=1, solver=None, discretization=None, schedule=None, scaling=None, gamma=0.0,
                   bdia_base=None):
    """(sampler function, its keyword arguments) for NVlabs' generate.py options (plus gamma / bdia_base for BDIA),
    to pass on as `generate_images(..., sampler_fn=..., **kwargs)`; every setting that can be checked without a
    network is checked first."""
    _check_settings(num_steps, sigma_min, sigma_max, rho, S_churn, S_min, S_max, S_noise)
    common = dict(num_steps=num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)
    churn = dict(S_churn=S_churn, S_min=S_min, S_max=S_max, S_noise=S_noise)
    ablation = dict(solver=solver, discretization=discretization, schedule=schedule, scaling=scaling)
    use_bdia = gamma != 0 or bdia_base is not None
    if use_bdia and any(value is not None for value in ablation.values()):
        raise ArgumentError('gamma', 'or `bdia_base` (BDIA) cannot be combined with `solver`, `discretization`, '
                                     '`schedule` or `scaling` (the ablation sampler); drop one of them')
    if use_bdia:
        _check_bdia_without_churn(S_churn)
    from edm_bdia import sample  # torch loads here, once the settings are known to be good
    if use_bdia:
        sampler_fn, kwargs = _bdia(sample, common, gamma, bdia_base)
    elif any(value is not None for value in ablation.values()):
        sampler_fn, kwargs = sample.ablation_sampler, dict(common, **churn, **ablation)
    else:
        sampler_fn, kwargs = sample.edm_sampler, dict(common, **churn)
    return sampler_fn, {key: value for key, value in kwargs.items() if value is not None}


def choose_edm2_sampler(*, num_steps=32, sigma_min=0.002, sigma_max=80, rho=7, guidance=1, S_churn=0, S_min=0,
                        S_max=float('inf'), S_noise=1, gamma=0.0, bdia_base=None):
    """(sampler function, its keyword arguments) for NVlabs edm2's generate_images.py options: `edm2_sampler`, or
    with `gamma` other than 0 or a BDIA base the invertible sampler on the same noise levels and guidance
    (`bdia_sampler`, float64, no churn); every setting that can be checked without a network is checked first."""
    _check_settings(num_steps, sigma_min, sigma_max, rho, S_churn, S_min, S_max, S_noise)
    common = dict(num_steps=num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho, guidance=guidance)
    use_bdia = gamma != 0 or bdia_base is not None
    if use_bdia:
        _check_bdia_without_churn(S_churn)
    from edm_bdia import sample  # torch loads here, once the settings are known to be good
    if use_bdia:
        return _bdia(sample, common, gamma, bdia_base)
    return sample.edm2_sampler, dict(common, S_churn=S_churn, S_min=S_min, S_max=S_max, S_noise=S_noise)


def noise_argument(sampler_fn, sampler_kwargs, randn_like):
    """The per-seed noise a sampler is given: `randn_like` for a sampler that takes it and draws, None for
    `edm_sampler` without churn (it then draws nothing, which leaves every image unchanged; the ablation sampler
    keeps its draws, since its churn term need not vanish: sigma^-1(sigma(t)) is not t to the bit), nothing for a
    sampler without a `randn_like` argument (BDIA)."""
    from edm_bdia.sample import edm_sampler
    if 'randn_like' not in inspect.signature(sampler_fn).parameters:
        return {}
    draws = sampler_fn is not edm_sampler or sampler_kwargs.get('S_churn', 0) > 0
    return dict(randn_like=randn_like if draws else None)


def _settings(sampler_fn, sampler_kwargs, *names):
    """{name: the value the sampler will use}: given, else the sampler function's own default."""
    parameters = inspect.signature(sampler_fn).parameters
    return {name: sampler_kwargs[name] if name in sampler_kwargs else parameters[name].default for name in names}


def check_sampler(net, sampler_fn, sampler_kwargs, gnet=None):
    """Raise now (before any file is written) what calling `sampler_fn` on `net` (guided by `gnet`) would raise: a
    keyword argument it does not take, a noise-level range that clamping to the network's range leaves empty, an
    ablation discretization without levels, a guiding network that cannot guide `net`."""
    from edm_bdia.sample import ablation_sampler, bdia_sampler, edm2_sampler, edm_sampler, karras_sigmas
    from edm_bdia.samplers.ablation import ablation_noise_levels
    from edm_bdia.samplers.guidance import guided
    parameters = inspect.signature(sampler_fn).parameters
    if not any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters.values()):
        for name in list(sampler_kwargs) + (['gnet'] if gnet is not None else []):
            if name not in parameters:
                raise ArgumentError(name, f'is not an argument of {sampler_fn.__name__}; drop it')
    if 'guidance' in parameters:
        guided(net, gnet, sampler_kwargs.get('guidance', parameters['guidance'].default))
    if sampler_fn is ablation_sampler:
        ablation_noise_levels(net, **_settings(sampler_fn, sampler_kwargs, 'num_steps', 'discretization', 'sigma_min',
                                               'sigma_max', 'rho', 'epsilon_s', 'M', 'C_1', 'C_2'))
    elif sampler_fn in (edm_sampler, bdia_sampler):
        karras_sigmas(**_settings(sampler_fn, sampler_kwargs, 'num_steps', 'sigma_min', 'sigma_max', 'rho'), net=net)
    elif sampler_fn is edm2_sampler:  # EDM2 neither clamps the noise levels to the network nor rounds them
        karras_sigmas(**_settings(sampler_fn, sampler_kwargs, 'num_steps', 'sigma_min', 'sigma_max', 'rho'))
