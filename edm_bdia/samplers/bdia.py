"""BDIA on EDM (Zhang, Lewis, Kleijn, ECCV 2024): an exactly invertible sampler at the base solver's cost.

States are indexed toward the data: x_0 = latents * t_0, ..., x_N at t_N = 0, with d(x, t) = (x - D(x; t)) / t.
The first step is a plain `base` step; every later step i >= 1 (the last one included) is

    x_{i+1} = gamma_i x_{i-1} + (1 - gamma_i) x_i - gamma_i B(x_i) + F(x_i)    (BDIA, as Wang et al. 2024 eq. 10)

with F the forward increment from t_i to t_{i+1} (base 'euler': Euler, i.e. DDIM in EDM coordinates; base 'heun':
EDM's Heun step, Euler on the step to t = 0) and B = (t_{i-1} - t_i) d(x_i, t_i) the backward Euler increment,
which reuses the denoiser call already made at x_i. Both depend on x_i alone, so the map (x_{i-1}, x_i) ->
(x_i, x_{i+1}) is affine in x_{i-1} and inverts exactly:

    x_{i-1} = (x_{i+1} - (1 - gamma_i) x_i + gamma_i B(x_i) - F(x_i)) / gamma_i

gamma = 'obelm' uses gamma_i = (h_i / h_{i+1})^2 with h_i = t_i - t_{i+1}: on the Euler base these are the
O-BELM coefficients (Wang et al., NeurIPS 2024, eq. 18) in EDM coordinates, a second-order method at one network
evaluation per step. 'obelm-floor', the package default (`defaults.py`), raises them to at least 0.5 below the
data scale, which keeps encodings of real images noise-like with trained networks. docs/samplers.md
derives all of this and gives the measurements: stability (`stability.py`), the cost of the Heun base (first
order for every gamma > 0), and why the inverse amplifies errors by up to prod(1 / gamma_i).
"""

import math
import numbers

import torch

from edm_bdia.errors import ArgumentError

from .checks import check_choice, check_class_labels, check_gamma_value, check_latents
from .defaults import DEFAULT_BASE, DEFAULT_GAMMA, GAMMA_RULE_NAMES
from .evaluation import base_increment
from .exactness import check_exact_arithmetic, exact_network
from .noise_levels import sampler_sigmas
from .stability import DATA_STD, GROWTH_LIMIT, parasitic_growth, warn_if_unstable
from .trajectory import trajectory

BASES = ('heun', 'euler')
OBELM_FLOOR = 0.5


def obelm_gammas(t_steps):
    """gamma_i = (h_i / h_{i+1})^2 for steps i = 1 .. N-1, h_i = t_i - t_{i+1} (the step being taken).

    These turn BDIA on the Euler base into O-BELM (Wang et al. 2024, eq. 18 with alpha = 1, sigma-bar = t). On
    EDM's schedule gamma_i < 1 except on the final step to t = 0 for N >= 36, which is longer than the one before
    (2.5 at N = 50, 58 at N = 200): that step integrates the last interval [t_{N-1}, 0] to second order, where
    EDM's own samplers take a first-order Euler jump (docs/samplers.md, "The final step").
    """
    t = t_steps.tolist()
    return [((t[i] - t[i + 1]) / (t[i - 1] - t[i])) ** 2 for i in range(1, len(t) - 1)]


def floored_obelm_gammas(t_steps, base='euler'):
    """O-BELM's gamma_i, raised to at least OBELM_FLOOR = 0.5 on the steps from below the data scale (t_i < 0.5),
    unless that makes sampling unstable (then O-BELM's own: at N = 4 .. 7 and 10 on EDM's schedule).

    Below the data scale sampling damps the parasitic mode (by gamma_i per step) while the inverse amplifies it by
    1 / gamma_i, and O-BELM's gamma_i fall to 0.13 there at N = 18: the solver study found held-out digits encoded
    by a trained network to latents 25 % too wide at 35 evaluations and 64-326 times too wide at 9-17, fixed by a
    floor of 0.5. Above the data scale O-BELM's gamma_i already sit at the stability limit of sampling, so the
    floor stays out of there (raising them there made 9-evaluation samples 70 times worse). docs/samplers.md has
    the measurements.
    """
    exact = obelm_gammas(t_steps)
    t = t_steps.tolist()
    floored = [max(OBELM_FLOOR, g) if t[k + 1] < DATA_STD else g for k, g in enumerate(exact)]  # step k + 1
    return floored if parasitic_growth(t_steps, floored, base) <= GROWTH_LIMIT else exact


