"""Between a run's samples and its images: finite values checked before writing, and the quantisation of the
network's space to uint8 pixels (its snapshot's encoder, EDM2; NVlabs EDM's rule on the float64 state)."""

import torch

from edm_bdia.errors import ArgumentError
from edm_bdia.files.images import to_uint8


class NonFiniteImagesError(ValueError):
    """The sampler produced NaN or infinite values: nothing is written for those images."""


def check_finite(images, names):
    """NonFiniteImagesError naming the images (`names`, one per image) with NaN or infinite values."""
    finite = torch.isfinite(images.flatten(1)).all(dim=1)
    if not finite.all():
        bad = [name for name, ok in zip(names, finite.tolist()) if not ok]
        raise NonFiniteImagesError(f'sampling gave NaN or infinite values for {", ".join(map(str, bad[:10]))}'
                                   f'{" ..." if len(bad) > 10 else ""}; check the sampler settings (noise levels, '
                                   'S_noise, gamma) and the network')


def to_pixels(samples, encoder=None):
    """uint8 NCHW images of `samples`: decoded by `encoder` (an EDM2 snapshot's: the VAE for latent models), else
    NVlabs EDM's floor(127.5 x + 128) clipped to [0, 255] on the samples as they are (float64 for EDM)."""
    return to_uint8(samples) if encoder is None else encoder.decode(samples)


def check_pixels(net, encoder=None):
    """The network makes images a PNG can hold: 1 (grayscale) or 3 (RGB) channels, or anything its snapshot's
    `encoder` decodes."""
    if encoder is None and net.img_channels not in (1, 3):
        raise ArgumentError('network', f'makes {net.img_channels}-channel images; PNG output supports 1 (grayscale) '
                                       'or 3 (RGB) channels')
