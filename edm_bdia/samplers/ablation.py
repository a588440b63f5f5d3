"""NVlabs' generalized ("ablation") sampler: EDM Algorithm 1 with arbitrary sigma(t), s(t), discretization, churn.

The options reproduce the columns of EDM Table 1: discretization vp|ve|iddpm|edm sets the noise levels, schedule
vp|ve|linear sets sigma(t), scaling vp|none sets s(t), solver euler|heun with Heun's generalized `alpha`.
"""

import torch

from .checks import check_class_labels, check_latents, check_num_steps
from .churn import churn_gamma
from .evaluation import denoise
from .schedules import default_sigma_range, discretize_sigmas, schedule_functions


def _ode_direction(net, x, t, class_labels, sigma, s):
    """dx/dt = (sigma'/sigma + s'/s) x - sigma' s / sigma D(x / s; sigma) (EDM eq. 4, general form)."""
    denoised = denoise(net, x / s(t), sigma(t), class_labels)
    d = (sigma.deriv(t) / sigma(t) + s.deriv(t) / s(t)) * x - sigma.deriv(t) * s(t) / sigma(t) * denoised
    return d, denoised


def ablation_sampler(net, latents, class_labels=None, randn_like=torch.randn_like, num_steps=18, sigma_min=None,
                     sigma_max=None, rho=7, solver='heun', discretization='edm', schedule='linear', scaling='none',
                     epsilon_s=1e-3, C_1=0.001, C_2=0.008, M=1000, alpha=1, S_churn=0, S_min=0, S_max=float('inf'),
                     S_noise=1, callback=None):
    """Drop-in for NVlabs' `ablation_sampler`; returns float64 images. VP defaults use beta_d = 19.9."""
    check_num_steps(num_steps)
    check_latents(net, latents)
    check_class_labels(net, class_labels, latents.shape[0])
    if solver not in ('euler', 'heun'):
        raise ValueError(f"solver must be 'euler' or 'heun', not {solver!r}")
    if not alpha > 0:
        raise ValueError(f'alpha must be positive, got {alpha!r}')
    default_min, default_max = default_sigma_range(discretization, epsilon_s)
    sigma_min = max(default_min if sigma_min is None else sigma_min, net.sigma_min)
    sigma_max = min(default_max if sigma_max is None else sigma_max, net.sigma_max)
    sigma, s = schedule_functions(schedule, scaling)

    sigma_steps = discretize_sigmas(discretization, num_steps, sigma_min, sigma_max, rho, epsilon_s, M, C_1, C_2,
                                    device=latents.device)
    t_steps = sigma.inv(net.round_sigma(sigma_steps))  # time steps t_i = sigma^-1(sigma_i)
    t_steps = torch.cat([t_steps, torch.zeros_like(t_steps[:1])])

    x_next = latents.to(torch.float64) * (sigma(t_steps[0]) * s(t_steps[0]))  # x_0 ~ N(0, s(t_0)^2 sigma(t_0)^2 I)
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):
        x_cur = x_next
        gamma = churn_gamma(sigma(t_cur), num_steps, S_churn, S_min, S_max)
        t_hat = sigma.inv(net.round_sigma(sigma(t_cur) + gamma * sigma(t_cur)))
        # Churn: x_hat = s(t_hat)/s(t) x + sqrt(sigma(t_hat)^2 - sigma(t)^2) s(t_hat) S_noise eps
        x_hat = s(t_hat) / s(t_cur) * x_cur + (sigma(t_hat) ** 2 - sigma(t_cur) ** 2).clip(min=0).sqrt() * \
            s(t_hat) * S_noise * randn_like(x_cur)

        h = t_next - t_hat
        d_cur, denoised = _ode_direction(net, x_hat, t_hat, class_labels, sigma, s)
        if solver == 'euler' or i == num_steps - 1:
            x_next = x_hat + h * d_cur  # Euler step
        else:
            # Heun with parameter alpha: evaluate at x' = x + alpha h d, then blend (EDM Algorithm 1 / Appendix D.2)
            x_prime = x_hat + alpha * h * d_cur
            d_prime, _ = _ode_direction(net, x_prime, t_hat + alpha * h, class_labels, sigma, s)
            x_next = x_hat + h * ((1 - 1 / (2 * alpha)) * d_cur + 1 / (2 * alpha) * d_prime)
        if callback is not None:
            callback(dict(i=i, t_cur=t_cur, t_next=t_next, x=x_next, denoised=denoised))
    return x_next