GAMMA_RULES = dict(zip(GAMMA_RULE_NAMES, (lambda t_steps, base: obelm_gammas(t_steps), floored_obelm_gammas)))


def bdia_gammas(gamma, t_steps, base='euler'):
    """Per-step gamma_i for the BDIA steps i = 1 .. N-1 as Python floats (a list of N - 1 values).

    `gamma` is a number in [0, 1], a sequence of N - 1 such numbers, 'obelm' (`obelm_gammas`) or 'obelm-floor'
    (`floored_obelm_gammas`, the default).
    """
    num_steps = len(t_steps) - 1
    if isinstance(gamma, str):
        if gamma not in GAMMA_RULES:
            raise ArgumentError('gamma', f"must be a number in [0, 1], a sequence of them, 'obelm' or 'obelm-floor', "
                                         f"not {gamma!r}")
        return GAMMA_RULES[gamma](t_steps, base)
    if isinstance(gamma, numbers.Real):
        check_gamma_value(gamma)
        return [float(gamma)] * (num_steps - 1)
    gammas = [float(g) for g in gamma]
    if len(gammas) != num_steps - 1:
        raise ArgumentError('gamma', f'as a per-step sequence needs `num_steps` - 1 = {num_steps - 1} values (steps '
                                     f'1 .. N-1; the first step is a plain base step), got {len(gammas)}')
    for i, g in enumerate(gammas):
        check_gamma_value(g, name=f'gamma[{i}]')
    return gammas


def check_base(base):
    check_choice(base, 'base', BASES)


