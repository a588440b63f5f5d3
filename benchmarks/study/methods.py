"""The solvers under study, each with its step count for a given NFE and, where it has one, its inverse.

Every method is called through one interface:
  sample(net, latents, labels, n)   -> (images, state)   state: what the inverse needs (pair, (x, x^), or images)
  invert(net, state, labels, n)     -> start             start[0] = latents * t_0; regenerate(start) redoes images
  encode(net, images, labels, n)    -> start             for real images
  regenerate(net, start, labels, n) -> images
Euler and Heun have no exact inverse; they are given the usual approximate one (the same solver run backwards from
t = 0, "DDIM inversion"), so their round trip and encodings show what exact inversion buys.
"""

import dataclasses
from typing import Callable, Optional

import torch

from edm_bdia.sample import (DEFAULT_GAMMA, BDIAPair, bdia_encode, bdia_invert, bdia_sample, bdia_sampler, edm_sampler,
                             karras_sigmas)
from edm_bdia.samplers.reversible_heun import (reversible_heun_encode, reversible_heun_invert,
                                               reversible_heun_sampler)

from ..common.ode import ode_derivative


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    kind: str  # 'baseline' (no exact inverse), 'invertible', 'anchor' (quality reference, no inverse)
    steps: Callable[[int], int]  # NFE -> N
    nfe: Callable[[int], int]  # N -> NFE
    sample: Callable
    invert: Optional[Callable] = None
    encode: Optional[Callable] = None
    regenerate: Optional[Callable] = None
    exact_inverse: bool = False


def heun_steps(nfe):
    return (nfe + 1) // 2  # 2N - 1 evaluations


def _same(n):
    return n


def encoding_start(net, images, labels, num_steps):
    """x_{N-1} of real images as `bdia_encode` builds it (the ODE solved from t = 0 up to t_{N-1}): an encoding
    with strength 1 / N inverts no step and returns the final pair (x_{N-1}, x_N)."""
    return bdia_encode(net, images, labels, num_steps=num_steps, strength=1 / num_steps, check_network=False).pair.x


def ode_encode(net, images, labels, num_steps, base):
    """Approximate inversion: the base solver run from t_{N-1} up to t_0, from the same x_{N-1} as BDIA's encoding
    (`encoding_start`), so that only the inversion differs. Returns (x_0,)."""
    t = karras_sigmas(num_steps, net=net)
    x = encoding_start(net, images.to(torch.float64), labels, num_steps)
    for i in range(num_steps - 1, 0, -1):
        h = t[i - 1] - t[i]
        d = ode_derivative(net, x, t[i], labels)
        if base == 'euler':
            x = x + h * d
        else:  # Heun: Euler predictor, trapezoidal corrector (EDM Algorithm 1), upward in t
            x = x + h * (0.5 * d + 0.5 * ode_derivative(net, x + h * d, t[i - 1], labels))
    return (x,)


def _with_state(pair):
    """(images, state) from a sampler's final pair, whose first entry is the images."""
    return pair[0], pair


def _images_and_pair(result):
    """(images, state) of a BDIA run: the inverse starts from its final pair."""
    return result.images, result.pair


def _start_of(pair):
    """The start (x_0, x_1) of a BDIA pair at step 0: x_0 = latents * t_0."""
    return pair.x, pair.x_next


def _latents_of(start, num_steps):
    return start[0] / karras_sigmas(num_steps)[0]


def euler():
    def sample(net, z, c, n):
        images = bdia_sampler(net, z, c, num_steps=n, gamma=0, base='euler')
        return images, images
    return Method('Euler', 'baseline', _same, _same, sample,
                  invert=lambda net, state, c, n: ode_encode(net, state, c, n, 'euler'),
                  encode=lambda net, x, c, n: ode_encode(net, x, c, n, 'euler'),
                  regenerate=lambda net, start, c, n: sample(net, _latents_of(start, n), c, n)[0])


def heun():
    def sample(net, z, c, n):
        images = edm_sampler(net, z, c, num_steps=n)
        return images, images
    return Method('Heun (EDM)', 'baseline', heun_steps, lambda n: 2 * n - 1, sample,
                  invert=lambda net, state, c, n: ode_encode(net, state, c, n, 'heun'),
                  encode=lambda net, x, c, n: ode_encode(net, x, c, n, 'heun'),
                  regenerate=lambda net, start, c, n: sample(net, _latents_of(start, n), c, n)[0])


def bdia(base, gamma, label=None):
    """BDIA on EDM (`edm_bdia.sample.bdia_sample`) with base 'heun' (2N - 1 NFE) or 'euler' (N NFE); `gamma` is
    what bdia_sample takes, or a function of N returning it (a per-step schedule)."""
    def options(n):
        return dict(gamma=gamma(n) if callable(gamma) else gamma, base=base)
    name = label or f'BDIA-{base} g={gamma:g}'
    return Method(
        name, 'invertible', heun_steps if base == 'heun' else _same,
        (lambda n: 2 * n - 1) if base == 'heun' else _same,
        sample=lambda net, z, c, n: _images_and_pair(bdia_sample(net, z, c, num_steps=n, **options(n))),
        invert=lambda net, pair, c, n: _start_of(bdia_invert(net, pair, c, num_steps=n, **options(n)).pair),
        encode=lambda net, x, c, n: _start_of(bdia_encode(net, x, c, num_steps=n, **options(n)).pair),
        regenerate=lambda net, start, c, n: bdia_sample(net, BDIAPair(0, start[0], start[1]), c, num_steps=n,
                                                        **options(n)).images,
        exact_inverse=True)


def reversible_heun():
    return Method(
        'Reversible Heun', 'invertible', lambda nfe: nfe - 1, lambda n: n + 1,
        sample=lambda net, z, c, n: _with_state(reversible_heun_sampler(net, z, c, num_steps=n, return_state=True)),
        invert=lambda net, state, c, n: reversible_heun_invert(net, *state, c, num_steps=n),
        encode=lambda net, x, c, n: reversible_heun_encode(net, x, c, num_steps=n),
        regenerate=lambda net, start, c, n: reversible_heun_sampler(net, None, c, num_steps=n, start_state=start),
        exact_inverse=True)


def dpmpp_2m():
    """k-diffusion's DPM-Solver++(2M) through edm_bdia.interop, or None when k-diffusion is not installed."""
    try:
        from edm_bdia.interop import k_diffusion_sampler
        sampler = k_diffusion_sampler('dpmpp_2m')
    except ImportError:
        return None

    def sample(net, z, c, n):
        images = sampler(net, z, class_labels=c, num_steps=n)
        return images, None
    return Method('DPM-Solver++(2M)', 'anchor', _same, sampler.nfe, sample)


DEFAULT = f'the default (g={DEFAULT_GAMMA})'
OBELM = 'O-BELM (BDIA-euler g=obelm)'


def all_methods(gammas):
    methods = [euler(), heun(), dpmpp_2m()]
    methods += [bdia('heun', g) for g in gammas]
    methods += [bdia('euler', g) for g in gammas]
    methods += [bdia('euler', DEFAULT_GAMMA, label=DEFAULT), bdia('euler', 'obelm', label=OBELM),
                bdia('euler', 'obelm-floor', label='the 0.x default (g=obelm-floor)'), reversible_heun()]
    return [m for m in methods if m is not None]
