"""Inputs for timing one denoiser call: noisy images at the noise levels the samplers visit."""

import torch

# Per-sample noise levels of the timed calls: the whole range the samplers visit.
SIGMAS = (80, 20, 5, 1, 0.3, 0.1, 0.02, 0.002)


def denoiser_inputs(net, batch, seed=0):
    """Noisy images at per-sample sigmas cycling through SIGMAS, float64 like the samplers' state."""
    gen = torch.Generator().manual_seed(seed)
    sigma = torch.tensor([SIGMAS[i % len(SIGMAS)] for i in range(batch)], dtype=torch.float64)
    x = torch.randn(batch, net.img_channels, net.img_resolution, net.img_resolution, generator=gen,
                    dtype=torch.float64) * (sigma ** 2 + 0.25).sqrt().reshape(-1, 1, 1, 1)
    labels = (torch.eye(net.label_dim)[torch.randint(net.label_dim, (batch,), generator=gen)]
              if net.label_dim else None)
    return x, sigma, labels
