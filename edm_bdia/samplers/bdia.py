"""BDIA on EDM (Zhang, Lewis, Kleijn, ECCV 2024): an exactly invertible sampler at the base solver's cost.

States are indexed toward the data: x_0 = latents * t_0, ..., x_N at t_N = 0, with d(x, t) = (x - D(x; t)) / t.
The first step is a plain `base` step; every later step i >= 1 (the last one included) is

    x_{i+1} = gamma_i x_{i-1} + (1 - gamma_i) x_i - gamma_i B(x_i) + F(x_i)                      (BDIA, bdia.md §1)

with F the forward increment from t_i to t_{i+1} (base 'heun': EDM's Heun step, Euler on the step to t = 0;
base 'euler': Euler, i.e. DDIM in EDM coordinates) and B = (t_{i-1} - t_i) d(x_i, t_i) the backward Euler
increment, which reuses the denoiser call already made at x_i. Both depend on x_i alone, so the map
(x_{i-1}, x_i) -> (x_i, x_{i+1}) is affine in x_{i-1} and inverts exactly:

    x_{i-1} = (x_{i+1} - (1 - gamma_i) x_i + gamma_i B(x_i) - F(x_i)) / gamma_i

Rounding errors of the inverse grow like prod(1 / gamma_i) ~ (1/gamma)^N (the parasitic root -1/gamma of the
two-step recurrence), so gamma near 1 inverts best: measured round-trip errors are in README.md.
gamma = 0 is the base sampler itself (not invertible). gamma = 'obelm' uses gamma_i = (h_i / h_{i+1})^2, the
O-BELM coefficients in EDM coordinates (bdia.md §5.4), which are exact O-BELM with base='euler'.
"""

import numbers

import torch

from .checks import check_class_labels, check_gamma_value, check_latents
from .evaluation import base_increment, edm_derivative
from .schedules import karras_sigmas

BASES = ('heun', 'euler')


def bdia_gammas(gamma, t_steps):
    """Per-step gamma_i for the BDIA steps i = 1 .. N-1 as Python floats (a list of N - 1 values).

    `gamma` is a number in [0, 1], a sequence of N - 1 such numbers, or 'obelm'.
    """
    num_steps = len(t_steps) - 1
    if isinstance(gamma, str):
        if gamma != 'obelm':
            raise ValueError(f"gamma must be a number in [0, 1], a sequence of them, or 'obelm', not {gamma!r}")
        t = t_steps.tolist()
        # O-BELM in EDM coordinates: gamma_i = (h_i / h_{i+1})^2, h_i = t_i - t_{i+1} the step being taken,
        # h_{i+1} = t_{i-1} - t_i the previous one (bdia.md §5.4, paper indexing)
        return [((t[i] - t[i + 1]) / (t[i - 1] - t[i])) ** 2 for i in range(1, num_steps)]
    if isinstance(gamma, numbers.Real):
        check_gamma_value(gamma)
        return [float(gamma)] * (num_steps - 1)
    gammas = [float(g) for g in gamma]
    if len(gammas) != num_steps - 1:
        raise ValueError(f'a per-step gamma needs num_steps - 1 = {num_steps - 1} values (steps 1 .. N-1; the first '
                         f'step is a plain base step), got {len(gammas)}')
    for i, g in enumerate(gammas):
        check_gamma_value(g, name=f'gamma[{i}]')
    return gammas


def _check_base(base):
    if base not in BASES:
        raise ValueError(f"base must be 'heun' or 'euler', not {base!r}")


def _check_pair(net, pair, name):
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f'{name} must be a pair of tensors')
    for x in pair:
        check_latents(net, x, name=name)
    if pair[0].shape != pair[1].shape:
        raise ValueError(f'{name} holds tensors of different shapes {tuple(pair[0].shape)} and {tuple(pair[1].shape)}')
    return pair[0].to(torch.float64), pair[1].to(torch.float64)


def _increments(net, x, t_steps, i, class_labels, base):
    """(F(x_i), B(x_i), denoised) at step i: forward `base` increment to t_{i+1}, backward Euler increment to t_{i-1}."""
    forward, d_cur, denoised = base_increment(net, x, t_steps[i], t_steps[i + 1], class_labels, base)
    backward = (t_steps[i - 1] - t_steps[i]) * d_cur  # B = (t_{i-1} - t_i) d(x_i, t_i): no extra network call
    return forward, backward, denoised


def bdia_step(x_prev, x_cur, gamma, backward, forward):
    """x_{i+1} = gamma x_{i-1} + (1 - gamma) x_i - gamma B(x_i) + F(x_i)."""
    return gamma * x_prev + (1 - gamma) * x_cur - gamma * backward + forward


def bdia_step_inverse(x_next, x_cur, gamma, backward, forward):
    """x_{i-1} = (x_{i+1} - (1 - gamma) x_i + gamma B(x_i) - F(x_i)) / gamma."""
    return (x_next - (1 - gamma) * x_cur + gamma * backward - forward) / gamma


