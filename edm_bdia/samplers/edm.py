"""EDM's stochastic Heun sampler (Karras et al. 2022, Algorithm 2), a drop-in for NVlabs' `generate.edm_sampler`."""

import torch

from .checks import check_class_labels, check_latents
from .churn import churn_gamma
from .evaluation import base_increment
from .schedules import karras_sigmas


def edm_sampler(net, latents, class_labels=None, randn_like=torch.randn_like, num_steps=18, sigma_min=0.002,
                sigma_max=80, rho=7, S_churn=0, S_min=0, S_max=float('inf'), S_noise=1, callback=None):
    """Sample images from float32/float64 `latents` ~ N(0, I); returns float64 images in about [-1, 1].

    Same float64 state, same random draws in the same order (one `randn_like` per step, churn or not) and the same
    result to the bit as NVlabs' sampler. `callback(dict(i, t_cur, t_next, x, denoised))` runs after each step.
    """
    check_latents(net, latents)
    check_class_labels(net, class_labels, latents.shape[0])
    t_steps = karras_sigmas(num_steps, sigma_min, sigma_max, rho, net=net, device=latents.device)

    x_next = latents.to(torch.float64) * t_steps[0]  # Algorithm 2, line 1: x_0 ~ N(0, t_0^2 I)
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):
        x_cur = x_next
        gamma = churn_gamma(t_cur, num_steps, S_churn, S_min, S_max)
        t_hat = net.round_sigma(t_cur + gamma * t_cur)  # line 5: t_hat = t_i + gamma_i t_i
        # line 6: x_hat = x_i + sqrt(t_hat^2 - t_i^2) S_noise eps_i (eps drawn every step, NVlabs' RNG contract)
        x_hat = x_cur + (t_hat ** 2 - t_cur ** 2).sqrt() * S_noise * randn_like(x_cur)
        increment, _, denoised = base_increment(net, x_hat, t_hat, t_next, class_labels, 'heun')  # lines 7-11
        x_next = x_hat + increment
        if callback is not None:
            callback(dict(i=i, t_cur=t_cur, t_next=t_next, x=x_next, denoised=denoised))
    return x_next
