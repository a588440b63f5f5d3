"""Our own implementations of the NVlabs EDM networks (docs/networks.md), loadable one-to-one from the
published pickles: same constructor keywords, module tree, parameter/buffer names and state_dict order, and
bit-identical fp32 CPU outputs.

Modules: `layers` (Linear, Conv2d, GroupNorm, init), `attention` (AttentionOp), `embeddings`
(Positional/FourierEmbedding), `unet_block` (UNetBlock), `songunet` (DDPM++/NCSN++), `dhariwal` (ADM),
`precond` (VP/VE/iDDPM/EDM preconditioners).

EDM2 (Karras et al. 2024; docs/networks.md, 'EDM2'): `mp_layers` (magnitude-preserving functions, MPFourier,
MPConv), `edm2_block` (Block), `edm2_unet` (UNet), `edm2_precond` (Precond), `encoders` (StandardRGBEncoder,
StabilityVAEEncoder), `stability_vae` (finding and loading the VAE).

The modules say `from torch_utils import persistence`, as the source NVlabs pickles embed must; they are imported
here with that name pointed at our `torch_utils`, so that an NVlabs checkout first on sys.path (whose
`torch_utils` owns the name) cannot change what they bind, however this package is first imported.
"""

from edm_bdia.networks.own_torch_utils import aliased_torch_utils

with aliased_torch_utils():
    from edm_bdia.networks.attention import AttentionOp
    from edm_bdia.networks.dhariwal import DhariwalUNet
    from edm_bdia.networks.edm2_block import Block
    from edm_bdia.networks.edm2_precond import Precond
    from edm_bdia.networks.edm2_unet import UNet
    from edm_bdia.networks.embeddings import FourierEmbedding, PositionalEmbedding
    from edm_bdia.networks.encoders import Encoder, StabilityVAEEncoder, StandardRGBEncoder
    from edm_bdia.networks.layers import Conv2d, GroupNorm, Linear
    from edm_bdia.networks.mp_layers import MPConv, MPFourier
    from edm_bdia.networks.precond import EDMPrecond, VEPrecond, VPPrecond, iDDPMPrecond
    from edm_bdia.networks.songunet import SongUNet
    from edm_bdia.networks.unet_block import UNetBlock

# Class name (as stored in a pickle's meta `class_name`) -> our persistent class.
PERSISTENT_CLASSES = {cls.__name__: cls for cls in (
    Linear, Conv2d, GroupNorm, UNetBlock, PositionalEmbedding, FourierEmbedding, SongUNet, DhariwalUNet,
    VPPrecond, VEPrecond, iDDPMPrecond, EDMPrecond,
    MPFourier, MPConv, Block, UNet, Precond, StandardRGBEncoder, StabilityVAEEncoder)}

__all__ = ['AttentionOp', 'Linear', 'Conv2d', 'GroupNorm', 'UNetBlock', 'PositionalEmbedding', 'FourierEmbedding',
           'SongUNet', 'DhariwalUNet', 'VPPrecond', 'VEPrecond', 'iDDPMPrecond', 'EDMPrecond',
           'MPFourier', 'MPConv', 'Block', 'UNet', 'Precond', 'Encoder', 'StandardRGBEncoder', 'StabilityVAEEncoder',
           'PERSISTENT_CLASSES']