def bdia_sampler(net, latents, class_labels=None, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7, gamma=1.0,
                 base='heun', return_pair=False, start_pair=None, callback=None, S_churn=0):
    """BDIA sampling from `latents` (or, with latents=None, from `start_pair` = (x_0, x_1) as returned by
    `bdia_invert` / `bdia_encode`). Returns x_N, or (x_N, x_{N-1}) with `return_pair=True`.

    Network evaluations: 2N - 1 with base='heun' (like `edm_sampler`), N with base='euler'.
    """
    if S_churn:
        raise ValueError('S_churn must be 0 for BDIA: stochastic churn makes the sampler non-invertible; use '
                         'edm_sampler for stochastic sampling')
    _check_base(base)
    if (latents is None) == (start_pair is None):
        raise ValueError('pass exactly one of latents and start_pair')
    if start_pair is None:
        check_latents(net, latents)
        t_steps = karras_sigmas(num_steps, sigma_min, sigma_max, rho, net=net, device=latents.device)
        x_prev, x_cur, first = None, latents.to(torch.float64) * t_steps[0], 0
    else:
        x_prev, x_cur = _check_pair(net, start_pair, 'start_pair')
        t_steps = karras_sigmas(num_steps, sigma_min, sigma_max, rho, net=net, device=x_cur.device)
        first = 1
    gammas = bdia_gammas(gamma, t_steps)
    check_class_labels(net, class_labels, x_cur.shape[0])

    for i in range(first, num_steps):
        if i == 0:
            forward, _, denoised = base_increment(net, x_cur, t_steps[0], t_steps[1], class_labels, base)
            x_next = x_cur + forward  # the first step is a plain base step (no x_{-1} yet)
        else:
            forward, backward, denoised = _increments(net, x_cur, t_steps, i, class_labels, base)
            x_next = bdia_step(x_prev, x_cur, gammas[i - 1], backward, forward)
        if callback is not None:
            callback(dict(i=i, t_cur=t_steps[i], t_next=t_steps[i + 1], x=x_next, denoised=denoised))
        x_prev, x_cur = x_cur, x_next
    return (x_cur, x_prev) if return_pair else x_cur


def bdia_invert(net, x_last, x_prev, class_labels=None, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7,
                gamma=1.0, base='heun', callback=None):
    """Run the BDIA recursion backwards from the final pair (x_N, x_{N-1}); returns (x_0, x_1).

    x_0 / t_0 recovers the latents, and `bdia_sampler(net, None, start_pair=(x_0, x_1))` regenerates x_2 .. x_N.
    Costs the same network evaluations as sampling minus the first step.
    """
    _check_base(base)
    x_next, x_cur = _check_pair(net, (x_last, x_prev), 'the final pair (x_last, x_prev)')
    check_class_labels(net, class_labels, x_cur.shape[0])
    t_steps = karras_sigmas(num_steps, sigma_min, sigma_max, rho, net=net, device=x_cur.device)
    gammas = bdia_gammas(gamma, t_steps)
    if min(gammas) == 0:
        raise ValueError('gamma must be > 0 for inversion: gamma = 0 is the plain base sampler, which is not '
                         'invertible (the inverse divides by gamma)')
    for i in range(num_steps - 1, 0, -1):
        forward, backward, denoised = _increments(net, x_cur, t_steps, i, class_labels, base)
        x_before = bdia_step_inverse(x_next, x_cur, gammas[i - 1], backward, forward)
        if callback is not None:
            callback(dict(i=i, t_cur=t_steps[i], t_next=t_steps[i - 1], x=x_before, denoised=denoised))
        x_next, x_cur = x_cur, x_before
    return x_cur, x_next


def bdia_encode(net, images, class_labels=None, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7, gamma=1.0,
                base='heun', callback=None):
    """Encode real images (float, in [-1, 1]) into the BDIA start pair (x_0, x_1); x_0 / t_0 are their latents.

    An image has no stored x_{N-1}, so it is formed with one plain explicit Euler step from t_N = 0 up to
    t_{N-1} (the smallest noise level), with the direction taken at the image: x_{N-1} = x_N + t_{N-1} d(x_N, t_{N-1})
    (1 network evaluation, the reverse of sampling's final Euler step). The recursion is then inverted exactly, so
    `bdia_sampler(net, None, start_pair=pair)` returns the images to float64 rounding, whatever this choice.
    """
    check_latents(net, images, name='images')
    t_steps = karras_sigmas(num_steps, sigma_min, sigma_max, rho, net=net, device=images.device)
    x_last = images.to(torch.float64)
    check_class_labels(net, class_labels, x_last.shape[0])
    d_last, _ = edm_derivative(net, x_last, t_steps[-2], class_labels)
    x_prev = x_last + (t_steps[-2] - t_steps[-1]) * d_last
    return bdia_invert(net, x_last, x_prev, class_labels, num_steps, sigma_min, sigma_max, rho, gamma, base,
                       callback)
