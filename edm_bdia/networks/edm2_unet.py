"""The EDM2 UNet (Karras et al. 2024, Fig. 21; docs/networks.md, 'EDM2 UNet'): magnitude-preserving throughout,
no normalisation layers, no biases."""

import math

import torch
from torch_utils import persistence

from edm_bdia.networks.edm2_block import Block
from edm_bdia.networks.mp_layers import MPConv, MPFourier, mp_cat, mp_silu, mp_sum
from edm_bdia.networks.unet_common import unet_levels


@persistence.persistent_class
class UNet(torch.nn.Module):
    """F(x; c_noise, labels) of EDM2. Keywords as NVlabs' (`block_kwargs` go to every Block). The noise embedding
    has model_channels·channel_mult_noise channels (default: the first level's width) and the block embedding
    model_channels·channel_mult_emb (default: the widest level's)."""

    def __init__(self, img_resolution, img_channels, label_dim, model_channels=192, channel_mult=(1, 2, 3, 4),
                 channel_mult_noise=None, channel_mult_emb=None, num_blocks=3, attn_resolutions=(16, 8),
                 label_balance=0.5, concat_balance=0.5, **block_kwargs):
        super().__init__()
        level_channels = [model_channels * mult for mult in channel_mult]
        noise_channels = model_channels * channel_mult_noise if channel_mult_noise is not None else level_channels[0]
        emb_channels = model_channels * channel_mult_emb if channel_mult_emb is not None else max(level_channels)
        self.label_balance = label_balance
        self.concat_balance = concat_balance
        self.out_gain = torch.nn.Parameter(torch.zeros([]))

        self.emb_fourier = MPFourier(noise_channels)
        self.emb_noise = MPConv(noise_channels, emb_channels, kernel=[])
        self.emb_label = MPConv(label_dim, emb_channels, kernel=[]) if label_dim else None

        # Encoder: level 0 starts with a 3×3 convolution of the image plus a constant channel, deeper levels with
        # a down-sampling block; every output is kept as a skip.
        self.enc = torch.nn.ModuleDict()
        cout = img_channels + 1
        for level, _, res, prefix in unet_levels(img_resolution, channel_mult):
            if level == 0:
                self.enc[prefix + 'conv'] = MPConv(cout, level_channels[0], kernel=[3, 3])
                cout = level_channels[0]
            else:
                self.enc[prefix + 'down'] = Block(cout, cout, emb_channels, flavor='enc', resample_mode='down',
                                                  **block_kwargs)
            for idx in range(num_blocks):
                self.enc[prefix + f'block{idx}'] = Block(cout, level_channels[level], emb_channels, flavor='enc',
                                                         attention=res in attn_resolutions, **block_kwargs)
                cout = level_channels[level]

        # Decoder: the deepest level starts with two blocks (the first attending), the others with an up-sampling
        # block; then num_blocks + 1 blocks, each taking one skip.
        self.dec = torch.nn.ModuleDict()
        skips = [layer.out_channels for layer in self.enc.values()]
        for level, _, res, prefix in reversed(unet_levels(img_resolution, channel_mult)):
            if level == len(channel_mult) - 1:
                self.dec[prefix + 'in0'] = Block(cout, cout, emb_channels, flavor='dec', attention=True,
                                                 **block_kwargs)
                self.dec[prefix + 'in1'] = Block(cout, cout, emb_channels, flavor='dec', **block_kwargs)
            else:
                self.dec[prefix + 'up'] = Block(cout, cout, emb_channels, flavor='dec', resample_mode='up',
                                                **block_kwargs)
            for idx in range(num_blocks + 1):
                self.dec[prefix + f'block{idx}'] = Block(cout + skips.pop(), level_channels[level], emb_channels,
                                                         flavor='dec', attention=res in attn_resolutions,
                                                         **block_kwargs)
                cout = level_channels[level]
        self.out_conv = MPConv(cout, img_channels, kernel=[3, 3])

    def forward(self, x, noise_labels, class_labels):
        emb = self.emb_noise(self.emb_fourier(noise_labels))
        if self.emb_label is not None:
            labels = class_labels * math.sqrt(class_labels.shape[1])
            emb = mp_sum(emb, self.emb_label(labels), t=self.label_balance)
        emb = mp_silu(emb)

        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        skips = []
        for name, layer in self.enc.items():
            # by name, not by class: a pickle's stored sources define their own classes (trusted loading)
            x = layer(x) if name.endswith('_conv') else layer(x, emb)
            skips.append(x)
        for name, block in self.dec.items():
            if 'block' in name:  # not the in0/in1/up blocks
                x = mp_cat(x, skips.pop(), t=self.concat_balance)
            x = block(x, emb)
        return self.out_conv(x, gain=self.out_gain)
