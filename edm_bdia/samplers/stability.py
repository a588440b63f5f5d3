"""Stability of BDIA sampling: how much the parasitic mode of the two-step recursion grows, and the warning.

BDIA's step x_{i+1} = gamma_i x_{i-1} + rest_i(x_i) is a two-step recursion: besides the mode that follows the ODE
it carries an oscillating (parasitic) one. `parasitic_growth` measures it on the test problem whose answer is
known, data ~ N(0, s^2), where D(x; t) = s^2 / (s^2 + t^2) x makes every term of the step a multiple of x_i:
x_{i+1} = gamma_i x_{i-1} + c_i x_i. The coefficients come from BDIA's own step (`bdia.step_terms`) run on that
denoiser, so the analysis follows the update wherever it is changed. The growth is how much more a perturbation of
one state moves x_{N-1} (the last state before the final step to t = 0) than it would under the base solver alone
(gamma = 0), worst state. The final step is left out because it cannot compound: it happens once, and the
perturbation it can amplify most is the local error of the step just before it, which is tiny exactly when that
amplification is large (O-BELM's final gamma = (h_{N-1} / h_{N-2})^2). Stable settings give about 1 at the data
scale EDM networks are trained for (0.5); on a sharp Gaussian mixture (docs/samplers.md) the errors rise about
tenfold once it passes 2, and settings past ~100 blow up.
"""

import math
import numbers
import warnings

import torch

from .bdia import Gammas, step_terms
from .defaults import DEFAULT_BASE, DEFAULT_GAMMA
from .ode import base_increment

DATA_STD = 0.5  # the data std EDM networks are trained for (sigma_data): the scale of natural image content
GROWTH_LIMIT = 2.0


def _linear_recursion(t_steps, gammas, base, data_std):
    """[(gamma_i, c_i)] of steps i = 0 .. N-2 (x_{i+1} = gamma_i x_{i-1} + c_i x_i; gamma_0 = 0) on data ~
    N(0, data_std^2), taken at a typical state x_i = sqrt(s^2 + t_i^2), the std of x at t_i, where the adaptive rule
    sees d(x_i, t_i)^2 = t_i^2 / (s^2 + t_i^2), its mean over such data."""
    t = torch.as_tensor(t_steps, dtype=torch.float64)
    variance = data_std ** 2

    def denoiser(x, sigma, class_labels):
        return variance / (variance + sigma ** 2) * x  # the exact D(x; sigma) of data ~ N(0, s^2)

    recursion = []
    for i in range(len(t) - 2):
        x = (variance + t[i] ** 2).sqrt().reshape(1, 1)
        if i == 0:
            forward, _, _ = base_increment(denoiser, x, t[0], t[1], class_labels=None, base=base)
            recursion.append((0.0, float((x + forward) / x)))
        else:
            gamma, rest, _ = step_terms(denoiser, x, t, i, class_labels=None, base=base, gammas=gammas)
            recursion.append((float(gamma), float(rest / x)))
    return recursion


def _sensitivities(recursion):
    """dx_{N-1} / dx_k for k = 0 .. N-1: the adjoint sweep of x_{i+1} = gamma_i x_{i-1} + c_i x_i, where x_k enters
    x_{k+1} with weight c_k and x_{k+2} with weight gamma_{k+1}."""
    last = len(recursion)  # x_{N-1}
    sensitivity = [0.0] * (last + 2)
    sensitivity[last] = 1.0
    for k in range(last - 1, -1, -1):
        sensitivity[k] = recursion[k][1] * sensitivity[k + 1]
        if k + 1 < last:
            sensitivity[k] += recursion[k + 1][0] * sensitivity[k + 2]
    return sensitivity[:last + 1]


def parasitic_growth(t_steps, gammas, base, data_std=DATA_STD, first=0):
    """max_k |dx_{N-1} / dx_k| over the same for gamma = 0 (k >= `first`), BDIA sampling on data ~ N(0, data_std^2).

    `t_steps`: t_0 > ... > t_N = 0; `gammas`: the `Gammas` of steps 1 .. N-1 (step 0 is a plain base step);
    `first`: the first state of the run (a run from the pair (x_k, x_{k+1}) has first = k). The base solver's own
    sensitivities are positive (each plain step scales x by a positive factor on this problem), so the ratio is
    defined; it is 1 for gamma = 0.
    """
    bdia = _sensitivities(_linear_recursion(t_steps, gammas, base, data_std))
    plain = _sensitivities(_linear_recursion(t_steps, Gammas([0.0] * len(gammas.values)), base, data_std))
    return max(abs(bdia[k]) / plain[k] for k in range(first, len(bdia)))


def largest_stable_gamma(t_steps, base, data_std=DATA_STD, first=0):
    """The largest constant gamma (to 0.01) whose parasitic growth stays within GROWTH_LIMIT on these steps."""
    num_steps = len(t_steps) - 1

    def stable(gamma):
        return parasitic_growth(t_steps, Gammas([gamma] * (num_steps - 1)), base, data_std=data_std,
                                first=first) <= GROWTH_LIMIT

    low, high = 0.0, 1.0
    if stable(high):
        return high
    for _ in range(20):
        middle = (low + high) / 2
        low, high = (middle, high) if stable(middle) else (low, middle)
    return math.floor(low * 100) / 100


def warn_if_unstable(t_steps, gammas, gamma, base, first=0, stacklevel=3):
    """One warning for BDIA settings measured to sample badly (from state `first` on); silent for stable ones.

    `gamma` is the user's argument (for the message), `gammas` the `Gammas` it stands for.
    """
    if isinstance(gamma, str) and base == 'heun':
        warnings.warn(f"gamma={gamma!r} on base='heun' is first order at 2 network evaluations per step (the O-BELM "
                      "coefficients assume the Euler base); use base='euler' for O-BELM (second order, 1 per step)",
                      stacklevel=stacklevel)
        return
    growth = parasitic_growth(t_steps, gammas, base, first=first)
    if growth > GROWTH_LIMIT:
        shown = f'gamma={gamma!r}' if isinstance(gamma, (numbers.Real, str)) else 'this gamma sequence'
        advice = 'use more steps'  # for the O-BELM rules, the only remedy
        if not isinstance(gamma, str):
            stable_gamma = largest_stable_gamma(t_steps, base, first=first)
            advice = f"use gamma={DEFAULT_GAMMA!r} with base={DEFAULT_BASE!r}, or gamma <= {stable_gamma:.2f}"
        warnings.warn(f"{shown} on base={base!r} with these {len(t_steps) - 1} steps is unstable: the parasitic mode "
                      f"of the two-step recursion grows x{growth:.3g} (linear analysis, data std {DATA_STD}); "
                      f"{advice}", stacklevel=stacklevel)
