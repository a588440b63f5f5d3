"""The published EDM2 architectures at full size (docs/networks.md, 'EDM2 configurations'), built with random
weights for speed and accuracy probes. Loading a real checkpoint never uses this module."""

import torch

from edm_bdia.networks.edm2_precond import Precond

# NVlabs train_edm2.py: model_channels per size; dropout 0.1 from M up (training only).
_CHANNELS = dict(xxs=64, xs=128, s=192, m=256, l=320, xl=384, xxl=448)
_DROPOUT = dict(xxs=0.0, xs=0.0, s=0.0, m=0.1, l=0.1, xl=0.1, xxl=0.1)
_SIZES = {512: ('xxs', 'xs', 's', 'm', 'l', 'xl', 'xxl'), 64: ('xs', 's', 'm', 'l', 'xl')}

# 'edm2-img{512|64}-{size}' -> Precond keywords of the pickles of that configuration (img512: 4x64x64 latents).
EDM2_ARCHITECTURES = {
    f'edm2-img{res}-{size}': dict(img_resolution=64, img_channels=4 if res == 512 else 3, label_dim=1000,
                                  model_channels=_CHANNELS[size], dropout=_DROPOUT[size], use_fp16=True)
    for res, sizes in _SIZES.items() for size in sizes}


def build_edm2_published(name, seed=0, **overrides):
    """A Precond with the configuration `name` (an EDM2_ARCHITECTURES key), random weights drawn from `seed` and
    the gains that start at zero (each block's emb_gain, the UNet's out_gain) drawn from U(0.5, 1.5), so that every
    layer contributes; eval mode, no gradients. `overrides` replace constructor keywords (e.g. label_dim=0)."""
    if name not in EDM2_ARCHITECTURES:
        raise ValueError(f'architecture {name!r} is unknown; use one of {", ".join(EDM2_ARCHITECTURES)}')
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Precond(**dict(EDM2_ARCHITECTURES[name], **overrides))
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for key, param in net.named_parameters():
            if key.endswith('_gain'):
                param.copy_(0.5 + torch.rand([], generator=generator))
    return net.eval().requires_grad_(False)
