"""Noise-level embeddings (docs/networks.md, 'Noise-level embeddings'). Both return [cos | sin] of an outer product."""

import numpy as np
import torch
from torch_utils import persistence

from edm_bdia.networks.layers import scaled


@persistence.persistent_class
class PositionalEmbedding(torch.nn.Module):
    """Transformer-style sinusoidal embedding with frequencies (1/max_positions)^(i/den)."""

    def __init__(self, num_channels, max_positions=10000, endpoint=False):
        super().__init__()
        self.num_channels = num_channels
        self.max_positions = max_positions
        self.endpoint = endpoint

    def forward(self, x):
        half = self.num_channels // 2
        freqs = torch.arange(start=0, end=half, dtype=torch.float32, device=x.device)
        freqs = freqs / (half - (1 if self.endpoint else 0))
        # Scalar base ** tensor exponent, not exp(-ln(M)·i) (docs/networks.md, 'Positional frequencies as a power').
        freqs = (1 / self.max_positions) ** freqs
        return _cos_sin(torch.outer(x, freqs.to(x.dtype)))


@persistence.persistent_class
class FourierEmbedding(torch.nn.Module):
    """Random Fourier features cos/sin(2π·freqs·x) with freqs ~ N(0, scale²)."""

    def __init__(self, num_channels, scale=16):
        super().__init__()
        self.register_buffer('freqs', scaled(torch.randn(num_channels // 2), scale))

    def forward(self, x):
        # 2π multiplies the frequencies before the outer product (docs/networks.md, 'Fourier phases: 2π on the
        # frequencies').
        return _cos_sin(torch.outer(x, (2 * np.pi * self.freqs).to(x.dtype)))


def _cos_sin(phases):
    """[cos P | sin P] along dim 1."""
    return torch.cat([phases.cos(), phases.sin()], dim=1)
