"""The invertible sampler's public functions: sample, invert, encode real images, edit them.

Each checks its arguments once, resolves the noise levels and gamma_i once, and runs the cores of bdia.py
(`sample_steps`, `invert_steps`, `image_pair`). A run is carried between them as a `BDIAPair`: sampling ends with
the pair at step N - 1 (its x_next is the image), inversion and encoding end with the pair at step k (k = 0: its x /
t_0 are the latents), and sampling from a pair regenerates from its step. Round trips (inversion, encoding,
editing, sampling from a pair) need a network whose outputs repeat to the bit: `check_network=True` refuses 16-bit
and TF32 arithmetic and checks the first call twice (exactness.py).
"""

import hashlib
import math
import numbers
import warnings
from typing import NamedTuple, Optional

import torch

from edm_bdia.errors import ArgumentError

from .bdia import BDIAPair, image_pair, invert_steps, sample_steps
from .checks import check_choice, check_class_labels, check_latents
from .defaults import DEFAULT_BASE, DEFAULT_GAMMA
from .exactness import check_exact_arithmetic, exact_network
from .gammas import bdia_gammas
from .guidance import guided
from .noise_levels import sampler_sigmas
from .stability import warn_if_unstable
from .trajectory import Trajectory, trajectory

BASES = ('heun', 'euler')
NOISE_LIKE_STD = (0.5, 2.0)  # encoded latents with a std outside are reported: Gaussian noise has std 1


class SampleResult(NamedTuple):
    """`bdia_sample`: the images x_N, the final pair (x_{N-1}, x_N) that `bdia_invert` takes, and every state from
    the start (None unless keep_trajectory)."""
    images: torch.Tensor
    pair: BDIAPair
    trajectory: Optional[Trajectory]


class InversionResult(NamedTuple):
    """`bdia_invert` / `bdia_encode`: the pair at step k (x_k, x_{k+1}) that `bdia_sample` regenerates from, and
    every state from x_k to the images in the sampler's order (None unless keep_trajectory)."""
    pair: BDIAPair
    trajectory: Optional[Trajectory]


class EditResult(NamedTuple):
    """`bdia_edit`: the edited images and both halves of the run."""
    images: torch.Tensor
    inversion: InversionResult  # source labels: images -> the pair at step k
    regeneration: SampleResult  # target labels: the pair at step k -> edited images


def strength_to_step(strength, num_steps):
    """k = N - ceil(strength N): the state x_k at which a partial inversion stops (strength 1: x_0, pure noise).

    Inverting with strength s walks back the last ceil(s N) steps, to the pair (x_k, x_{k+1}) at noise level t_k.
    """
    if isinstance(strength, bool) or not isinstance(strength, numbers.Real) or not 0 < strength <= 1:
        raise ArgumentError('strength', f'must be a number in (0, 1] (the fraction of the steps to invert), got '
                                        f'{strength!r}')
    return num_steps - math.ceil(round(strength * num_steps, 9))  # round: 0.3 * 10 is 3.0000000000000004


def _run_id(t_steps, gamma, base, net):
    """What identifies the settings of a run in the pairs it makes: its noise levels, gamma, base and guidance."""
    guidance = getattr(net, 'guidance', 1)  # a GuidedDenoiser's, also through exactness.RepeatabilityChecked
    text = f'{t_steps.cpu().numpy().tobytes().hex()}|{gamma!r}|{base}|{guidance!r}'
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_run(pair, name, run):
    """A pair made by a run refuses other settings (a hand-made pair cannot be checked)."""
    if pair.run is not None and pair.run != run:
        raise ArgumentError(name, 'was made by a run with other settings (noise levels, gamma, base or guidance); use '
                                  'the settings that made it')


def _settings(net, device, *, num_steps, sigma_min, sigma_max, rho, sigmas, gamma, base):
    """(t_0 > ... > t_N = 0, the `Gammas` of steps 1 .. N-1) of one call."""
    check_choice(base, 'base', BASES)
    t_steps = sampler_sigmas(net, device, sigmas, num_steps=num_steps, sigma_min=sigma_min, sigma_max=sigma_max,
                             rho=rho)
    return t_steps, bdia_gammas(gamma, t_steps, base)


def round_trip_settings(net, device=None, *, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7, sigmas=None,
                        gamma=DEFAULT_GAMMA, base=DEFAULT_BASE, strength=1.0):
    """(t_0 > ... > t_N = 0, the `Gammas` of steps 1 .. N-1, the step k an inversion with `strength` stops at) of a
    round trip, every setting checked (ValueError naming it): what `bdia_invert`, `bdia_encode` and `bdia_edit`
    resolve, for runs that check their settings before any work."""
    t_steps, gammas = _settings(net, device, num_steps=num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho,
                                sigmas=sigmas, gamma=gamma, base=base)
    stop = strength_to_step(strength, len(t_steps) - 1)
    if min(gammas.values[stop:], default=1) == 0:  # the steps stop+1 .. N-1 that the inversion undoes
        raise ArgumentError('gamma', 'must be > 0 for inversion: gamma = 0 is the plain base sampler, which is not '
                                     'invertible (the inverse divides by gamma)')
    return t_steps, gammas, stop


