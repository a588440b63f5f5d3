"""Which sampler a generate command runs, with which keyword arguments, and which noise source.

Routing (NVlabs generate.py L291-293, plus BDIA):
* any of --solver/--disc/--schedule/--scaling  -> `ablation_sampler` (NVlabs);
* --gamma > 0, --gamma obelm or --bdia-base    -> `bdia_sampler` (deterministic, so no churn);
* otherwise                                     -> `edm_sampler` (NVlabs).
Options left unset (None) are not passed, so each sampler's own defaults apply, as in NVlabs.
"""

import click
import torch

from edm_bdia import sample

ABLATION_OPTIONS = ('solver', 'discretization', 'schedule', 'scaling')


def skip_noise_draws(x):
    """randn_like stand-in for `edm_sampler` when S_churn = 0 and S_noise >= 0 (no per-sample RNG draws).

    edm_sampler adds sqrt(t_hat^2 - t^2) * S_noise * eps with t_hat = round_sigma(t + 0 * t) = t (the schedule
    is already rounded), i.e. (+0) * S_noise * eps. With eps = -0.0 that is -0.0, and x + (-0.0) == x bit for bit
    for every x (also x = -0.0), exactly what a drawn eps gives. Nothing else draws from these generators after
    the sampler, so skipping the draws leaves every image unchanged.
    """
    return torch.full_like(x, -0.0)


def select_sampler(*, num_steps, sigma_min, sigma_max, rho, S_churn, S_min, S_max, S_noise, solver=None,
                   discretization=None, schedule=None, scaling=None, gamma=0.0, bdia_base=None):
    """-> (name, sampler function, keyword arguments)."""
    common = dict(num_steps=num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)
    churn = dict(S_churn=S_churn, S_min=S_min, S_max=S_max, S_noise=S_noise)
    ablation = dict(solver=solver, discretization=discretization, schedule=schedule, scaling=scaling)
    use_bdia = gamma != 0 or bdia_base is not None
    if use_bdia and any(value is not None for value in ablation.values()):
        raise click.UsageError('--gamma/--bdia-base (BDIA) cannot be combined with --solver/--disc/--schedule/'
                               '--scaling (the ablation sampler); drop one of them')
    if use_bdia and S_churn > 0:
        raise click.UsageError('--S_churn must be 0 with --gamma/--bdia-base: BDIA is deterministic (churn would '
                               'make it non-invertible); drop --S_churn or use --gamma 0')
    if use_bdia:
        base = bdia_base or ('euler' if gamma == 'obelm' else 'heun')  # O-BELM is BDIA's gamma_i on Euler
        name, function, kwargs = 'bdia_sampler', sample.bdia_sampler, dict(common, gamma=gamma, base=base)
    elif any(value is not None for value in ablation.values()):
        name, function, kwargs = 'ablation_sampler', sample.ablation_sampler, dict(common, **churn, **ablation)
    else:
        name, function, kwargs = 'edm_sampler', sample.edm_sampler, dict(common, **churn)
    return name, function, {key: value for key, value in kwargs.items() if value is not None}


def noise_source(name, kwargs, rnd):
    """The randn_like to give the sampler (None for BDIA, which draws nothing)."""
    if name == 'bdia_sampler':
        return None
    if name == 'edm_sampler' and kwargs['S_churn'] == 0 and kwargs['S_noise'] >= 0:
        return skip_noise_draws
    return rnd.randn_like
