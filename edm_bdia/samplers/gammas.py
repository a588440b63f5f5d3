"""BDIA's gamma_i: the user's numbers and the named rules, as one `Gammas` object that the steps ask for gamma_i.

- a number in [0, 1], or a sequence of N - 1 of them: fixed gamma_i (0 is the base solver, not invertible);
- 'obelm': gamma_i = (h_i / h_{i-1})^2 with h_i = t_i - t_{i+1}, which turns BDIA on the Euler base into O-BELM
  (Wang et al., NeurIPS 2024, eq. 18 with alpha = 1 and sigma-bar = t), second order at one evaluation per step;
- 'obelm-adaptive', the default: O-BELM's gamma_i raised toward FLOOR = 0.5 in proportion to the share of the state
  that the network already resolves at t_i (measured from the step's own evaluation, per sample);
- 'obelm-floor', the default of edm_bdia 0.x (kept so that its latents files regenerate): O-BELM's gamma_i raised
  to at least 0.5 on the steps from below t = 0.5, unless that makes sampling of data at scale 0.5 unstable.
docs/samplers.md derives them and has the measurements behind the default.
"""

import numbers

from edm_bdia.errors import ArgumentError

from .bdia import Gammas
from .checks import check_gamma_value
from .defaults import GAMMA_RULE_NAMES
from .stability import DATA_STD, GROWTH_LIMIT, parasitic_growth

FLOOR = 0.5


def obelm_gammas(t_steps):
    """gamma_i = (h_i / h_{i-1})^2 for steps i = 1 .. N-1, h_i = t_i - t_{i+1} (the step being taken).

    On EDM's schedule gamma_i < 1 except on the final step to t = 0 for N >= 36, which is longer than the one before
    (2.5 at N = 50, 58 at N = 200): that step integrates the last interval [t_{N-1}, 0] to second order, where EDM's
    own samplers take a first-order Euler jump (docs/samplers.md, "The final step").
    """
    t = [float(v) for v in t_steps]
    return [((t[i] - t[i + 1]) / (t[i - 1] - t[i])) ** 2 for i in range(1, len(t) - 1)]


def floored_obelm_gammas(t_steps, base='euler'):
    """'obelm-floor': O-BELM's gamma_i, raised to at least FLOOR on the steps from below t = 0.5 (EDM's sigma_data),
    unless that makes the parasitic growth on data of scale 0.5 exceed GROWTH_LIMIT (then O-BELM's own)."""
    exact = obelm_gammas(t_steps)
    t = [float(v) for v in t_steps]
    floored = [max(FLOOR, g) if t[k + 1] < DATA_STD else g for k, g in enumerate(exact)]  # step k + 1
    return floored if parasitic_growth(t_steps, Gammas(floored), base) <= GROWTH_LIMIT else exact


def bdia_gammas(gamma, t_steps, base='euler'):
    """The `Gammas` of a `gamma` argument: a number in [0, 1], a sequence of N - 1 such numbers, or a rule name."""
    num_steps = len(t_steps) - 1
    if isinstance(gamma, str):
        if gamma == 'obelm':
            return Gammas(obelm_gammas(t_steps))
        if gamma == 'obelm-adaptive':
            return Gammas(obelm_gammas(t_steps), floor=FLOOR)
        if gamma == 'obelm-floor':
            return Gammas(floored_obelm_gammas(t_steps, base))
        raise ArgumentError('gamma', "must be a number in [0, 1], a sequence of them or one of "
                                     f"{', '.join(repr(name) for name in GAMMA_RULE_NAMES)}, not {gamma!r}")
    if isinstance(gamma, numbers.Real) and not isinstance(gamma, bool):
        check_gamma_value(gamma)
        return Gammas([float(gamma)] * (num_steps - 1))
    try:
        gammas = [float(g) for g in gamma]
    except (TypeError, ValueError):
        raise ArgumentError('gamma', f'must be a number in [0, 1], a sequence of them or a rule name, not '
                                     f'{gamma!r}') from None
    if len(gammas) != num_steps - 1:
        raise ArgumentError('gamma', f'as a per-step sequence needs `num_steps` - 1 = {num_steps - 1} values (steps '
                                     f'1 .. N-1; the first step is a plain base step), got {len(gammas)}')
    for i, g in enumerate(gammas):
        check_gamma_value(g, name=f'gamma[{i}]')
    return Gammas(gammas)
