"""SongUNet: the DDPM++ and NCSN++ architectures of Song et al. (2021).

docs/networks.md, 'DDPM++ and NCSN++ (SongUNet)', describes the layout and the forward pass.
"""

import numpy as np
import torch
from torch.nn.functional import silu
from torch_utils import persistence

from edm_bdia.networks.embeddings import FourierEmbedding, PositionalEmbedding
from edm_bdia.networks.layers import Conv2d, GroupNorm, Linear
from edm_bdia.networks.unet_block import UNetBlock
from edm_bdia.networks.unet_common import (add_decoder_level, add_encoder_blocks, concat_skip, drop_class_labels,
                                            unet_levels)

EMBEDDING_TYPES = ('positional', 'fourier')
ENCODER_TYPES = ('standard', 'skip', 'residual')
DECODER_TYPES = ('standard', 'skip')


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f'SongUNet: {name}={value!r} is not supported; use one of {", ".join(choices)}')


@persistence.persistent_class
class SongUNet(torch.nn.Module):
    """DDPM++ (positional / standard / standard) and NCSN++ (fourier / residual / standard) UNets.

    forward(x, noise_labels, class_labels, augment_labels=None) returns out_channels channels.
    """

    def __init__(self, img_resolution, in_channels, out_channels, label_dim=0, augment_dim=0,
                 model_channels=128, channel_mult=(1, 2, 2, 2), channel_mult_emb=4, num_blocks=4,
                 attn_resolutions=(16,), dropout=0.10, label_dropout=0, embedding_type='positional',
                 channel_mult_noise=1, encoder_type='standard', decoder_type='standard', resample_filter=(1, 1)):
        _check_choice('embedding_type', embedding_type, EMBEDDING_TYPES)
        _check_choice('encoder_type', encoder_type, ENCODER_TYPES)
        _check_choice('decoder_type', decoder_type, DECODER_TYPES)
        super().__init__()
        self.label_dropout = label_dropout
        emb_channels = model_channels * channel_mult_emb
        noise_channels = model_channels * channel_mult_noise
        init = dict(init_mode='xavier_uniform')
        init_zero = dict(init_mode='xavier_uniform', init_weight=1e-5)
        init_attn = dict(init_mode='xavier_uniform', init_weight=np.sqrt(0.2))
        block_kwargs = dict(emb_channels=emb_channels, num_heads=1, dropout=dropout, skip_scale=np.sqrt(0.5), eps=1e-6,
                            resample_filter=resample_filter, resample_proj=True, adaptive_scale=False,
                            init=init, init_zero=init_zero, init_attn=init_attn)

        # Mapping from noise level, class and augmentation labels to the embedding.
        self.map_noise = (PositionalEmbedding(num_channels=noise_channels, endpoint=True)
                          if embedding_type == 'positional' else FourierEmbedding(num_channels=noise_channels))
        self.map_label = Linear(label_dim, noise_channels, **init) if label_dim else None
        self.map_augment = Linear(augment_dim, noise_channels, bias=False, **init) if augment_dim else None
        self.map_layer0 = Linear(noise_channels, emb_channels, **init)
        self.map_layer1 = Linear(emb_channels, emb_channels, **init)

        # Encoder: cout tracks the main path, caux the auxiliary (input-image) path.
        self.enc = torch.nn.ModuleDict()
        cout = caux = in_channels
        for level, mult, res, prefix in unet_levels(img_resolution, channel_mult):
            if level == 0:
                # Ignores channel_mult[0] (docs/networks.md, 'SongUNet level-0 width').
                self.enc[prefix + 'conv'] = Conv2d(cout, model_channels, kernel=3, **init)
                cout = model_channels
            else:
                self.enc[prefix + 'down'] = UNetBlock(cout, cout, down=True, **block_kwargs)
                if encoder_type == 'skip':
                    self.enc[prefix + 'aux_down'] = Conv2d(caux, caux, kernel=0, down=True,
                                                           resample_filter=resample_filter)
                    self.enc[prefix + 'aux_skip'] = Conv2d(caux, cout, kernel=1, **init)
                if encoder_type == 'residual':
                    self.enc[prefix + 'aux_residual'] = Conv2d(caux, cout, kernel=3, down=True,
                                                               resample_filter=resample_filter, fused_resample=True,
                                                               **init)
                    caux = cout
            cout = add_encoder_blocks(self.enc, prefix, cout, model_channels * mult, num_blocks,
                                      res in attn_resolutions, block_kwargs)
        skips = [block.out_channels for name, block in self.enc.items() if 'aux' not in name]

        # Decoder: num_blocks + 1 blocks per level, each consuming one skip; output heads per decoder_type.
        self.dec = torch.nn.ModuleDict()
        for level, mult, res, prefix in reversed(unet_levels(img_resolution, channel_mult)):
            attention = res in attn_resolutions
            cout = add_decoder_level(self.dec, prefix, level == len(channel_mult) - 1, cout, skips,
                                     model_channels * mult, num_blocks,
                                     lambda idx: attention and idx == num_blocks,  # the level's last block only
                                     block_kwargs)
            if decoder_type == 'skip' or level == 0:
                if decoder_type == 'skip' and level < len(channel_mult) - 1:
                    self.dec[prefix + 'aux_up'] = Conv2d(out_channels, out_channels, kernel=0, up=True,
                                                         resample_filter=resample_filter)
                self.dec[prefix + 'aux_norm'] = GroupNorm(num_channels=cout, eps=1e-6)
                self.dec[prefix + 'aux_conv'] = Conv2d(cout, out_channels, kernel=3, **init_zero)

    def embed(self, noise_labels, class_labels, augment_labels, batch_size):
        """The embedding fed to every block."""
        emb = self.map_noise(noise_labels)
        # [cos | sin] -> [sin | cos] (docs/networks.md, 'SongUNet embedding halves swapped').
        emb = emb.reshape(emb.shape[0], 2, -1).flip(1).reshape(*emb.shape)
        if self.map_label is not None:
            labels = drop_class_labels(class_labels, self.label_dropout, self.training, batch_size)
            emb = emb + self.map_label(labels * np.sqrt(self.map_label.in_features))  # labels scaled by √label_dim
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels)
        emb = silu(self.map_layer0(emb))
        return silu(self.map_layer1(emb))

    def forward(self, x, noise_labels, class_labels, augment_labels=None):
        emb = self.embed(noise_labels, class_labels, augment_labels, x.shape[0])

        # Encoder; entries are dispatched on their key.
        skips = []
        aux = x
        for name, block in self.enc.items():
            if 'aux_down' in name:
                aux = block(aux)
            elif 'aux_skip' in name:
                x = skips[-1] = x + block(aux)
            elif 'aux_residual' in name:
                # Divide by √2, not × √0.5 (docs/networks.md, 'Residual encoder divides by √2').
                x = skips[-1] = aux = (x + block(aux)) / np.sqrt(2)
            elif name.endswith('_conv'):
                x = block(x)
                skips.append(x)
            else:
                x = block(x, emb)
                skips.append(x)

        # Decoder: the output is the sum of the aux_conv heads.
        aux = None
        tmp = None
        for name, block in self.dec.items():
            if 'aux_up' in name:
                aux = block(aux)
            elif 'aux_norm' in name:
                tmp = block(x)
            elif 'aux_conv' in name:
                tmp = block(silu(tmp))
                aux = tmp if aux is None else tmp + aux
            else:
                x = block(concat_skip(x, skips, block), emb)
        return aux
