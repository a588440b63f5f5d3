"""EDM's probability-flow ODE as the samplers see it: the denoiser evaluated from the sampler's state, the derivative
d(x, t) = (x - D(x; t)) / t, and one step of a base solver (Euler or Heun). The state is float64 (NVlabs' EDM), or
float32 where a sampler follows EDM2."""

import torch


def denoise(net, x, t, class_labels, dtype=torch.float64):
    """D(x; t) in the sampler's precision `dtype`, whatever precision the network computes in."""
    return net(x, t, class_labels).to(dtype)


def edm_derivative(net, x, t, class_labels, dtype=torch.float64):
    """(d, D) with d(x, t) = (x - D(x; t)) / t, the PF-ODE direction for sigma(t) = t, s(t) = 1 (EDM eq. 4)."""
    denoised = denoise(net, x, t, class_labels, dtype)
    return (x - denoised) / t, denoised


def base_increment(net, x, t_cur, t_next, *, class_labels, base, dtype=torch.float64):
    """The increment F = x_next - x of one plain step from t_cur to t_next (EDM Algorithm 1 / 2, lines 7-11).

    `base='heun'`: Euler predictor x' = x + (t_next - t_cur) d, then the trapezoidal corrector
    F = (t_next - t_cur) (d/2 + d'/2), except on the step to t = 0 where the Euler increment is used.
    `base='euler'`: F = (t_next - t_cur) d (DDIM in EDM coordinates).
    Returns (F, d at x, D at x).
    """
    d_cur, denoised = edm_derivative(net, x, t_cur, class_labels, dtype)
    h = t_next - t_cur
    if base == 'euler' or t_next == 0:
        return h * d_cur, d_cur, denoised
    x_euler = x + h * d_cur
    d_prime, _ = edm_derivative(net, x_euler, t_next, class_labels, dtype)
    return h * (0.5 * d_cur + 0.5 * d_prime), d_cur, denoised
