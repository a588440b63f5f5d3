"""Reversible Heun (Kidger, Foster, Li, Lyons 2021, "Efficient and Accurate Gradients for Neural SDEs", Alg. 1-2)
on EDM's probability-flow ODE: second order, one network evaluation per step, algebraically reversible.

The state is a pair (x_i, x^_i) at noise level t_i, both starting at latents * t_0; with d(x, t) = (x - D(x; t)) / t,
h = t_{i+1} - t_i and the slope d^_i = d(x^_i, t_i) carried over from the previous step:

    x^_{i+1} = 2 x_i - x^_i + h d^_i                                              (Kidger et al. 2021, Alg. 1)
    x_{i+1}  = x_i + h (d^_i + d^_{i+1}) / 2,    d^_{i+1} = d(x^_{i+1}, t_{i+1})

Only x^_{i+1} is new, so the map (x_i, x^_i) -> (x_{i+1}, x^_{i+1}) inverts in closed form (Alg. 2):

    x^_i = 2 x_{i+1} - x^_{i+1} - h d^_{i+1},    x_i = x_{i+1} - h (d^_i + d^_{i+1}) / 2

No division appears, so rounding errors are not amplified the way BDIA's 1/gamma amplifies them. The slope at the
final level t_N = 0 is undefined (d divides by t), so on the last step d^_N is taken at t_{N-1} instead: the step
stays reversible and, like EDM's final Euler step, is first order over an interval of length t_{N-1} = sigma_min.
Network evaluations: N + 1 for N steps (sampling and inversion alike). x_N is the image; x^_N is the auxiliary
state that, with x_N, makes the trajectory invertible.

Known weakness (Kidger et al. 2021; McCallum & Foster 2024): the two-step recurrence has a parasitic root
~ -exp(-h lambda), which grows when the ODE contracts (as the PF-ODE does toward the data), so x - x^ can grow
by up to sigma_max / (data scale) over a trajectory. The solver study in benchmarks/ measures what this costs.
"""

import torch

from .checks import check_class_labels, check_latents
from .ode import edm_derivative
from .schedules import karras_sigmas


def _slope_level(t_steps, i):
    """The noise level where the slope of state i is taken: t_i, or t_{N-1} for the final level t_N = 0."""
    return t_steps[i] if t_steps[i] > 0 else t_steps[i - 1]


def _check_state(net, state, name):
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise ValueError(f'{name} must be a pair of tensors (x, x_hat)')
    for x in state:
        check_latents(net, x, name=name)
    if state[0].shape != state[1].shape:
        raise ValueError(f'{name} holds tensors of different shapes {tuple(state[0].shape)} and '
                         f'{tuple(state[1].shape)}')
    return state[0].to(torch.float64), state[1].to(torch.float64)


def reversible_heun_sampler(net, latents, class_labels=None, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7,
                            return_state=False, start_state=None, callback=None):
    """Reversible Heun sampling from `latents` (or, with latents=None, from `start_state` = (x_0, x^_0) as returned
    by `reversible_heun_invert` / `reversible_heun_encode`). Returns x_N, or (x_N, x^_N) with `return_state=True`.

    Network evaluations: N + 1. `callback(dict(i, t_cur, t_next, x, denoised))` runs after each step.
    """
    if (latents is None) == (start_state is None):
        raise ValueError('pass exactly one of latents and start_state')
    if start_state is None:
        check_latents(net, latents)
        t_steps = karras_sigmas(num_steps, sigma_min, sigma_max, rho, net=net, device=latents.device)
        x = x_hat = latents.to(torch.float64) * t_steps[0]
    else:
        x, x_hat = _check_state(net, start_state, 'start_state')
        t_steps = karras_sigmas(num_steps, sigma_min, sigma_max, rho, net=net, device=x.device)
    check_class_labels(net, class_labels, x.shape[0])

    d_hat, _ = edm_derivative(net, x_hat, t_steps[0], class_labels)
    for i in range(num_steps):
        h = t_steps[i + 1] - t_steps[i]
        x_hat_next = 2 * x - x_hat + h * d_hat  # Kidger et al. 2021, Alg. 1: auxiliary state
        d_hat_next, denoised = edm_derivative(net, x_hat_next, _slope_level(t_steps, i + 1), class_labels)
        x_next = x + h * (0.5 * d_hat + 0.5 * d_hat_next)  # Alg. 1: trapezoidal update of the solution state
        if callback is not None:
            callback(dict(i=i, t_cur=t_steps[i], t_next=t_steps[i + 1], x=x_next, denoised=denoised))
        x, x_hat, d_hat = x_next, x_hat_next, d_hat_next
    return (x, x_hat) if return_state else x


def reversible_heun_invert(net, x_last, x_hat_last, class_labels=None, num_steps=18, sigma_min=0.002, sigma_max=80,
                           rho=7, callback=None):
    """Run reversible Heun backwards from the final state (x_N, x^_N); returns (x_0, x^_0).

    x_0 / t_0 recovers the latents, and `reversible_heun_sampler(net, None, start_state=(x_0, x^_0))` regenerates
    x_N. Network evaluations: N + 1.
    """
    x, x_hat = _check_state(net, (x_last, x_hat_last), 'the final state (x_last, x_hat_last)')
    check_class_labels(net, class_labels, x.shape[0])
    t_steps = karras_sigmas(num_steps, sigma_min, sigma_max, rho, net=net, device=x.device)

    d_hat, _ = edm_derivative(net, x_hat, _slope_level(t_steps, num_steps), class_labels)
    for i in range(num_steps - 1, -1, -1):
        h = t_steps[i + 1] - t_steps[i]
        x_hat_prev = 2 * x - x_hat - h * d_hat  # Kidger et al. 2021, Alg. 2
        d_hat_prev, denoised = edm_derivative(net, x_hat_prev, t_steps[i], class_labels)
        x_prev = x - h * (0.5 * d_hat_prev + 0.5 * d_hat)
        if callback is not None:
            callback(dict(i=i, t_cur=t_steps[i + 1], t_next=t_steps[i], x=x_prev, denoised=denoised))
        x, x_hat, d_hat = x_prev, x_hat_prev, d_hat_prev
    return x, x_hat


def reversible_heun_encode(net, images, class_labels=None, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7,
                           callback=None):
    """Encode real images (float, in [-1, 1]) into the start state (x_0, x^_0); x_0 / t_0 are their latents.

    An image has no auxiliary state, so x^_N = x_N = the image (the state a sampler starts from, x^ = x, taken at
    the other end). Inversion is exact, so `reversible_heun_sampler(net, None, start_state=state)` returns the
    images to float64 rounding.
    """
    check_latents(net, images, name='images')
    images = images.to(torch.float64)
    return reversible_heun_invert(net, images, images, class_labels, num_steps, sigma_min, sigma_max, rho, callback)
