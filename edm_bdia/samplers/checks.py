"""Input checks shared by the samplers: each failure is one ArgumentError (a ValueError) that names the argument
and the fix. Settings (numbers, names) are checked without importing torch, so that a command line refuses bad
settings before torch loads; only the checks of tensors import it."""

import math
import numbers
import warnings

from edm_bdia.errors import ArgumentError, ArgumentWarning


def check_num_steps(num_steps):
    if not isinstance(num_steps, numbers.Integral) or num_steps < 2:
        # With N = 1 the schedule divides by N - 1 = 0 and NVlabs silently writes black images.
        raise ArgumentError('num_steps', f'must be an integer >= 2, got {num_steps!r}')


NETWORK_ATTRIBUTES = ('img_channels', 'img_resolution', 'label_dim')


def check_network(net):
    """A denoiser with the NVlabs interface: callable as net(x, sigma, class_labels), with its image shape and
    number of classes."""
    missing = [attr for attr in NETWORK_ATTRIBUTES if not hasattr(net, attr)]
    if not callable(net) or missing:
        raise ArgumentError('net', f'must be a denoiser with the NVlabs interface (callable, with '
                                   f'{", ".join(NETWORK_ATTRIBUTES)}), got {type(net).__name__}'
                                   + (f' without {", ".join(missing)}' if missing and callable(net) else ''))


MANY_STEPS = 1024  # beyond the papers' settings (EDM: 18-256 steps; iDDPM's schedule has 1000 levels)


def warn_if_many_steps(num_steps):
    """One warning for a step count far beyond any published setting: it costs num_steps network calls per image
    (two per step on Heun) and is more often a typo than a plan."""
    if num_steps > MANY_STEPS:
        warnings.warn(ArgumentWarning(f'`num_steps` {num_steps} is far beyond the published settings (18-256 steps); '
                                      f'each image costs up to {2 * num_steps - 1} network evaluations'), stacklevel=3)


def check_latents(net, latents, name='latents'):
    """A non-empty finite float tensor [batch, channels, height, width] of the network's image shape (and `net` a
    network)."""
    import torch
    check_network(net)
    if not torch.is_tensor(latents) or latents.ndim != 4:
        shape = tuple(latents.shape) if torch.is_tensor(latents) else type(latents).__name__
        raise ArgumentError(name, f'must be a 4-D tensor [batch, channels, height, width], got {shape}')
    if latents.device.type == 'meta' or not latents.dtype.is_floating_point or latents.shape[0] == 0:
        raise ArgumentError(name, f'must be a float tensor with values and at least one sample, got {latents.dtype} '
                                  f'{tuple(latents.shape)} on {latents.device}')
    expected = tuple(getattr(net, attr, None) for attr in ('img_channels', 'img_resolution', 'img_resolution'))
    if None not in expected and tuple(latents.shape[1:]) != expected:
        raise ArgumentError(name, f'have shape {tuple(latents.shape)}, but the network expects [batch, {expected[0]}, '
                                  f'{expected[1]}, {expected[2]}]')
    if not torch.isfinite(latents).all():
        raise ArgumentError(name, f'contain NaN or infinite values ({int((~torch.isfinite(latents)).sum())} of '
                                  f'{latents.numel()}); pass finite values')


def check_class_labels(net, class_labels, batch_size):
    import torch
    if class_labels is None:
        return
    if not torch.is_tensor(class_labels):
        raise ArgumentError('class_labels', f'must be a tensor [batch, label_dim] of one-hot rows (or None), got '
                                            f'{type(class_labels).__name__}')
    label_dim = getattr(net, 'label_dim', None)
    if label_dim == 0:
        raise ArgumentError('class_labels', 'were given, but the network is unconditional (label_dim = 0); pass None')
    if class_labels.ndim != 2 or class_labels.shape[0] not in (1, batch_size) or \
            (label_dim is not None and class_labels.shape[1] != label_dim):
        raise ArgumentError('class_labels', f'have shape {tuple(class_labels.shape)}, expected [{batch_size}, '
                                            f'{label_dim if label_dim is not None else "label_dim"}] (one-hot rows)')


def check_choice(value, name, choices):
    """One of a few named options (solver, discretization, schedule, scaling)."""
    if value not in choices:
        raise ArgumentError(name, f"must be one of {', '.join(choices)}, not {value!r}")


def check_gamma_value(gamma, name='gamma'):
    if not 0 <= gamma <= 1:
        raise ArgumentError(name, f'must lie in [0, 1], got {gamma!r}')


def _as_real(value, name):
    """`value` as a Python float for checking (the caller keeps the original object and its arithmetic)."""
    if isinstance(value, numbers.Real):
        return float(value)
    import torch
    if torch.is_tensor(value) and value.numel() == 1:
        return float(value)
    raise ArgumentError(name, f'must be a real number, got {value!r}')


def check_positive(value, name):
    """A finite number > 0 (noise levels, rho, Heun's alpha)."""
    number = _as_real(value, name)
    if not (math.isfinite(number) and number > 0):
        raise ArgumentError(name, f'must be a finite number > 0, got {value!r}')


def check_nonnegative(value, name, allow_inf=True):
    """A number >= 0, not NaN; +inf only where it has a meaning (S_churn, S_min, S_max)."""
    number = _as_real(value, name)
    if math.isnan(number) or number < 0 or (math.isinf(number) and not allow_inf):
        limit = 'a number >= 0 (inf allowed)' if allow_inf else 'a finite number >= 0'
        raise ArgumentError(name, f'must be {limit}, got {value!r}')


def check_sigma_range(sigma_min, sigma_max, defaulted=(), discretization=None):
    """Both noise levels finite and positive, sigma_min below sigma_max.

    `defaulted` names the ones that came from `discretization`'s defaults, for the message.
    """
    check_positive(sigma_min, 'sigma_min')
    check_positive(sigma_max, 'sigma_max')
    if not sigma_min < sigma_max:
        origin = f" ({' and '.join(defaulted)}: the {discretization} discretization's default)" if defaulted else ''
        raise ArgumentError('sigma_min', f'({sigma_min!r}) must be below `sigma_max` ({sigma_max!r}){origin}; '
                                         'change or swap them')


def check_network_sigma_range(sigma_min, sigma_max, net, requested):
    """The range left after clamping to [net.sigma_min, net.sigma_max] must not be empty.

    `requested` is the (sigma_min, sigma_max) before clamping, named in the message.
    """
    if not sigma_min < sigma_max:
        raise ArgumentError('sigma_min', f'and `sigma_max` {list(requested)} clamped to the network\'s noise range '
                                         f'[{net.sigma_min!r}, {net.sigma_max!r}] leave nothing ({sigma_min!r} >= '
                                         f'{sigma_max!r}); pick values that overlap the network\'s range')


def check_churn(S_churn, S_min, S_max, S_noise):
    """EDM Algorithm 2's churn settings: S_churn, S_min, S_max >= 0 (inf allowed), S_noise finite >= 0."""
    check_nonnegative(S_churn, 'S_churn')
    check_nonnegative(S_min, 'S_min')
    check_nonnegative(S_max, 'S_max')
    check_nonnegative(S_noise, 'S_noise', allow_inf=False)


def check_open_unit_interval(value, name):
    """A number strictly between 0 and 1 (the VP schedule's epsilon_s)."""
    number = _as_real(value, name)
    if not 0 < number < 1:
        raise ArgumentError(name, f'must lie strictly between 0 and 1, got {value!r}')


def check_positive_integer(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ArgumentError(name, f'must be an integer >= 1, got {value!r}')
