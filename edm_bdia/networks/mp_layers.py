"""Magnitude-preserving layers of the EDM2 networks (Karras et al. 2024; docs/networks.md, 'EDM2 layers').

`normalize`, `mp_silu`, `mp_sum` and `mp_cat` are plain functions; `MPFourier` (noise-level features) and `MPConv`
(a linear or 2-D convolution layer whose weight is normalised to unit magnitude on every call) are persistent
modules with NVlabs' constructor keywords, parameter and buffer names. The arithmetic follows the reference
operation by operation where two equal formulas round differently (docs/networks.md, 'EDM2 bit-exactness details').
"""

import math

import numpy as np
import torch
from torch_utils import persistence

from edm_bdia.networks.layers import scaled

NORM_EPS = 1e-4
SILU_GAIN = 0.596  # E[silu(x)^2]^(1/2) for x ~ N(0, 1): mp_silu divides by it


def normalize(x, dim=None, eps=NORM_EPS):
    """x / (eps + ||x|| · sqrt(norm size / x size)) over `dim` (default: every dimension but the first), with the
    norm taken in float32 and cast back to x's dtype. Rows then have unit root-mean-square magnitude."""
    if dim is None:
        dim = list(range(1, x.ndim))
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True, dtype=torch.float32)
    # one fused eps + alpha·norm, as the reference (docs/networks.md, 'EDM2 bit-exactness details')
    norm = torch.add(eps, norm, alpha=math.sqrt(norm.numel() / x.numel()))
    return x / norm.to(x.dtype)


def mp_silu(x):
    """SiLU scaled back to unit magnitude for unit-normal input (paper Eq. 81)."""
    return torch.nn.functional.silu(x) / SILU_GAIN


def mp_sum(a, b, t=0.5):
    """(1 − t)·a + t·b through torch's lerp, divided by its magnitude for uncorrelated unit inputs (Eq. 88)."""
    return a.lerp(b, t) / math.sqrt((1 - t) ** 2 + t ** 2)


def mp_cat(a, b, dim=1, t=0.5):
    """Concatenation of a and b along `dim`, weighted so that the parts contribute (1 − t) and t of the result's
    magnitude whatever their sizes (Eq. 103)."""
    size_a, size_b = a.shape[dim], b.shape[dim]
    total = math.sqrt((size_a + size_b) / ((1 - t) ** 2 + t ** 2))
    return torch.cat([total / math.sqrt(size_a) * (1 - t) * a, total / math.sqrt(size_b) * t * b], dim=dim)


@persistence.persistent_class
class MPFourier(torch.nn.Module):
    """Fourier features √2·cos(x·freqs + phases) of a vector of noise labels x [N] -> [N, num_channels] (Eq. 75),
    computed in float32 and returned in x's dtype. Buffers `freqs` (2π·N(0, bandwidth²)) and `phases` (2π·U(0, 1))."""

    def __init__(self, num_channels, bandwidth=1):
        super().__init__()
        self.register_buffer('freqs', scaled(scaled(torch.randn(num_channels), 2 * np.pi), bandwidth))
        self.register_buffer('phases', scaled(torch.rand(num_channels), 2 * np.pi))

    def forward(self, x):
        phases = x.to(torch.float32).outer(self.freqs.to(torch.float32)) + self.phases.to(torch.float32)
        return (phases.cos() * math.sqrt(2)).to(x.dtype)


@persistence.persistent_class
class MPConv(torch.nn.Module):
    """Magnitude-preserving linear layer (a kernel of [], weight [out, in]) or 2-D convolution with 'same' padding
    (kernel [k, k], weight [out, in, k, k]) (Eq. 47).

    Every call uses the weight normalised to unit magnitude per output channel, times gain / sqrt(fan_in), in
    float32 and then cast to the input's dtype (Eq. 66). In training mode the call also writes the normalised weight
    back into the parameter (forced weight normalisation). `freeze_normalization()` keeps the scaled weight of the
    last call for as long as the weight, the gain and the dtype stay the same (docs/networks.md, 'Weight
    normalisation once per frozen network').
    """

    _frozen = False           # whether calls may reuse `_frozen_weight` (set by freeze_normalization)
    _frozen_weight = None     # (key, scaled weight) of the last call while frozen

    def __init__(self, in_channels, out_channels, kernel):
        super().__init__()
        self.out_channels = out_channels
        self.weight = torch.nn.Parameter(torch.randn(out_channels, in_channels, *kernel))

    def forward(self, x, gain=1):
        w = self.scaled_weight(gain, x.dtype)
        if w.ndim == 2:
            return x @ w.t()
        return torch.nn.functional.conv2d(x, w, padding=(w.shape[-1] // 2,))

    def scaled_weight(self, gain, dtype):
        """normalize(weight) · gain / sqrt(fan_in) in `dtype`, reused from the last call when frozen and valid."""
        if self.training:
            w = self.weight.to(torch.float32)  # an alias of an fp32 weight: the write below shows through it
            with torch.no_grad():
                self.weight.copy_(normalize(w))
            return _scale(w, gain, dtype)
        if not self._frozen or (torch.is_grad_enabled() and self.weight.requires_grad):
            return _scale(self.weight.to(torch.float32), gain, dtype)
        key = self._cache_key(gain, dtype)
        if self._frozen_weight is None or not _same_key(self._frozen_weight[0], key):
            self._frozen_weight = (key, _scale(self.weight.to(torch.float32), gain, dtype))
        return self._frozen_weight[1]

    def _cache_key(self, gain, dtype):
        """What the scaled weight depends on: the weight tensor (identity, storage, in-place version), the gain
        (a tensor by identity and version, or a number) and the dtype."""
        weight = self.weight
        gain_version = gain._version if torch.is_tensor(gain) else None
        gain = gain if torch.is_tensor(gain) else float(gain)
        return (weight, weight._version, weight.data_ptr(), weight.device, weight.dtype, gain, gain_version, dtype)

    def freeze_normalization(self, frozen=True):
        """Reuse the scaled weight across calls (True) or recompute it on every call (False, the default)."""
        self._frozen = bool(frozen)
        self._frozen_weight = None

    def train(self, mode=True):
        if mode:
            self.freeze_normalization(False)  # training changes the weights on every step
        return super().train(mode)

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop('_frozen', None)
        state.pop('_frozen_weight', None)  # never pickled or deep-copied: a cache, not part of the network
        return state


def _scale(w, gain, dtype):
    """normalize(w) · (gain / sqrt(fan_in)), cast to dtype; w is float32. A tensor gain (a parameter, fp16 in the
    published pickles) forms gain / sqrt(fan_in) in its own dtype first, as the reference does."""
    w = normalize(w)
    return (w * (gain / math.sqrt(w[0].numel()))).to(dtype)


def _same_key(a, b):
    """Cache keys equal element by element, tensors compared by identity (never by value)."""
    return len(a) == len(b) and all(x is y if torch.is_tensor(x) else x == y for x, y in zip(a, b))


def freeze_weight_normalization(module, frozen=True):
    """Call `freeze_normalization(frozen)` on every MPConv inside `module`; returns how many there are."""
    layers = [layer for layer in module.modules() if isinstance(layer, MPConv)]
    for layer in layers:
        layer.freeze_normalization(frozen)
    return len(layers)
