"""The noise levels a sampler walks: EDM's schedule from (num_steps, sigma_min, sigma_max, rho), or explicit ones."""

import torch

from edm_bdia.errors import ArgumentError

from .schedules import karras_sigmas

SCHEDULE_DEFAULTS = dict(num_steps=18, sigma_min=0.002, sigma_max=80, rho=7)


def check_sigmas(sigmas):
    """An explicit schedule as a float64 tensor t_0 > ... > t_{N-1} > t_N = 0 (N >= 2), or one ValueError."""
    try:
        t = torch.as_tensor(sigmas, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ArgumentError('sigmas', f'must be a 1-D sequence of noise levels, got {type(sigmas).__name__}') from None
    if t.ndim != 1 or len(t) < 3:
        raise ArgumentError('sigmas', f'must be 1-D with at least 3 levels (t_0 > ... > t_N = 0, N >= 2 steps), '
                                      f'got shape {tuple(t.shape)}')
    if not torch.isfinite(t).all():
        raise ArgumentError('sigmas', 'must be finite (no NaN or inf)')
    if t[-1] != 0 or not (t[:-1] > 0).all():
        raise ArgumentError('sigmas', 'must end in 0 with every other level > 0 (the last step lands on the data, '
                                      't = 0)')
    if not (t[:-1] > t[1:]).all():
        raise ArgumentError('sigmas', 'must be strictly decreasing (from noise t_0 down to the data t_N = 0)')
    return t


def sampler_sigmas(net, device, sigmas=None, **schedule):
    """The float64 noise levels t_0 > ... > t_N = 0 of a sampler call.

    `sigmas=None`: EDM's schedule from `schedule` (num_steps, sigma_min, sigma_max, rho), clamped to and rounded
    by `net` as NVlabs does. Otherwise `sigmas` is used exactly as given (not rounded by `net.round_sigma`), and the
    schedule arguments must keep their defaults.
    """
    if sigmas is None:
        return karras_sigmas(net=net, device=device, **schedule)
    changed = [name for name, value in schedule.items() if value != SCHEDULE_DEFAULTS[name]]
    if changed:
        raise ArgumentError('sigmas', 'replaces `num_steps`, `sigma_min`, `sigma_max` and `rho`; drop '
                                      + ', '.join(f'`{name}`' for name in changed))
    return check_sigmas(sigmas).to(device)
