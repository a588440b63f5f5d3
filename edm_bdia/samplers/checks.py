"""Input checks shared by the samplers: each failure is one ValueError that names the argument and the fix."""

import numbers

import torch


def check_num_steps(num_steps):
    if not isinstance(num_steps, numbers.Integral) or num_steps < 2:
        # With N = 1 the schedule divides by N - 1 = 0 and NVlabs silently writes black images.
        raise ValueError(f'num_steps must be an integer >= 2, got {num_steps!r}')


def check_latents(net, latents, name='latents'):
    if not torch.is_tensor(latents) or latents.ndim != 4:
        shape = tuple(latents.shape) if torch.is_tensor(latents) else type(latents).__name__
        raise ValueError(f'{name} must be a 4-D tensor [batch, channels, height, width], got {shape}')
    expected = tuple(getattr(net, attr, None) for attr in ('img_channels', 'img_resolution', 'img_resolution'))
    if None not in expected and tuple(latents.shape[1:]) != expected:
        raise ValueError(f'{name} have shape {tuple(latents.shape)}, but the network expects [batch, {expected[0]}, '
                         f'{expected[1]}, {expected[2]}]')


def check_class_labels(net, class_labels, batch_size):
    if class_labels is None:
        return
    label_dim = getattr(net, 'label_dim', None)
    if label_dim == 0:
        raise ValueError('class_labels were given, but the network is unconditional (label_dim = 0); pass None')
    if class_labels.ndim != 2 or class_labels.shape[0] not in (1, batch_size) or \
            (label_dim is not None and class_labels.shape[1] != label_dim):
        raise ValueError(f'class_labels have shape {tuple(class_labels.shape)}, expected [{batch_size}, '
                         f'{label_dim if label_dim is not None else "label_dim"}] (one-hot rows)')


def check_gamma_value(gamma, name='gamma'):
    if not 0 <= gamma <= 1:
        raise ValueError(f'{name} must lie in [0, 1], got {gamma!r}')
