"""Real images through BDIA: encode them into a start pair, and edit them (invert under one label, regenerate under
another), fully or SDEdit-style from an intermediate noise level.

An image is x_N (t_N = 0) but the inverse recursion needs the pair (x_N, x_{N-1}). x_{N-1} is manufactured as the
probability-flow ODE solution at t_{N-1} from the image, by the trapezoidal rule over [0, t_{N-1}] with slope 0 at
t = 0 (d(x, t) = -t grad log p_t(x) vanishes there) and the slope at t_{N-1} taken at the image:

    x_{N-1} = x_N + (t_{N-1} / 2) d(x_N, t_{N-1})                         (second order; one network evaluation)

The round trip is exact whatever this choice; it only decides how noise-like the latents are. Whatever is not
consistent in the pair (and every local error of the inverse steps) feeds the parasitic mode of the inverse
recursion, which grows by 1 / gamma_i per step where the data barely moves (t_i below the data's scale), i.e. up
to prod(1 / gamma_i): with gamma = 0.5 at N = 50 the latents of real-looking images had std 1e4. O-BELM keeps
them at std 1.0-1.15 (docs/samplers.md). `bdia_encode` warns when their std is outside [0.5, 2].
"""

import math
import warnings
from typing import NamedTuple

import torch

from edm_bdia.errors import ArgumentError

from .bdia import bdia_gammas, bdia_invert, bdia_sampler, check_base, check_invertible, strength_to_step
from .checks import check_class_labels, check_latents
from .defaults import DEFAULT_BASE, DEFAULT_GAMMA
from .evaluation import edm_derivative
from .exactness import exact_network
from .noise_levels import sampler_sigmas
from .trajectory import Trajectory

NOISE_LIKE_STD = (0.5, 2.0)  # encoded latents with a std outside are reported: Gaussian noise has std 1


class EditResult(NamedTuple):
    """`bdia_edit(..., return_trajectory=True)`: the edited images and both halves of the run."""
    images: torch.Tensor
    inversion: Trajectory  # source labels, images -> x_k (in the sampler's order, noise to data)
    regeneration: Trajectory  # target labels, x_k -> edited images


def image_pair(net, images, t_steps, class_labels, *, callback=None):
    """(x_N, x_{N-1}) for real images: x_{N-1} = x_N + (t_{N-1} / 2) d(x_N, t_{N-1}) (trapezoid from t = 0)."""
    x_last = images.to(torch.float64)
    t_prev = t_steps[-2]
    d_last, denoised = edm_derivative(net, x_last, t_prev, class_labels)
    x_prev = x_last + 0.5 * t_prev * d_last
    if callback is not None:
        num_steps = len(t_steps) - 1
        callback(dict(i=num_steps, t_cur=t_steps[-1], t_next=t_prev, x=x_prev, denoised=denoised))
    return x_last, x_prev


def _warn_unless_noise_like(latents, gamma, base, t_steps):
    std = latents.std().item()
    if NOISE_LIKE_STD[0] <= std <= NOISE_LIKE_STD[1]:
        return
    advice = 'use more steps' if isinstance(gamma, str) and base == 'euler' else \
        f"use gamma={DEFAULT_GAMMA!r} with base={DEFAULT_BASE!r}"
    if std < NOISE_LIKE_STD[0]:
        cause = 'the steps are too few to carry the images to noise'
    else:  # too wide, or NaN
        amplification = math.prod(1 / g for g in bdia_gammas(gamma, t_steps, base))
        cause = f'the inverse recursion amplifies its errors by up to prod(1/gamma_i) = {amplification:.2g} here'
    warnings.warn(f"the encoded latents have std {std:.3g}, not noise-like (Gaussian noise: 1): {cause}, or the "
                  f"images lie far from the network's data; {advice}", stacklevel=3)