def _as_pair(net, pair, name):
    """`pair` as a BDIAPair of float64 tensors, or one ValueError naming `name`."""
    if not isinstance(pair, BDIAPair):
        raise ArgumentError(name, f'must be a BDIAPair(step, x, x_next) (edm_bdia.sample.BDIAPair), as runs return it, '
                                  f'not {type(pair).__name__}')
    for x in (pair.x, pair.x_next):
        check_latents(net, x, name=name)
    if pair.x.shape != pair.x_next.shape:
        raise ArgumentError(name, f'holds tensors of different shapes {tuple(pair.x.shape)} and '
                                  f'{tuple(pair.x_next.shape)}')
    return BDIAPair(pair.step, pair.x.to(torch.float64), pair.x_next.to(torch.float64), pair.run)


def _check_step(pair, name, num_steps, final=False):
    """The pair's step in [0, N - 1], and N - 1 when `final`."""
    step = pair.step
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or not 0 <= step <= num_steps - 1:
        raise ArgumentError(name, f'has step {step!r}; with {num_steps} steps it must be an integer in '
                                  f'[0, {num_steps - 1}]')
    if final and step != num_steps - 1:
        raise ArgumentError(name, f'must be the final pair of a run (step {num_steps - 1}: x_(N-1), x_N), got step '
                                  f'{step}')


def _sample(net, start, class_labels, *, num_steps, sigma_min, sigma_max, rho, sigmas, gamma, base, keep_trajectory,
            callback, check_network, gnet, guidance):
    """`bdia_sample` (also called by `bdia_sampler`, so that its warnings point at either's caller)."""
    net = guided(net, gnet, guidance)
    from_pair = isinstance(start, tuple)
    if from_pair:
        pair = _as_pair(net, start, 'start')
        device = pair.x.device
    else:
        check_latents(net, start)
        device = start.device
    t_steps, gammas = _settings(net, device, num_steps=num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho,
                                sigmas=sigmas, gamma=gamma, base=base)
    run = _run_id(t_steps, gamma, base, net)
    if from_pair:
        _check_step(pair, 'start', len(t_steps) - 1)
        _check_run(pair, 'start', run)
        if check_network:
            check_exact_arithmetic(net, pair.x)
        x_prev, x_cur, first_state = pair.x, pair.x_next, pair.step  # steps pair.step + 1 .. N-1 follow
    else:
        x_prev, x_cur, first_state = None, start.to(torch.float64) * t_steps[0], 0
    check_class_labels(net, class_labels, x_cur.shape[0])
    warn_if_unstable(t_steps, gammas, gamma, base, first=first_state, stacklevel=4)  # the caller of bdia_sample(r)
    states = [x for x in (x_prev, x_cur) if x is not None] if keep_trajectory else None
    first_step = first_state + 1 if from_pair else 0
    final = sample_steps(net, x_prev, x_cur, first_step, t_steps, class_labels=class_labels, base=base,
                         gammas=gammas, callback=callback, states=states)
    return SampleResult(final.x_next, final._replace(run=run),
                        trajectory(t_steps, first_state, states) if keep_trajectory else None)


def bdia_sample(net, start, class_labels=None, *, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7, sigmas=None,
                gamma=DEFAULT_GAMMA, base=DEFAULT_BASE, keep_trajectory=False, callback=None, check_network=True,
                gnet=None, guidance=1):
    """BDIA sampling from `start`: latents ~ N(0, I) (a run from step 0), or a `BDIAPair` from `bdia_invert` /
    `bdia_encode` (a regeneration from its step). Returns a `SampleResult` (images, final pair, trajectory).

    gamma: a number in [0, 1], a sequence of N - 1 of them, or a rule ('obelm-adaptive', the default; 'obelm';
    'obelm-floor'); base: 'euler' (1 evaluation per step) or 'heun' (EDM's Heun step, 2N - 1 evaluations; gamma=0
    is `edm_sampler` without churn, bit for bit). Settings whose parasitic mode grows get a warning (stability.py).
    `sigmas`: explicit noise levels t_0 > ... > t_N = 0 instead of num_steps, sigma_min, sigma_max and rho.
    `callback(dict(i, t_cur, t_next, x, denoised))` runs after each step. Regenerating from a pair is half of a
    round trip: with `check_network` it refuses 16-bit and TF32 network arithmetic. `gnet`, `guidance`: sample the
    guided denoiser (guidance.py); a round trip needs the same on both halves.
    """
    return _sample(net, start, class_labels, num_steps=num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho,
                   sigmas=sigmas, gamma=gamma, base=base, keep_trajectory=keep_trajectory, callback=callback,
                   check_network=check_network, gnet=gnet, guidance=guidance)


