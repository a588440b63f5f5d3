"""The EDM2 UNet's residual block with optional self-attention (docs/networks.md, 'EDM2 Block')."""

import math

import numpy as np
import torch
from torch_utils import persistence

from edm_bdia.networks.mp_layers import MPConv, mp_silu, mp_sum, normalize

RESAMPLE_MODES = ('keep', 'up', 'down')
FLAVORS = ('enc', 'dec')


def resample(x, taps, mode):
    """2× resampling of x by the separable filter with 1-D `taps` ('down': depthwise convolution with stride 2;
    'up': depthwise transposed convolution with 4× the filter, stride 2; 'keep': x itself). The 2-D filter is
    outer(f, f) with f = taps / sum(taps), computed in float32 and cast to x's dtype."""
    if mode == 'keep':
        return x
    f = np.float32(taps)
    f = f / f.sum()
    pad = (len(f) - 1) // 2
    channels = x.shape[1]
    if mode == 'up' and len(f) == 2 and f[0] == f[1]:
        # the box filter's transposed convolution gives each output pixel one product x·1: a copy
        return torch.nn.functional.interpolate(x, scale_factor=2, mode='nearest')
    kernel = torch.as_tensor(np.outer(f, f), dtype=x.dtype, device=x.device)[None, None].tile([channels, 1, 1, 1])
    if mode == 'down':
        return torch.nn.functional.conv2d(x, kernel, groups=channels, stride=2, padding=(pad,))
    return torch.nn.functional.conv_transpose2d(x, kernel * 4, groups=channels, stride=2, padding=(pad,))


@persistence.persistent_class
class Block(torch.nn.Module):
    """One encoder ('enc') or decoder ('dec') block: resampling, a magnitude-preserving residual branch modulated
    by the embedding, optional multi-head self-attention, activations clipped to ±clip_act."""

    def __init__(self, in_channels, out_channels, emb_channels, flavor='enc', resample_mode='keep',
                 resample_filter=(1, 1), attention=False, channels_per_head=64, dropout=0, res_balance=0.3,
                 attn_balance=0.3, clip_act=256):
        if flavor not in FLAVORS:
            raise ValueError(f'flavor={flavor!r} is not supported; use one of {", ".join(FLAVORS)}')
        if resample_mode not in RESAMPLE_MODES:
            raise ValueError(f'resample_mode={resample_mode!r} is not supported; use one of '
                             f'{", ".join(RESAMPLE_MODES)}')
        super().__init__()
        self.out_channels = out_channels
        self.flavor = flavor
        self.resample_filter = resample_filter
        self.resample_mode = resample_mode
        self.num_heads = out_channels // channels_per_head if attention else 0
        self.dropout = dropout
        self.res_balance = res_balance
        self.attn_balance = attn_balance
        self.clip_act = clip_act
        self.emb_gain = torch.nn.Parameter(torch.zeros([]))
        # the encoder flavour projects the skip path first, so its residual branch starts at out_channels
        self.conv_res0 = MPConv(out_channels if flavor == 'enc' else in_channels, out_channels, kernel=[3, 3])
        self.emb_linear = MPConv(emb_channels, out_channels, kernel=[])
        self.conv_res1 = MPConv(out_channels, out_channels, kernel=[3, 3])
        self.conv_skip = MPConv(in_channels, out_channels, kernel=[1, 1]) if in_channels != out_channels else None
        self.attn_qkv = MPConv(out_channels, out_channels * 3, kernel=[1, 1]) if self.num_heads else None
        self.attn_proj = MPConv(out_channels, out_channels, kernel=[1, 1]) if self.num_heads else None

    def forward(self, x, emb):
        x = resample(x, self.resample_filter, self.resample_mode)
        if self.flavor == 'enc':
            if self.conv_skip is not None:
                x = self.conv_skip(x)
            x = normalize(x, dim=1)  # pixel norm

        y = self.conv_res0(mp_silu(x))
        modulation = self.emb_linear(emb, gain=self.emb_gain) + 1
        y = mp_silu(y * modulation[:, :, None, None].to(y.dtype))
        if self.training and self.dropout:
            y = torch.nn.functional.dropout(y, p=self.dropout)
        y = self.conv_res1(y)

        if self.flavor == 'dec' and self.conv_skip is not None:
            x = self.conv_skip(x)
        x = mp_sum(x, y, t=self.res_balance)

        if self.num_heads:
            x = mp_sum(x, self._attention(x), t=self.attn_balance)
        if self.clip_act is not None:
            x = x.clip_(-self.clip_act, self.clip_act)
        return x

    def _attention(self, x):
        """Multi-head self-attention over the H·W positions, q, k and v pixel-normalised per head. The qkv channels
        are grouped per head as [channel, (q, k, v)] (docs/networks.md, 'EDM2 Block')."""
        qkv = self.attn_qkv(x)
        qkv = qkv.reshape(qkv.shape[0], self.num_heads, -1, 3, qkv.shape[2] * qkv.shape[3])
        q, k, v = normalize(qkv, dim=2).unbind(3)
        weights = torch.einsum('nhcq,nhck->nhqk', q, k / math.sqrt(q.shape[2])).softmax(dim=3)
        attended = torch.einsum('nhqk,nhck->nhcq', weights, v)
        return self.attn_proj(attended.reshape(*x.shape))
