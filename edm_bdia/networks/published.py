"""The four published EDM architectures at full size (docs/networks.md, 'Published configurations'), built with
random weights for speed and accuracy probes. Loading a real checkpoint never uses this module."""

import numpy as np
import torch

from edm_bdia.networks.layers import Conv2d, Linear
from edm_bdia.networks.precond import EDMPrecond

_DDPMPP = dict(model_type='SongUNet', embedding_type='positional', encoder_type='standard', decoder_type='standard',
               channel_mult_noise=1, resample_filter=[1, 1], model_channels=128, augment_dim=9)
_NCSNPP = dict(_DDPMPP, embedding_type='fourier', encoder_type='residual', channel_mult_noise=2,
               resample_filter=[1, 3, 3, 1])

# name -> EDMPrecond keyword arguments of the published pickle it mimics.
PUBLISHED_ARCHITECTURES = {
    'cifar10-ddpmpp-cond': dict(_DDPMPP, img_resolution=32, img_channels=3, label_dim=10, channel_mult=[2, 2, 2],
                                dropout=0.13, use_fp16=False),
    'ffhq-ddpmpp-uncond': dict(_DDPMPP, img_resolution=64, img_channels=3, label_dim=0, channel_mult=[1, 2, 2, 2],
                               dropout=0.05, use_fp16=False),
    'afhqv2-ncsnpp-uncond': dict(_NCSNPP, img_resolution=64, img_channels=3, label_dim=0, channel_mult=[1, 2, 2, 2],
                                 dropout=0.25, use_fp16=False),
    'imagenet-adm-cond': dict(model_type='DhariwalUNet', img_resolution=64, img_channels=3, label_dim=1000,
                              model_channels=192, channel_mult=[1, 2, 3, 4], dropout=0.1, use_fp16=True),
}


def redraw_degenerate_weights_(net, generator):
    """Give every Linear/Conv2d weight initialised to (near) zero (ADM's init_zero = 0, SongUNet's 1e-5) a
    kaiming-normal draw N(0, 1/fan_in), so that every layer contributes to the output (docs/networks.md,
    'Initialisation')."""
    for module in net.modules():
        if isinstance(module, (Linear, Conv2d)) and module.weight is not None and module.weight.abs().max() < 1e-3:
            fan_in = module.weight[0].numel()
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * np.sqrt(1 / fan_in))
    return net


def build_published(name, seed=0, **overrides):
    """An EDMPrecond with the architecture `name` (a PUBLISHED_ARCHITECTURES key), random non-degenerate weights
    drawn from `seed`, in eval mode without gradients. `overrides` replace constructor keywords (e.g. use_fp16)."""
    if name not in PUBLISHED_ARCHITECTURES:
        raise ValueError(f'architecture {name!r} is unknown; use one of {", ".join(PUBLISHED_ARCHITECTURES)}')
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = EDMPrecond(**dict(PUBLISHED_ARCHITECTURES[name], **overrides))
    redraw_degenerate_weights_(net, torch.Generator().manual_seed(seed + 1))
    return net.eval().requires_grad_(False)