def check_pair(net, pair, name):
    """The two tensors of a BDIA pair as float64, or one ValueError naming `name`."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ArgumentError(name, 'must be a pair of tensors')
    for x in pair:
        check_latents(net, x, name=name)
    if pair[0].shape != pair[1].shape:
        raise ArgumentError(name, f'holds tensors of different shapes {tuple(pair[0].shape)} and '
                                  f'{tuple(pair[1].shape)}')
    return pair[0].to(torch.float64), pair[1].to(torch.float64)


def strength_to_step(strength, num_steps):
    """k = N - ceil(strength N): the state x_k at which a partial inversion stops (strength 1: x_0, pure noise).

    Inverting with strength s walks back the last ceil(s N) steps, to the pair (x_k, x_{k+1}) at noise level t_k.
    """
    if isinstance(strength, bool) or not isinstance(strength, numbers.Real) or not 0 < strength <= 1:
        raise ArgumentError('strength', f'must be a number in (0, 1] (the fraction of the steps to invert), got '
                                        f'{strength!r}')
    return num_steps - math.ceil(round(strength * num_steps, 9))  # round: 0.3 * 10 is 3.0000000000000004


def check_invertible(gammas, stop):
    """The steps stop+1 .. N-1 that an inversion to x_stop undoes must have gamma_i > 0."""
    if min(gammas[stop:], default=1) == 0:
        raise ArgumentError('gamma', 'must be > 0 for inversion: gamma = 0 is the plain base sampler, which is not '
                                     'invertible (the inverse divides by gamma)')


def _check_start_step(start_step, num_steps):
    if isinstance(start_step, bool) or not isinstance(start_step, numbers.Integral) or \
            not 0 <= start_step <= num_steps - 1:
        raise ArgumentError('start_step', f'must be an integer in [0, {num_steps - 1}] (`start_pair` holds x_k, '
                                          f'x_(k+1) with k = `start_step`), got {start_step!r}')


def _increments(net, x, t_steps, i, *, class_labels, base):
    """(F(x_i), B(x_i), denoised) at step i: the forward `base` increment to t_{i+1} and the backward Euler
    increment to t_{i-1}."""
    forward, d_cur, denoised = base_increment(net, x, t_steps[i], t_steps[i + 1], class_labels=class_labels, base=base)
    backward = (t_steps[i - 1] - t_steps[i]) * d_cur  # B = (t_{i-1} - t_i) d(x_i, t_i): no extra network call
    return forward, backward, denoised


def bdia_step(x_prev, x_cur, gamma, backward, forward):
    """x_{i+1} = gamma x_{i-1} + (1 - gamma) x_i - gamma B(x_i) + F(x_i)   (BDIA; Wang et al. 2024, eq. 10)."""
    return gamma * x_prev + (1 - gamma) * x_cur - gamma * backward + forward


def bdia_step_inverse(x_next, x_cur, gamma, backward, forward):
    """x_{i-1} = (x_{i+1} - (1 - gamma) x_i + gamma B(x_i) - F(x_i)) / gamma   (eq. 10 solved for x_{i-1})."""
    return (x_next - (1 - gamma) * x_cur + gamma * backward - forward) / gamma


def bdia_sampler(net, latents, class_labels=None, *, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7, sigmas=None,
                 gamma=DEFAULT_GAMMA, base=DEFAULT_BASE, start_pair=None, start_step=0, return_pair=False,
                 return_trajectory=False, callback=None, S_churn=0):
    """BDIA sampling from `latents` ~ N(0, I), or from `start_pair` = (x_k, x_{k+1}) with k = `start_step`, as
    returned by `bdia_invert` / `bdia_encode` (k = 0 unless they were given a strength < 1).

    Returns x_N (float64 images), or (x_N, x_{N-1}) with `return_pair=True`: the pair `bdia_invert` needs. With
    `return_trajectory=True` the result comes with a `Trajectory` of every state, as (result, trajectory).

    The default is O-BELM with gamma_i >= 0.5 (gamma='obelm-floor', base='euler'; N network evaluations);
    gamma='obelm' is O-BELM exactly. base='heun' is EDM's Heun sampler with the BDIA correction (2N - 1
    evaluations; gamma=0 is `edm_sampler` without churn, bit for bit), first order for every gamma > 0. Settings
    whose parasitic mode grows (e.g. gamma >= 0.7 at N = 18, gamma = 1 at any N) give a warning (`stability.py`).
    `sigmas`: explicit noise levels t_0 > ... > t_N = 0 instead of num_steps, sigma_min, sigma_max and rho.
    `callback(dict(i, t_cur, t_next, x, denoised))` runs after each step.
    Regenerating from `start_pair` is half of a round trip: it refuses 16-bit and TF32 network arithmetic.
    """
    if S_churn:
        raise ArgumentError('S_churn', 'must be 0 for BDIA: stochastic churn makes the sampler non-invertible; use '
                                       'edm_sampler for stochastic sampling')
    check_base(base)
    if (latents is None) == (start_pair is None):
        raise ArgumentError('latents', 'and `start_pair`: pass exactly one of them')
    if start_pair is None:
        check_latents(net, latents)
        x_prev, x_cur, device = None, None, latents.device
        if start_step != 0:
            raise ArgumentError('start_step', 'needs `start_pair` (sampling from latents starts at step 0)')
    else:
        x_prev, x_cur = check_pair(net, start_pair, 'start_pair')
        device = x_cur.device
    t_steps = sampler_sigmas(net, device, sigmas, num_steps=num_steps, sigma_min=sigma_min, sigma_max=sigma_max,
                             rho=rho)
    num_steps = len(t_steps) - 1
    gammas = bdia_gammas(gamma, t_steps, base)
    if start_pair is None:
        x_cur = latents.to(torch.float64) * t_steps[0]
        first_step = 0
    else:
        _check_start_step(start_step, num_steps)
        check_exact_arithmetic(net, x_cur)
        first_step = start_step + 1
    check_class_labels(net, class_labels, x_cur.shape[0])
    first_state = max(first_step - 1, 0)  # index of the first state of this run
    warn_if_unstable(t_steps, gammas, gamma, base, first=first_state)
    states = [x for x in (x_prev, x_cur) if x is not None] if return_trajectory else None

    for i in range(first_step, num_steps):
        if i == 0:
            forward, _, denoised = base_increment(net, x_cur, t_steps[0], t_steps[1], class_labels=class_labels,
                                                  base=base)
            x_next = x_cur + forward  # the first step is a plain base step (no x_{-1} yet)
        else:
            forward, backward, denoised = _increments(net, x_cur, t_steps, i, class_labels=class_labels, base=base)
            x_next = bdia_step(x_prev, x_cur, gammas[i - 1], backward, forward)
        if callback is not None:
            callback(dict(i=i, t_cur=t_steps[i], t_next=t_steps[i + 1], x=x_next, denoised=denoised))
        x_prev, x_cur = x_cur, x_next
        if return_trajectory:
            states.append(x_cur)
    result = (x_cur, x_prev) if return_pair else x_cur
    return (result, trajectory(t_steps, first_state, states)) if return_trajectory else result


def bdia_invert(net, x_last, x_prev, class_labels=None, *, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7,
                sigmas=None, gamma=DEFAULT_GAMMA, base=DEFAULT_BASE, strength=1.0, return_trajectory=False,
                callback=None):
    """Run the BDIA recursion backwards from the final pair (x_N, x_{N-1}); returns (x_k, x_{k+1}).

    k = 0 by default: x_0 / t_0 recovers the latents and `bdia_sampler(net, None, start_pair=(x_0, x_1))` regenerates
    x_2 .. x_N. `strength` < 1 walks back only the last ceil(strength N) steps (k = `strength_to_step`); regenerate
    with start_step=k. Costs the network evaluations of sampling steps k+1 .. N-1, plus one that checks the network
    repeats its output; refuses 16-bit and TF32 arithmetic (`exactness.py`). With `return_trajectory=True` returns
    ((x_k, x_{k+1}), trajectory), the trajectory in the sampler's order (noise to data).
    `callback(dict(i, t_cur, t_next, x, denoised))` runs after each inverted step i, with x = x_{i-1} at t_next.
    """
    check_base(base)
    x_next, x_cur = check_pair(net, (x_last, x_prev), 'the final pair (x_last, x_prev)')
    check_class_labels(net, class_labels, x_cur.shape[0])
    t_steps = sampler_sigmas(net, x_cur.device, sigmas, num_steps=num_steps, sigma_min=sigma_min,
                             sigma_max=sigma_max, rho=rho)
    num_steps = len(t_steps) - 1
    gammas = bdia_gammas(gamma, t_steps, base)
    stop = strength_to_step(strength, num_steps)
    check_invertible(gammas, stop)
    net = exact_network(net, x_cur)

    states = [x_next, x_cur] if return_trajectory else None  # x_N, x_{N-1}, ... (walking toward the noise)
    for i in range(num_steps - 1, stop, -1):
        forward, backward, denoised = _increments(net, x_cur, t_steps, i, class_labels=class_labels, base=base)
        x_before = bdia_step_inverse(x_next, x_cur, gammas[i - 1], backward, forward)
        if callback is not None:
            callback(dict(i=i, t_cur=t_steps[i], t_next=t_steps[i - 1], x=x_before, denoised=denoised))
        x_next, x_cur = x_cur, x_before
        if return_trajectory:
            states.append(x_cur)
    pair = (x_cur, x_next)
    return (pair, trajectory(t_steps, stop, states[::-1])) if return_trajectory else pair
