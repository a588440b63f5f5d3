"""DhariwalUNet: the ADM architecture of Dhariwal & Nichol (2021) (docs/networks.md, 'ADM (DhariwalUNet)')."""

import numpy as np
import torch
from torch.nn.functional import silu
from torch_utils import persistence

from edm_bdia.networks.embeddings import PositionalEmbedding
from edm_bdia.networks.layers import Conv2d, GroupNorm, Linear
from edm_bdia.networks.unet_block import UNetBlock
from edm_bdia.networks.unet_common import (add_decoder_level, add_encoder_blocks, concat_skip, drop_class_labels,
                                            unet_levels)


@persistence.persistent_class
class DhariwalUNet(torch.nn.Module):
    """ADM UNet with adaptive scale/shift blocks and multi-head attention (64 channels per head).

    forward(x, noise_labels, class_labels, augment_labels=None) returns out_channels channels.
    """

    def __init__(self, img_resolution, in_channels, out_channels, label_dim=0, augment_dim=0,
                 model_channels=192, channel_mult=(1, 2, 3, 4), channel_mult_emb=4, num_blocks=3,
                 attn_resolutions=(32, 16, 8), dropout=0.10, label_dropout=0):
        super().__init__()
        self.label_dropout = label_dropout
        emb_channels = model_channels * channel_mult_emb
        init = dict(init_mode='kaiming_uniform', init_weight=np.sqrt(1 / 3), init_bias=np.sqrt(1 / 3))
        init_zero = dict(init_mode='kaiming_uniform', init_weight=0, init_bias=0)
        block_kwargs = dict(emb_channels=emb_channels, channels_per_head=64, dropout=dropout, init=init,
                            init_zero=init_zero)

        # Mapping layers; map_label is registered last (docs/networks.md, 'Registration order').
        self.map_noise = PositionalEmbedding(num_channels=model_channels)
        self.map_augment = Linear(augment_dim, model_channels, bias=False, **init_zero) if augment_dim else None
        self.map_layer0 = Linear(model_channels, emb_channels, **init)
        self.map_layer1 = Linear(emb_channels, emb_channels, **init)
        self.map_label = (Linear(label_dim, emb_channels, bias=False, init_mode='kaiming_normal',
                                 init_weight=np.sqrt(label_dim)) if label_dim else None)

        # Encoder.
        self.enc = torch.nn.ModuleDict()
        cout = in_channels
        for level, mult, res, prefix in unet_levels(img_resolution, channel_mult):
            if level == 0:
                cin, cout = cout, model_channels * mult
                self.enc[prefix + 'conv'] = Conv2d(cin, cout, kernel=3, **init)
            else:
                self.enc[prefix + 'down'] = UNetBlock(cout, cout, down=True, **block_kwargs)
            cout = add_encoder_blocks(self.enc, prefix, cout, model_channels * mult, num_blocks,
                                      res in attn_resolutions, block_kwargs)
        skips = [block.out_channels for block in self.enc.values()]

        # Decoder: at an attention resolution every block attends.
        self.dec = torch.nn.ModuleDict()
        for level, mult, res, prefix in reversed(unet_levels(img_resolution, channel_mult)):
            attention = res in attn_resolutions
            cout = add_decoder_level(self.dec, prefix, level == len(channel_mult) - 1, cout, skips,
                                     model_channels * mult, num_blocks, lambda idx: attention, block_kwargs)
        self.out_norm = GroupNorm(num_channels=cout)
        self.out_conv = Conv2d(cout, out_channels, kernel=3, **init_zero)

    def embed(self, noise_labels, class_labels, augment_labels, batch_size):
        """The embedding fed to every block: no [sin|cos] swap, labels unscaled."""
        emb = self.map_noise(noise_labels)
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels)
        emb = silu(self.map_layer0(emb))
        emb = self.map_layer1(emb)
        if self.map_label is not None:
            emb = emb + self.map_label(drop_class_labels(class_labels, self.label_dropout, self.training, batch_size))
        return silu(emb)

    def forward(self, x, noise_labels, class_labels, augment_labels=None):
        emb = self.embed(noise_labels, class_labels, augment_labels, x.shape[0])
        skips = []
        for name, block in self.enc.items():
            x = block(x) if name.endswith('_conv') else block(x, emb)
            skips.append(x)
        for block in self.dec.values():
            x = block(concat_skip(x, skips, block), emb)
        return self.out_conv(silu(self.out_norm(x)))