def bdia_sampler(net, latents, class_labels=None, *, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7, sigmas=None,
                 gamma=DEFAULT_GAMMA, base=DEFAULT_BASE, callback=None, gnet=None, guidance=1):
    """BDIA sampling from `latents` ~ N(0, I): float64 images, like `edm_sampler` (the sampler generate.py calls).
    `bdia_sample` takes the same settings and also returns the final pair (for `bdia_invert`) and the trajectory."""
    if not torch.is_tensor(latents):
        raise ArgumentError('latents', f'must be a tensor (bdia_sample regenerates from a BDIAPair), not '
                                       f'{type(latents).__name__}')
    return _sample(net, latents, class_labels, num_steps=num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho,
                   sigmas=sigmas, gamma=gamma, base=base, keep_trajectory=False, callback=callback,
                   check_network=False, gnet=gnet, guidance=guidance).images


def _inversion(net, pair, stop, t_steps, gammas, gamma, *, class_labels, base, keep_trajectory, callback):
    """Steps N-1 .. stop + 1 undone from the final `pair`; the InversionResult."""
    states = [pair.x_next, pair.x] if keep_trajectory else None  # x_N, x_{N-1}, ... (walking toward the noise)
    start = invert_steps(net, pair, stop, t_steps, class_labels=class_labels, base=base, gammas=gammas,
                         callback=callback, states=states)
    return InversionResult(start._replace(run=_run_id(t_steps, gamma, base, net)),
                           trajectory(t_steps, stop, states[::-1]) if keep_trajectory else None)


def bdia_invert(net, pair, class_labels=None, *, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7, sigmas=None,
                gamma=DEFAULT_GAMMA, base=DEFAULT_BASE, strength=1.0, keep_trajectory=False, callback=None,
                check_network=True, gnet=None, guidance=1):
    """Run BDIA backwards from the final pair of a run (`bdia_sample(...).pair`); returns an `InversionResult`.

    Its pair is at step k = 0 by default: pair.x / t_0 are the latents, and `bdia_sample(net, pair)` with the same
    settings regenerates the images to float64 rounding. `strength` < 1 walks back only the last ceil(strength N)
    steps (k = `strength_to_step`). Costs the network evaluations of sampling steps k+1 .. N-1, plus one that checks
    that the network repeats its output (`check_network`, which also refuses 16-bit and TF32 arithmetic).
    `callback(dict(i, t_cur, t_next, x, denoised))` runs after each inverted step i, with x = x_{i-1} at t_next.
    `gnet`, `guidance`: the guided denoiser the run was sampled with (guidance.py).
    """
    net = guided(net, gnet, guidance)
    pair = _as_pair(net, pair, 'pair')
    t_steps, gammas, stop = round_trip_settings(net, pair.x.device, num_steps=num_steps, sigma_min=sigma_min,
                                                sigma_max=sigma_max, rho=rho, sigmas=sigmas, gamma=gamma, base=base,
                                                strength=strength)
    _check_step(pair, 'pair', len(t_steps) - 1, final=True)
    _check_run(pair, 'pair', _run_id(t_steps, gamma, base, net))
    check_class_labels(net, class_labels, pair.x.shape[0])
    if check_network:
        net = exact_network(net, pair.x)
    return _inversion(net, pair, stop, t_steps, gammas, gamma, class_labels=class_labels, base=base,
                      keep_trajectory=keep_trajectory, callback=callback)


def _warn_unless_noise_like(latents, gammas, gamma, base):
    std = latents.std().item()
    if NOISE_LIKE_STD[0] <= std <= NOISE_LIKE_STD[1]:
        return
    advice = 'use more steps' if isinstance(gamma, str) and base == 'euler' else \
        f"use gamma={DEFAULT_GAMMA!r} with base={DEFAULT_BASE!r}"
    if std < NOISE_LIKE_STD[0]:
        cause = 'the steps are too few to carry the images to noise'
    else:  # too wide, or NaN
        amplification = math.prod(1 / g for g in gammas.values)
        cause = f'the inverse recursion amplifies its errors by up to prod(1/gamma_i) = {amplification:.2g} here'
    warnings.warn(f"the encoded latents have std {std:.3g}, not noise-like (Gaussian noise: 1): {cause}, or the "
                  f"images lie far from the network's data; {advice}", stacklevel=4)  # the caller of bdia_encode/edit


