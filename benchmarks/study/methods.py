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
from edm_bdia.samplers.gammas import obelm_gammas
from edm_bdia.samplers.reversible_heun import (reversible_heun_encode, reversible_heun_invert,
                                               reversible_heun_sampler)

from ..common.ode import ode_derivative
from .reference import first_encoding_step


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


def ode_encode(net, images, labels, num_steps, base):
    """Approximate inversion: the base solver run from t_N = 0 up to t_0, after a trapezoidal first step up to
    t_{N-1} (`first_encoding_step`). Returns (x_0,)."""
    t = karras_sigmas(num_steps, net=net)
    x = first_encoding_step(net, images.to(torch.float64), labels, t[-2])
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
        regenerate=lambda net, start, c, n: bdia_sample(net, BDIAPair(0, *start), c, num_steps=n,
                                                        **options(n)).images,
        exact_inverse=True)


def obelm_clipped(floor, exact_below=0.0):
    """O-BELM's per-step gamma_i = (h_i / h_{i+1})^2 clipped to [floor, 1], and set to 1 on the steps from noise
    levels t_i < `exact_below` (study variants; explicit gamma sequences must lie in [0, 1]). The inverse amplifies
    errors by prod(1 / gamma_i): the floor bounds that where O-BELM's gamma_i are small (few steps), and gamma_i = 1
    at the smallest noise levels stops the amplification of local errors made where trained networks are roughest."""
    def gammas(n):
        t = karras_sigmas(n)
        # gammas(n)[k] belongs to step i = k + 1, which starts from t_i
        return [1.0 if t[k + 1] < exact_below else min(1.0, max(g, floor))
                for k, g in enumerate(obelm_gammas(t))]
    label = f'O-BELM, gamma_i in [{floor:g}, 1]' + (f', 1 below t = {exact_below:g}' if exact_below else '')
    return bdia('euler', gammas, label=label)


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


def all_methods(gammas):
    methods = [euler(), heun(), dpmpp_2m()]
    methods += [bdia('heun', g) for g in gammas]
    methods += [bdia('euler', g) for g in gammas]
    methods += [bdia('euler', DEFAULT_GAMMA, label=f'the library default (g={DEFAULT_GAMMA})'),
                bdia('euler', 'obelm', label='O-BELM (BDIA-euler g=obelm)'), obelm_clipped(0.5),
                obelm_clipped(0.5, exact_below=0.01),
                bdia('heun', 'obelm', label='BDIA-heun g=obelm'), reversible_heun()]
    return [m for m in methods if m is not None]
