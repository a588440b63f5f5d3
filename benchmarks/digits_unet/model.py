"""The network: EDM preconditioning around a DDPM++ SongUNet (this package's classes), 1.26 M parameters.

DDPM++ is the 'positional' noise embedding with 'standard' encoder and decoder (NVlabs' ddpmpp configuration), here
at 32 base channels, levels 16x16, 8x8, 4x4 (channel multipliers 1, 2, 2), one residual block per level and
self-attention at 8x8; dropout 0.1 against memorizing 1437 training digits.
"""

import torch

from edm_bdia.networks import EDMPrecond

from .data import RESOLUTION

PRESET = f'digits-{RESOLUTION}x{RESOLUTION}-cond'  # the name it ships under
NETWORK = dict(img_resolution=RESOLUTION, img_channels=1, label_dim=10, sigma_data=0.5, model_type='SongUNet',
               model_channels=32, channel_mult=[1, 2, 2], channel_mult_emb=4, num_blocks=1, attn_resolutions=[8],
               dropout=0.1, embedding_type='positional', encoder_type='standard', decoder_type='standard',
               channel_mult_noise=1, resample_filter=[1, 1])


def build_network(seed):
    """A freshly initialised EDMPrecond(SongUNet) with NETWORK's settings; the initialisation draws from `seed`."""
    torch.manual_seed(seed)
    return EDMPrecond(**NETWORK)
