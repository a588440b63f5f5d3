"""BDIA on EDM (Zhang, Lewis, Kleijn, ECCV 2024): its step, the sampling loop and the loop's exact inverse.

States are indexed toward the data: x_0 = latents * t_0, ..., x_N at t_N = 0, and d(x, t) = (x - D(x; t)) / t
(EDM eq. 4). Step 0 is a plain base step (there is no x_{-1} yet); every later step i = 1 .. N-1 is

    x_{i+1} = gamma_i x_{i-1} + rest_i(x_i),                                 (BDIA; Wang et al. 2024, eq. 10)
    rest_i(x_i) = (1 - gamma_i) x_i - gamma_i B(x_i) + F(x_i)

with F the forward increment of a base solver from t_i to t_{i+1} (`base='euler'`: (t_{i+1} - t_i) d(x_i, t_i),
DDIM in EDM coordinates; `base='heun'`: EDM's Heun step, Euler on the step to t = 0) and B = (t_{i-1} - t_i)
d(x_i, t_i) the backward Euler increment, which reuses the evaluation at x_i. gamma_i may depend on x_i as well
(the default rule does, gammas.py). Everything but the term gamma_i x_{i-1} is a function of x_i, so the step
inverts exactly:

    x_{i-1} = (x_{i+1} - rest_i(x_i)) / gamma_i

`step_terms` computes gamma_i and rest_i for both directions (and for the stability analysis, stability.py);
`sample_steps` and `invert_steps` are the two loops; `image_pair` builds the pair that inverting a real image starts
from. These are the cores: the public functions (invertible.py) check their arguments once and call them.
docs/samplers.md derives the maths and the choices.
"""

from typing import NamedTuple, Optional

import torch

from .ode import base_increment, edm_derivative


class BDIAPair(NamedTuple):
    """Two consecutive states of a BDIA run, all a run needs to go on in either direction: x = x_step at t_step and
    x_next = x_{step+1}. Sampling ends with the pair at step N - 1 (x_next is the image); inversion ends with the
    pair at step k (k = 0: x / t_0 are the latents). `run` identifies the settings of the run that made the pair
    (noise levels, gamma, base, guidance), so that a run with other settings can refuse it; None for a pair made by
    hand or read from a file, which nothing can check."""
    step: int
    x: torch.Tensor
    x_next: torch.Tensor
    run: Optional[str] = None


class Gammas:
    """gamma_i of the steps i = 1 .. N-1: `values` (Python floats; gammas.py has the rules), each raised toward
    `floor` by the share of the state the network resolves at that step when `floor` is given (the adaptive rule:
    gamma_i then lies in [values[i-1], max(values[i-1], floor)])."""

    def __init__(self, values, floor=None):
        self.values = values
        self.floor = floor

    def at(self, i, d_cur):
        """gamma_i at the state x_i whose derivative d(x_i, t_i) is `d_cur` [batch, ...]: a float, or with `floor` a
        float64 tensor [batch, 1, ...] (one gamma_i per sample)."""
        gamma = self.values[i - 1]
        if self.floor is None or gamma >= self.floor:
            return gamma
        # d = (x - D(x; t)) / t is the network's estimate of the noise in x (EDM eq. 4), so its mean square is the
        # share of the noise it cannot yet tell from the data: about 1 where every structure of the data is finer
        # than t, about 0 where all of it is coarser. Its complement, the resolved share, moves gamma_i from
        # O-BELM's value (which sampling needs where data is finer than t) to the floor (which inversion needs
        # where it is coarser).
        resolved = 1 - d_cur.reshape(d_cur.shape[0], -1).square().mean(1).clamp(max=1)
        return gamma + (self.floor - gamma) * resolved.reshape(-1, *[1] * (d_cur.ndim - 1))


def step_terms(net, x_cur, t_steps, i, *, class_labels, base, gammas):
    """(gamma_i, rest_i(x_i), D(x_i; t_i)) of step i >= 1, everything of the step that depends on x_i alone."""
    forward, d_cur, denoised = base_increment(net, x_cur, t_steps[i], t_steps[i + 1], class_labels=class_labels,
                                              base=base)
    backward = (t_steps[i - 1] - t_steps[i]) * d_cur  # B(x_i) = (t_{i-1} - t_i) d(x_i, t_i): no extra evaluation
    gamma = gammas.at(i, d_cur)
    rest = (1 - gamma) * x_cur - gamma * backward + forward  # eq. 10 without its gamma_i x_{i-1} term
    return gamma, rest, denoised


