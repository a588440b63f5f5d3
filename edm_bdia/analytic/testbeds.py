"""Harder analytic testbeds for solver studies: a sharp high-dimensional mixture and a 2-D grid of modes."""

import numpy as np
import torch

from .mixture import GaussianMixtureDenoiser
from .toy_model import class_patterns, two_colour_image


def sharp_mixture(num_classes=10, components_per_class=10, resolution=32, pixel_std=0.01, seed=0, device=None):
    """`num_classes` x `components_per_class` near-point masses in 3 x H x H: N(m_k, pixel_std^2 I), no other variation.

    Class c uses pattern family c of the built-in model (c mod 10); each component draws its own two colours and a
    random cyclic shift, so components of one class look alike and sit far apart in pixel space. The tiny per-pixel
    std makes D(x; sigma) switch abruptly between components at small sigma: a stiff test for few-step solvers.
    """
    rng = np.random.RandomState(seed)
    patterns = class_patterns(resolution)
    means, component_class = [], []
    for c in range(num_classes):
        for _ in range(components_per_class):
            colours = torch.as_tensor(rng.uniform(-0.9, 0.9, size=(2, 3)), dtype=torch.float64)
            shift = tuple(int(s) for s in rng.randint(resolution, size=2))
            pattern = torch.roll(patterns[c % len(patterns)], shifts=shift, dims=(0, 1))
            means.append(two_colour_image(pattern, colours[0], colours[1]).reshape(-1))
            component_class.append(c)
    count = len(means)
    net = GaussianMixtureDenoiser(torch.stack(means), torch.zeros(count, 3 * resolution ** 2, 0, dtype=torch.float64),
                                  torch.full((count,), pixel_std ** 2, dtype=torch.float64), component_class,
                                  num_classes, 3, resolution)
    return net.to(device) if device is not None else net


def grid_mixture_2d(modes_per_side=5, spacing=0.5, std=0.02, device=None):
    """A 2-D grid of modes_per_side^2 isotropic Gaussians N(m_k, std^2 I), centred on 0, one class per grid row.

    Points are [B, 2, 1, 1] tensors (2 channels, 1 x 1 pixels), so the samplers run on it unchanged.
    """
    offsets = (torch.arange(modes_per_side, dtype=torch.float64) - (modes_per_side - 1) / 2) * spacing
    rows, cols = torch.meshgrid(offsets, offsets, indexing='ij')
    means = torch.stack([cols.reshape(-1), rows.reshape(-1)], dim=1)  # (x, y); row index = class
    component_class = torch.arange(modes_per_side).repeat_interleave(modes_per_side)
    count = len(means)
    net = GaussianMixtureDenoiser(means, torch.zeros(count, 2, 0, dtype=torch.float64),
                                  torch.full((count,), std ** 2, dtype=torch.float64), component_class,
                                  modes_per_side, 2, 1)
    return net.to(device) if device is not None else net
