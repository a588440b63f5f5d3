"""NVlabs' generalized ("ablation") sampler: EDM Algorithm 1 with arbitrary sigma(t), s(t), discretization, churn.

The options reproduce the columns of EDM Table 1: discretization vp|ve|iddpm|edm sets the noise levels, schedule
vp|ve|linear sets sigma(t), scaling vp|none sets s(t), solver euler|heun with Heun's generalized `alpha`.
Bit-identical to NVlabs' `generate.py` `ablation_sampler` (see docs/samplers-ablation.md).
"""

import torch

from .checks import (check_choice, check_churn, check_class_labels, check_latents, check_num_steps,
                     check_open_unit_interval, check_positive, check_positive_integer, check_sigma_range)
from .churn import churn_gamma
from .guidance import guided
from .ode import denoise
from .schedules import (DISCRETIZATIONS, SCALINGS, SCHEDULES, VPSigma, clamp_to_network, default_sigma_range,
                        discretize_sigmas, schedule_functions)

SOLVERS = ('euler', 'heun')


def ablation_noise_range(net, discretization, sigma_min=None, sigma_max=None, epsilon_s=1e-3):
    """The sampler's (sigma_min, sigma_max): the discretization's defaults for None, then clamped to the network."""
    default_min, default_max = default_sigma_range(discretization, epsilon_s)
    defaulted = [name for name, value in (('sigma_min', sigma_min), ('sigma_max', sigma_max)) if value is None]
    sigma_min = default_min if sigma_min is None else sigma_min
    sigma_max = default_max if sigma_max is None else sigma_max
    check_sigma_range(sigma_min, sigma_max, defaulted=defaulted, discretization=discretization)
    return clamp_to_network(net, sigma_min, sigma_max)


def ablation_noise_levels(net, num_steps, *, discretization, sigma_min, sigma_max, rho, epsilon_s, M, C_1, C_2,
                          device=None):
    """(VP schedule refitted to the sampler's range, the N noise levels sigma_0 > ... > sigma_{N-1}) of the ablation
    sampler for `net` (EDM Table 1); raises what the sampler would raise for these settings."""
    sigma_min, sigma_max = ablation_noise_range(net, discretization, sigma_min, sigma_max, epsilon_s)
    vp_sigma = VPSigma.through(sigma_min, sigma_max, epsilon_s)  # VP betas refitted to the clamped range
    return vp_sigma, discretize_sigmas(discretization, num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho,
                                       vp_sigma=vp_sigma, epsilon_s=epsilon_s, M=M, C_1=C_1, C_2=C_2, device=device)


def _ode_direction(net, x, t, class_labels, sigma, s):
    """(d, D): d = (sigma'/sigma + s'/s) x - sigma' s / sigma D(x / s; sigma) at time t (EDM Algorithm 1, line 4)."""
    denoised = denoise(net, x / s(t), sigma(t), class_labels)
    d = (sigma.deriv(t) / sigma(t) + s.deriv(t) / s(t)) * x - sigma.deriv(t) * s(t) / sigma(t) * denoised
    return d, denoised


def ablation_sampler(net, latents, class_labels=None, randn_like=torch.randn_like, num_steps=18, sigma_min=None,
                     sigma_max=None, rho=7, solver='heun', discretization='edm', schedule='linear', scaling='none',
                     epsilon_s=1e-3, C_1=0.001, C_2=0.008, M=1000, alpha=1, S_churn=0, S_min=0, S_max=float('inf'),
                     S_noise=1, callback=None, *, gnet=None, guidance=1):
    """Drop-in for NVlabs' `ablation_sampler` (same draws, same bits); returns float64 images.

    `callback(dict(i, t_cur, t_next, x, denoised))` runs after each step; `x` is the scaled state s(t) x_unscaled.
    `gnet`, `guidance`: sample the guided denoiser (guidance.py).
    """
    net = guided(net, gnet, guidance)
    check_choice(solver, 'solver', SOLVERS)
    check_choice(discretization, 'discretization', DISCRETIZATIONS)
    check_choice(schedule, 'schedule', SCHEDULES)
    check_choice(scaling, 'scaling', SCALINGS)
    check_num_steps(num_steps)
    check_latents(net, latents)
    check_class_labels(net, class_labels, latents.shape[0])
    check_positive(rho, 'rho')
    check_positive(alpha, 'alpha')
    check_open_unit_interval(epsilon_s, 'epsilon_s')
    check_positive_integer(M, 'M')
    check_churn(S_churn, S_min, S_max, S_noise)
    vp_sigma, sigma_steps = ablation_noise_levels(net, num_steps, discretization=discretization, sigma_min=sigma_min,
                                                  sigma_max=sigma_max, rho=rho, epsilon_s=epsilon_s, M=M, C_1=C_1,
                                                  C_2=C_2, device=latents.device)
    sigma, s = schedule_functions(schedule, scaling, vp_sigma)
    t_steps = sigma.inv(net.round_sigma(sigma_steps))  # time steps t_i = sigma^-1(sigma_i)
    t_steps = torch.cat([t_steps, torch.zeros_like(t_steps[:1])])  # t_N = 0

    x_next = latents.to(torch.float64) * (sigma(t_steps[0]) * s(t_steps[0]))  # x_0 ~ N(0, sigma(t_0)^2 s(t_0)^2 I)
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):
        x_cur = x_next
        gamma = churn_gamma(sigma(t_cur), num_steps, S_churn, S_min, S_max)
        # Churn (EDM Algorithm 2, lines 5-6, with sigma(t), s(t)): sigma(t_hat) = sigma(t) + gamma sigma(t),
        # x_hat = s(t_hat)/s(t) x + sqrt(sigma(t_hat)^2 - sigma(t)^2) s(t_hat) S_noise eps (eps drawn every step)
        t_hat = sigma.inv(net.round_sigma(sigma(t_cur) + gamma * sigma(t_cur)))
        x_hat = s(t_hat) / s(t_cur) * x_cur + (sigma(t_hat) ** 2 - sigma(t_cur) ** 2).clip(min=0).sqrt() * \
            s(t_hat) * S_noise * randn_like(x_cur)

        h = t_next - t_hat
        d_cur, denoised = _ode_direction(net, x_hat, t_hat, class_labels, sigma, s)
        if solver == 'euler' or i == num_steps - 1:
            x_next = x_hat + h * d_cur  # Euler step (Algorithm 1, line 5); always the step to t_N = 0
        else:
            # 2nd-order Runge-Kutta with parameter alpha (EDM Appendix D.2; alpha = 1 is Heun, Algorithm 1 lines 7-8):
            # d' at (x + alpha h d, t + alpha h), x_next = x + h ((1 - 1/(2 alpha)) d + 1/(2 alpha) d')
            x_prime = x_hat + alpha * h * d_cur
            d_prime, _ = _ode_direction(net, x_prime, t_hat + alpha * h, class_labels, sigma, s)
            x_next = x_hat + h * ((1 - 1 / (2 * alpha)) * d_cur + 1 / (2 * alpha) * d_prime)
        if callback is not None:
            callback(dict(i=i, t_cur=t_cur, t_next=t_next, x=x_next, denoised=denoised))
    return x_next