def sample_steps(net, x_prev, x_cur, first, t_steps, *, class_labels, base, gammas, callback=None, states=None):
    """Steps `first` .. N-1 from x_{first-1} (None when first = 0) and x_first; returns the final pair (step N - 1).
    `states` (a list, or None) collects x_{first+1} .. x_N."""
    num_steps = len(t_steps) - 1
    for i in range(first, num_steps):
        if i == 0:  # a plain base step
            forward, _, denoised = base_increment(net, x_cur, t_steps[0], t_steps[1], class_labels=class_labels,
                                                  base=base)
            x_next = x_cur + forward
        else:
            gamma, rest, denoised = step_terms(net, x_cur, t_steps, i, class_labels=class_labels, base=base,
                                               gammas=gammas)
            x_next = gamma * x_prev + rest  # x_{i+1} = gamma_i x_{i-1} + rest_i(x_i)
        if callback is not None:
            callback(dict(i=i, t_cur=t_steps[i], t_next=t_steps[i + 1], x=x_next, denoised=denoised))
        if states is not None:
            states.append(x_next)
        x_prev, x_cur = x_cur, x_next
    return BDIAPair(num_steps - 1, x_prev, x_cur)


def invert_steps(net, pair, stop, t_steps, *, class_labels, base, gammas, callback=None, states=None):
    """Steps pair.step .. stop + 1 undone, from `pair`; returns the pair at step `stop` (x_stop, x_{stop+1}).
    `states` (a list, or None) collects x_{pair.step-1} .. x_stop."""
    x_cur, x_next = pair.x, pair.x_next
    for i in range(pair.step, stop, -1):
        gamma, rest, denoised = step_terms(net, x_cur, t_steps, i, class_labels=class_labels, base=base,
                                           gammas=gammas)
        x_prev = (x_next - rest) / gamma  # x_{i-1} = (x_{i+1} - rest_i(x_i)) / gamma_i
        if callback is not None:
            callback(dict(i=i, t_cur=t_steps[i], t_next=t_steps[i - 1], x=x_prev, denoised=denoised))
        if states is not None:
            states.append(x_prev)
        x_cur, x_next = x_prev, x_cur
    return BDIAPair(stop, x_cur, x_next)


# x_{N-1} of a real image: the ODE solved from t = 0 up to t_{N-1} on ENCODING_SUBSTEPS geometric levels from
# t_{N-1} / ENCODING_START_RATIO (docs/samplers.md, "Encoding real images").
ENCODING_SUBSTEPS = 16
ENCODING_START_RATIO = 1000


def image_pair(net, images, t_steps, class_labels, callback=None):
    """The final pair (x_{N-1}, x_N) of real images x_N, with x_{N-1} the ODE solution at t_{N-1} from the images.

    [0, t_a], t_a = t_{N-1} / 1000: the trapezoidal rule with slope 0 at t = 0 (d = -t grad log p_t vanishes there),
    x(t_a) = x_N + (t_a / 2) d(x_N, t_a); exact to O((t_a / s)^2) for structure of scale s in the data. Then Heun
    steps on 16 geometric levels up to t_{N-1}, each starting from the slope its predecessor's corrector evaluated,
    so one evaluation per level (17 in all). Heun is exact on both regimes of this ODE, x - x_N growing like t^2 for
    structure coarser than t and like t for finer structure; its error sits where one turns into the other.
    """
    x_last = images.to(torch.float64)
    t_prev = t_steps[-2]
    levels = [t_prev / ENCODING_START_RATIO ** (1 - k / ENCODING_SUBSTEPS) for k in range(ENCODING_SUBSTEPS + 1)]
    slope, denoised = edm_derivative(net, x_last, levels[0], class_labels)
    x = x_last + 0.5 * levels[0] * slope
    for t_from, t_to in zip(levels[:-1], levels[1:]):
        predicted = x + (t_to - t_from) * slope
        slope_next, denoised = edm_derivative(net, predicted, t_to, class_labels)
        x = x + (t_to - t_from) * (0.5 * slope + 0.5 * slope_next)  # trapezoidal corrector
        slope = slope_next
    if callback is not None:
        callback(dict(i=len(t_steps) - 1, t_cur=t_steps[-1], t_next=t_prev, x=x, denoised=denoised))
    return BDIAPair(len(t_steps) - 2, x, x_last)