def bdia_encode(net, images, class_labels=None, *, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7, sigmas=None,
                gamma=DEFAULT_GAMMA, base=DEFAULT_BASE, strength=1.0, return_trajectory=False, callback=None):
    """Encode real images (float, in [-1, 1]) into the BDIA start pair (x_k, x_{k+1}); returns it (with a
    `Trajectory` as (pair, trajectory) when `return_trajectory=True`).

    strength=1: k = 0 and x_0 / t_0 are the images' latents, noise-like for the default (O-BELM with gamma_i >= 0.5).
    `bdia_sampler(net, None, class_labels, start_pair=pair, start_step=k)` with the same settings returns the
    images to float64 rounding. `strength` < 1 inverts only the last ceil(strength N) steps
    (k = `strength_to_step(strength, N)`). Costs the inversion's network evaluations plus one for x_{N-1}.
    """
    check_latents(net, images, name='images')
    check_base(base)
    check_class_labels(net, class_labels, images.shape[0])
    t_steps = sampler_sigmas(net, images.device, sigmas, num_steps=num_steps, sigma_min=sigma_min,
                             sigma_max=sigma_max, rho=rho)
    stop = strength_to_step(strength, len(t_steps) - 1)
    check_invertible(bdia_gammas(gamma, t_steps, base), stop)
    net = exact_network(net, images)
    x_last, x_prev = image_pair(net, images, t_steps, class_labels, callback=callback)
    result = bdia_invert(net, x_last, x_prev, class_labels, sigmas=t_steps, gamma=gamma, base=base,
                         strength=strength, return_trajectory=return_trajectory, callback=callback)
    if stop == 0:
        pair = result[0] if return_trajectory else result
        _warn_unless_noise_like(pair[0] / t_steps[0], gamma, base, t_steps)
    return result


def _check_target_labels(net, target_labels, batch_size):
    try:
        check_class_labels(net, target_labels, batch_size)
    except ArgumentError as error:
        raise ArgumentError('target_labels', error.problem) from None


def bdia_edit(net, images, class_labels, target_labels, *, strength=1.0, num_steps=18, sigma_min=0.002, sigma_max=80,
              rho=7, sigmas=None, gamma=DEFAULT_GAMMA, base=DEFAULT_BASE, return_trajectory=False, callback=None):
    """Edit real images: invert them under `class_labels`, regenerate under `target_labels` (one-hot rows).

    strength=1 inverts all the way to the latents; `strength` < 1 inverts only the last ceil(strength N) steps and
    regenerates from there (SDEdit-style: the start noise level t_k, k = N - ceil(strength N), sets how much of
    the image can change; strength <= 1/N changes nothing). With target_labels equal to class_labels the images
    come back to float64 rounding. Returns float64 images, or an `EditResult` (images and the inversion and
    regeneration trajectories) with `return_trajectory=True`. Network evaluations: encode (N - k - 1 inverse steps
    plus 2) and regenerate (N - k - 1 steps), times two on the Heun base. `callback` sees both halves.
    """
    check_latents(net, images, name='images')
    check_base(base)
    check_class_labels(net, class_labels, images.shape[0])
    _check_target_labels(net, target_labels, images.shape[0])
    t_steps = sampler_sigmas(net, images.device, sigmas, num_steps=num_steps, sigma_min=sigma_min,
                             sigma_max=sigma_max, rho=rho)
    start_step = strength_to_step(strength, len(t_steps) - 1)
    net = exact_network(net, images)
    settings = dict(sigmas=t_steps, gamma=gamma, base=base, return_trajectory=return_trajectory, callback=callback)
    encoded = bdia_encode(net, images, class_labels, strength=strength, **settings)
    pair, inversion = encoded if return_trajectory else (encoded, None)
    edited = bdia_sampler(net, None, target_labels, start_pair=pair, start_step=start_step, **settings)
    if return_trajectory:
        return EditResult(images=edited[0], inversion=inversion, regeneration=edited[1])
    return edited
