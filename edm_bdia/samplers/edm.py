"""EDM's stochastic Heun sampler (Karras et al. 2022, Algorithm 2) as NVlabs writes it twice: `edm_sampler`, the
drop-in for EDM's `generate.edm_sampler` (float64 state, noise levels rounded by and clamped to the network, a draw
on every step), and `edm2_sampler`, the drop-in for EDM2's `generate_images.edm_sampler` (float32 state, noise levels
as computed, draws only on the steps that churn, 32 steps by default). Both take a guiding network (guidance.py).
"""

import torch

from edm_bdia.errors import ArgumentError

from .checks import check_churn, check_class_labels, check_latents
from .churn import churn_gamma
from .guidance import guided
from .noise_levels import sampler_sigmas
from .ode import base_increment
from .schedules import karras_sigmas


def _churned_levels(net, t_steps, *, S_churn, S_min, S_max):
    """t_hat_i = round_sigma(t_i + gamma_i t_i) of every step (EDM Algorithm 2, lines 4-5)."""
    num_steps = len(t_steps) - 1
    return [net.round_sigma(t_cur + churn_gamma(t_cur, num_steps=num_steps, S_churn=S_churn, S_min=S_min,
                                                S_max=S_max) * t_cur)
            for t_cur in t_steps[:-1]]


def edm_sampler(net, latents, class_labels=None, randn_like=torch.randn_like, num_steps=18, sigma_min=0.002,
                sigma_max=80, rho=7, S_churn=0, S_min=0, S_max=float('inf'), S_noise=1, callback=None, *,
                sigmas=None, gnet=None, guidance=1):
    """Sample images from float32/float64 `latents` ~ N(0, I); returns float64 images in about [-1, 1].

    Same float64 state, same random draws in the same order (one `randn_like` per step, churn or not) and the same
    result to the bit as NVlabs' sampler; the positional order of NVlabs' arguments is kept.

    `randn_like=None` draws nothing: on a step that does not churn (t_hat = t, e.g. everywhere with S_churn=0) the
    noise term is sqrt(t_hat^2 - t^2) S_noise eps = 0 * eps, so the images equal those of a run with draws (up to
    the sign of an exact zero). A step that churns needs draws: ValueError, checked before any network call.
    `sigmas`: explicit noise levels t_0 > ... > t_N = 0 (float64, used as given) instead of num_steps, sigma_min,
    sigma_max and rho. `callback(dict(i, t_cur, t_next, x, denoised))` runs after each step. `gnet`, `guidance`:
    sample the guided denoiser (guidance.py).
    """
    net = guided(net, gnet, guidance)
    check_latents(net, latents)
    check_class_labels(net, class_labels, latents.shape[0])
    check_churn(S_churn, S_min, S_max, S_noise)
    t_steps = sampler_sigmas(net, latents.device, sigmas, num_steps=num_steps, sigma_min=sigma_min,
                             sigma_max=sigma_max, rho=rho)
    t_hats = _churned_levels(net, t_steps, S_churn=S_churn, S_min=S_min, S_max=S_max)
    if randn_like is None:
        churning = [i for i, (t_cur, t_hat) in enumerate(zip(t_steps, t_hats)) if t_hat != t_cur]
        if churning:
            raise ArgumentError('randn_like', f'is None, but {len(churning)} steps churn (the first is step '
                                              f'{churning[0]} at t={float(t_steps[churning[0]]):g}); pass it or set '
                                              '`S_churn` to 0')

    x_next = latents.to(torch.float64) * t_steps[0]  # Algorithm 2, line 1: x_0 ~ N(0, t_0^2 I)
    for i, (t_cur, t_next, t_hat) in enumerate(zip(t_steps[:-1], t_steps[1:], t_hats)):
        x_cur = x_next
        x_hat = x_cur  # line 6 without draws: t_hat = t_i here, so the noise term is exactly 0 * eps
        if randn_like is not None:
            # line 6: x_hat = x_i + sqrt(t_hat^2 - t_i^2) S_noise eps_i (eps drawn every step, NVlabs' RNG contract)
            x_hat = x_cur + (t_hat ** 2 - t_cur ** 2).sqrt() * S_noise * randn_like(x_cur)
        increment, _, denoised = base_increment(net, x_hat, t_hat, t_next, class_labels=class_labels,
                                                base='heun')  # lines 7-11
        x_next = x_hat + increment
        if callback is not None:
            callback(dict(i=i, t_cur=t_cur, t_next=t_next, x=x_next, denoised=denoised))
    return x_next


def edm2_sampler(net, noise, labels=None, gnet=None, num_steps=32, sigma_min=0.002, sigma_max=80, rho=7, guidance=1,
                 S_churn=0, S_min=0, S_max=float('inf'), S_noise=1, dtype=torch.float32, randn_like=torch.randn_like,
                 callback=None):
    """EDM2's Heun sampler, a drop-in for NVlabs edm2's `edm_sampler` (its positional order): images in `dtype` from
    `noise` ~ N(0, I).

    Differs from `edm_sampler` as EDM2 does: the state and the noise levels (EDM eq. 5) are computed in `dtype`,
    neither rounded by nor clamped to the network; `randn_like` draws only on the steps that churn; 32 steps by
    default; `gnet`, `guidance` as in guidance.py. `callback(dict(i, t_cur, t_next, x, denoised))` runs after each
    step.
    """
    net = guided(net, gnet, guidance)
    check_latents(net, noise, name='noise')
    check_class_labels(net, labels, noise.shape[0])
    check_churn(S_churn, S_min, S_max, S_noise)
    t_steps = karras_sigmas(num_steps, sigma_min, sigma_max, rho, device=noise.device, dtype=dtype)

    x_next = noise.to(dtype) * t_steps[0]  # Algorithm 2, line 1
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):
        x_cur = x_next
        gamma = churn_gamma(t_cur, num_steps, S_churn, S_min, S_max) if S_churn > 0 else 0  # line 4
        t_hat, x_hat = t_cur, x_cur
        if gamma > 0:  # lines 5-6: t_hat = t_i + gamma_i t_i, x_hat = x_i + sqrt(t_hat^2 - t_i^2) S_noise eps_i
            t_hat = t_cur + gamma * t_cur
            x_hat = x_cur + (t_hat ** 2 - t_cur ** 2).sqrt() * S_noise * randn_like(x_cur)
        increment, _, denoised = base_increment(net, x_hat, t_hat, t_next, class_labels=labels, base='heun',
                                                dtype=dtype)  # lines 7-11
        x_next = x_hat + increment
        if callback is not None:
            callback(dict(i=i, t_cur=t_cur, t_next=t_next, x=x_next, denoised=denoised))
    return x_next
