"""The package's built-in offline model `toy-mixture-32x32-cond`: 10 classes of visually distinct 32x32 RGB patterns."""

import math

import numpy as np
import torch

from .mixture import GaussianMixtureDenoiser

TOY_MODEL_NAME = 'toy-mixture-32x32-cond'


def class_patterns(resolution):
    """Ten visually distinct pattern families p_c(u, v) in [-1, 1] on a [-1, 1]^2 grid, [10, H, W]."""
    coords = torch.linspace(-1, 1, resolution, dtype=torch.float64)
    v, u = torch.meshgrid(coords, coords, indexing='ij')
    r, theta = (u ** 2 + v ** 2).sqrt(), torch.atan2(v, u)
    return torch.stack([
        torch.sin(2.5 * math.pi * v),  # horizontal stripes
        torch.sin(2.5 * math.pi * u),  # vertical stripes
        torch.sin(2 * math.pi * (u + v)),  # diagonal stripes
        torch.tanh(4 * torch.sin(2 * math.pi * u) * torch.sin(2 * math.pi * v)),  # checkerboard
        torch.sin(4 * math.pi * r),  # rings
        torch.tanh(10 * (0.55 - r)),  # disc
        torch.tanh(10 * (0.22 - torch.minimum(u.abs(), v.abs()))),  # cross
        torch.sin(4 * theta),  # pinwheel
        torch.tanh(6 * torch.cos(3 * math.pi * u) * torch.cos(3 * math.pi * v) - 2),  # dots
        torch.tanh(10 * (0.7 - (u.abs() + v.abs()))),  # diamond
    ])


def two_colour_image(pattern, foreground, background):
    """A [3, H, W] image that blends two RGB colours by a pattern in [-1, 1] (1: foreground)."""
    mix = ((pattern + 1) / 2)[None]
    return background[:, None, None] + mix * (foreground - background)[:, None, None]


def toy_mixture_32x32_cond(device=None, seed=0, resolution=32, components_per_class=2, rank=4, pixel_std=0.05,
                           variation_std=0.12):
    """The built-in model: 10 classes x `components_per_class` Gaussians of 32x32 RGB patterns.

    Each class has a pattern family and two colours drawn from `seed`; its second component is the same pattern
    shifted by a quarter of the image. The low-rank factors vary brightness, the two colours and the pattern's phase.
    """
    rng = np.random.RandomState(seed)
    patterns = class_patterns(resolution)
    num_classes, channels = len(patterns), 3
    means, factors, component_class = [], [], []
    for c in range(num_classes):
        colours = torch.as_tensor(rng.uniform(-0.85, 0.85, size=(2, channels)), dtype=torch.float64)
        for j in range(components_per_class):
            p = torch.roll(patterns[c], shifts=(j * resolution // 4,) * 2, dims=(0, 1))
            mix = ((p + 1) / 2)[None]  # weight of the foreground colour, [1, H, W]
            mean = two_colour_image(p, colours[0], colours[1])
            directions = torch.stack([
                torch.ones_like(mean),  # brightness
                mix * torch.as_tensor(rng.normal(size=channels))[:, None, None],  # foreground colour
                (1 - mix) * torch.as_tensor(rng.normal(size=channels))[:, None, None],  # background colour
                (torch.roll(mean, (1, 1), dims=(1, 2)) - mean),  # phase (a one-pixel diagonal shift)
            ][:rank]).reshape(rank, -1)
            rms = directions.pow(2).mean(1, keepdim=True).sqrt()
            factors.append((directions / rms * variation_std).T)
            means.append(mean.reshape(-1))
            component_class.append(c)
    net = GaussianMixtureDenoiser(torch.stack(means), torch.stack(factors),
                                  torch.full((len(means),), pixel_std ** 2, dtype=torch.float64),
                                  component_class, num_classes, channels, resolution)
    return net.to(device) if device is not None else net