def _encoding_settings(net, images, class_labels, **settings):
    """The images and their labels checked; (t_steps, gammas, stop) of `round_trip_settings(**settings)`."""
    check_latents(net, images, name='images')
    t_steps, gammas, stop = round_trip_settings(net, images.device, **settings)
    check_class_labels(net, class_labels, images.shape[0])
    return t_steps, gammas, stop


def _encoding(net, images, stop, t_steps, gammas, gamma, *, class_labels, base, keep_trajectory, callback):
    """Real images to the pair at step `stop`: `image_pair`, then the inversion; the InversionResult."""
    final = image_pair(net, images, t_steps, class_labels, callback=callback)
    result = _inversion(net, final, stop, t_steps, gammas, gamma, class_labels=class_labels, base=base,
                        keep_trajectory=keep_trajectory, callback=callback)
    if stop == 0:
        _warn_unless_noise_like(result.pair.x / t_steps[0], gammas, gamma, base)
    return result


def bdia_encode(net, images, class_labels=None, *, num_steps=18, sigma_min=0.002, sigma_max=80, rho=7, sigmas=None,
                gamma=DEFAULT_GAMMA, base=DEFAULT_BASE, strength=1.0, keep_trajectory=False, callback=None,
                check_network=True, gnet=None, guidance=1):
    """Encode real images (float, in [-1, 1]) into the pair at step k; returns an `InversionResult`.

    strength=1: k = 0 and pair.x / t_0 are the images' latents. `bdia_sample(net, result.pair, class_labels)` with the
    same settings returns the images to float64 rounding. `strength` < 1 inverts only the last ceil(strength N)
    steps (k = `strength_to_step(strength, N)`). The missing state x_{N-1} is the ODE solved from the images up to
    t_{N-1} (`bdia.image_pair`, 17 evaluations); the inversion costs N - k - 1 more, and `check_network` one.
    `bdia_encode` warns when latents are not noise-like (std outside [0.5, 2]).
    """
    net = guided(net, gnet, guidance)
    t_steps, gammas, stop = _encoding_settings(net, images, class_labels, num_steps=num_steps, sigma_min=sigma_min,
                                               sigma_max=sigma_max, rho=rho, sigmas=sigmas, gamma=gamma, base=base,
                                               strength=strength)
    if check_network:
        net = exact_network(net, images)
    return _encoding(net, images, stop, t_steps, gammas, gamma, class_labels=class_labels, base=base,
                     keep_trajectory=keep_trajectory, callback=callback)


def bdia_edit(net, images, class_labels, target_labels, *, strength=1.0, num_steps=18, sigma_min=0.002, sigma_max=80,
              rho=7, sigmas=None, gamma=DEFAULT_GAMMA, base=DEFAULT_BASE, keep_trajectory=False, callback=None,
              check_network=True, gnet=None, guidance=1):
    """Edit real images: encode them under `class_labels`, regenerate under `target_labels` (one-hot rows); returns
    an `EditResult` (edited float64 images; both halves of the run).

    strength=1 inverts all the way to the latents; `strength` < 1 inverts only the last ceil(strength N) steps and
    regenerates from there (SDEdit-style: the start noise level t_k, k = N - ceil(strength N), sets how much of the
    image can change; strength <= 1/N changes nothing). With target_labels equal to class_labels the images come
    back to float64 rounding. Network evaluations: the encoding's (see `bdia_encode`) and N - k - 1 to regenerate,
    times two on the Heun base. `callback` sees both halves.
    """
    net = guided(net, gnet, guidance)
    t_steps, gammas, stop = _encoding_settings(net, images, class_labels, num_steps=num_steps, sigma_min=sigma_min,
                                               sigma_max=sigma_max, rho=rho, sigmas=sigmas, gamma=gamma, base=base,
                                               strength=strength)
    try:
        check_class_labels(net, target_labels, images.shape[0])
    except ArgumentError as error:
        raise ArgumentError('target_labels', error.problem) from None
    if check_network:
        net = exact_network(net, images)
    inversion = _encoding(net, images, stop, t_steps, gammas, gamma, class_labels=class_labels, base=base,
                          keep_trajectory=keep_trajectory, callback=callback)
    start = inversion.pair
    warn_if_unstable(t_steps, gammas, gamma, base, first=stop)
    states = [start.x, start.x_next] if keep_trajectory else None
    final = sample_steps(net, start.x, start.x_next, stop + 1, t_steps, class_labels=target_labels, base=base,
                         gammas=gammas, callback=callback, states=states)
    regeneration = SampleResult(final.x_next, final._replace(run=start.run),
                                trajectory(t_steps, stop, states) if keep_trajectory else None)
    return EditResult(final.x_next, inversion, regeneration)
