"""The residual UNet block shared by SongUNet and DhariwalUNet (docs/networks.md, 'UNetBlock')."""

import torch
from torch.nn.functional import silu
from torch_utils import persistence

from edm_bdia.networks.attention import AttentionOp
from edm_bdia.networks.layers import Conv2d, GroupNorm, Linear


@persistence.persistent_class
class UNetBlock(torch.nn.Module):
    """GroupNorm-SiLU-Conv residual block with an embedding-driven scale/shift and optional self-attention.

    `init`, `init_zero` and `init_attn` are keyword dicts for the layers' initialisation only.
    """

    def __init__(self, in_channels, out_channels, emb_channels, up=False, down=False, attention=False,
                 num_heads=None, channels_per_head=64, dropout=0, skip_scale=1, eps=1e-5, resample_filter=(1, 1),
                 resample_proj=False, adaptive_scale=True, init=None, init_zero=None, init_attn=None):
        super().__init__()
        init = {} if init is None else init
        init_zero = dict(init_weight=0) if init_zero is None else init_zero
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.emb_channels = emb_channels
        # Attention heads; 0 (no attention at all) when out_channels < channels_per_head (docs/networks.md, 'Heads
        # vanish below 64 channels').
        self.num_heads = (0 if not attention else num_heads if num_heads is not None
                          else out_channels // channels_per_head)
        self.dropout = dropout
        self.skip_scale = skip_scale
        self.adaptive_scale = adaptive_scale

        self.norm0 = GroupNorm(num_channels=in_channels, eps=eps)
        self.conv0 = Conv2d(in_channels, out_channels, kernel=3, up=up, down=down, resample_filter=resample_filter,
                            **init)
        self.affine = Linear(emb_channels, out_channels * (2 if adaptive_scale else 1), **init)
        self.norm1 = GroupNorm(num_channels=out_channels, eps=eps)
        self.conv1 = Conv2d(out_channels, out_channels, kernel=3, **init_zero)
        self.skip = None
        if out_channels != in_channels or up or down:
            kernel = 1 if resample_proj or out_channels != in_channels else 0
            self.skip = Conv2d(in_channels, out_channels, kernel=kernel, up=up, down=down,
                               resample_filter=resample_filter, **init)
        if self.num_heads:
            self.norm2 = GroupNorm(num_channels=out_channels, eps=eps)
            self.qkv = Conv2d(out_channels, out_channels * 3, kernel=1,
                              **(init_attn if init_attn is not None else init))
            self.proj = Conv2d(out_channels, out_channels, kernel=1, **init_zero)

    def forward(self, x, emb):
        orig = x
        x = self.conv0(silu(self.norm0(x)))

        params = self.affine(emb).unsqueeze(2).unsqueeze(3).to(x.dtype)  # [N_emb, K, 1, 1]
        if self.adaptive_scale:
            scale, shift = params.chunk(chunks=2, dim=1)
            # One rounding (docs/networks.md, 'Adaptive scale with one rounding').
            x = silu(torch.addcmul(shift, self.norm1(x), scale + 1))
        else:
            x = silu(self.norm1(x.add_(params)))

        x = self.conv1(torch.nn.functional.dropout(x, p=self.dropout, training=self.training))
        x = x.add_(self.skip(orig) if self.skip is not None else orig)
        # Multiply by the stored scalar, never divide by √2 (docs/networks.md, 'Block output scaled by
        # multiplication').
        x = x * self.skip_scale

        if self.num_heads:
            # qkv channels are interleaved per channel: 3·(head·c_h + c) + {0: q, 1: k, 2: v} (docs/networks.md,
            # 'Interleaved q, k, v channels').
            q, k, v = self.qkv(self.norm2(x)).reshape(x.shape[0] * self.num_heads, x.shape[1] // self.num_heads, 3,
                                                      -1).unbind(2)
            w = AttentionOp.apply(q, k)
            a = torch.einsum('nqk,nck->ncq', w, v)
            x = self.proj(a.reshape(*x.shape)).add_(x)
            x = x * self.skip_scale
        return x
